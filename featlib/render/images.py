"""Colour-mapped arrays and image tiles: feature maps as pictures, overlays, channel grids.

Example::

    >>> import numpy as np
    >>> maps = np.random.default_rng(0).random((14, 14, 512), dtype=np.float32)
    >>> colorize(maps[..., 3]).shape
    (14, 14, 3)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import plotly.colors
import plotly.graph_objects as go
from PIL import Image, ImageOps

from featlib.errors import OptionError

__all__ = [
    "COLORSCALES",
    "NO_LABEL",
    "channel_grid",
    "colorize",
    "map_image",
    "overlay",
    "square",
]


COLORSCALES = ("viridis", "magma", "inferno", "cividis", "turbo", "gray")
NO_LABEL = "(no label)"
_GAP = 2  # pixels of background between tiles of a grid


@functools.cache
def _lut(colorscale: str) -> np.ndarray:
    """A 256-entry RGB table, uint8 of shape (256, 3), sampled from a plotly colour scale."""
    if colorscale not in COLORSCALES:
        raise OptionError(f"colorscale must be one of {COLORSCALES}. Received: {colorscale!r}")
    colours = plotly.colors.sample_colorscale(colorscale, np.linspace(0.0, 1.0, 256).tolist())
    rgb = [plotly.colors.unlabel_rgb(c) for c in colours]
    return np.rint(np.asarray(rgb)).astype(np.uint8)


def _unit(values: np.ndarray, vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """Values scaled to [0, 1] between vmin and vmax (their own min and max by default)."""
    values = np.asarray(values, dtype=np.float32)
    lo = float(np.nanmin(values)) if vmin is None else float(vmin)
    hi = float(np.nanmax(values)) if vmax is None else float(vmax)
    if not hi > lo:
        return np.zeros_like(values)
    return np.clip((values - lo) / (hi - lo), 0.0, 1.0)


def colorize(
    values: np.ndarray,
    colorscale: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
) -> np.ndarray:
    """Map a 2-D array of values to colours.

    Args:
        values: array of shape (height, width).
        colorscale: one of ``COLORSCALES``.
        vmin, vmax: the values mapped to the ends of the scale; the array's own min and max
            by default. A constant array maps to the low end.

    Returns:
        uint8 array of shape (height, width, 3), RGB.

    Example::

        >>> colorize(np.array([[0.0, 0.5, 1.0]]), "gray")[0, 0].tolist()  # the low end: black
        [0, 0, 0]
    """
    unit = np.nan_to_num(_unit(values, vmin, vmax))
    return _lut(colorscale)[np.rint(unit * 255).astype(np.uint8)]


def square(picture, side: int, color: str = "#f0f2f6") -> Image.Image:
    """A picture fitted into a square tile, aspect ratio kept, the rest filled with ``color``.

    Args:
        picture: a ``PIL.Image.Image`` or a uint8 array of shape (height, width, 3).
        side: the tile's side in pixels.
        color: the fill, any colour Pillow understands.

    Returns:
        an RGB ``PIL.Image.Image`` of size (side, side).

    Example::

        >>> square(np.zeros((10, 20, 3), np.uint8), 64).size
        (64, 64)
    """
    if not isinstance(picture, Image.Image):
        picture = Image.fromarray(np.asarray(picture, dtype=np.uint8))
    return ImageOps.pad(picture.convert("RGB"), (int(side), int(side)), color=color)


def map_image(values: np.ndarray, size: int = 160, colorscale: str = "viridis") -> np.ndarray:
    """One channel as a colour picture, enlarged with visible cells (nearest neighbour).

    Args:
        values: array of shape (height, width).
        size: height of the result in pixels; the width keeps the aspect ratio.
        colorscale: one of ``COLORSCALES``.

    Returns:
        uint8 array of shape (size, round(size * width / height), 3).

    Example::

        >>> map_image(np.eye(7), size=140).shape
        (140, 140, 3)
    """
    h, w = np.shape(values)
    picture = Image.fromarray(colorize(values, colorscale))
    width = max(1, round(size * w / h))
    return np.asarray(picture.resize((width, size), Image.Resampling.NEAREST))


def overlay(
    image: np.ndarray,
    values: np.ndarray,
    colorscale: str = "magma",
    alpha: float = 0.55,
) -> np.ndarray:
    """A channel laid over the image it came from, as a translucent heatmap.

    Args:
        image: uint8 array of shape (height, width, 3), the network's input.
        values: array of shape (h, w), the channel; enlarged (bilinear) to the image's size and
            scaled to its own range.
        colorscale: one of ``COLORSCALES``.
        alpha: opacity of the heatmap, in [0, 1].

    Returns:
        uint8 array of shape (height, width, 3).

    Example::

        >>> overlay(np.zeros((224, 224, 3), np.uint8), np.eye(14)).shape
        (224, 224, 3)
    """
    if not 0.0 <= alpha <= 1.0:
        raise OptionError(f"alpha must be in [0, 1]. Received: alpha={alpha!r}")
    height, width = image.shape[:2]
    unit = Image.fromarray(np.nan_to_num(_unit(values)), mode="F")
    big = np.clip(np.asarray(unit.resize((width, height), Image.Resampling.BILINEAR)), 0.0, 1.0)
    heat = _lut(colorscale)[np.rint(big * 255).astype(np.uint8)]
    return np.rint(image * (1.0 - alpha) + heat * alpha).astype(np.uint8)


def channel_grid(
    maps: np.ndarray,
    channels: Sequence[int],
    colorscale: str = "viridis",
    shared_scale: bool = False,
    columns: int | None = None,
    max_tile: int = 96,
    width: int = 680,
) -> go.Figure:
    """A grid of channels of one feature map as one heatmap, each tile titled with its index.

    Args:
        maps: array of shape (height, width, channels), one image's output of a layer.
        channels: the channel indices to show, in order.
        colorscale: one of ``COLORSCALES``.
        shared_scale: one colour scale for all tiles (values comparable across channels);
            by default each tile uses its own range (patterns visible in weak channels).
        columns: tiles per row; about square by default.
        max_tile: tiles larger than this many pixels are shown at a reduced resolution.
        width: the width, in pixels, the figure will be drawn at; sets its height so that
            tiles stay square without blank bands.

    Returns:
        ``plotly.graph_objects.Figure`` with one ``Heatmap`` trace.

    Example::

        >>> fig = channel_grid(np.random.rand(28, 28, 64), channels=range(16), columns=8)
        >>> len(fig.layout.annotations)
        16
    """
    channels = [int(c) for c in channels]
    if not channels:
        raise OptionError("channels must name at least one channel. Received: []")
    h, w, _ = maps.shape
    step = max(1, math.ceil(max(h, w) / max_tile))
    tiles = [np.asarray(maps[::step, ::step, c], dtype=np.float32) for c in channels]
    if not shared_scale:
        tiles = [_unit(t) for t in tiles]
    th, tw = tiles[0].shape
    cols = columns or math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / cols)
    mosaic = np.full((rows * (th + _GAP) - _GAP, cols * (tw + _GAP) - _GAP), np.nan, np.float32)
    annotations = []
    for i, (channel, tile) in enumerate(zip(channels, tiles, strict=True)):
        top, left = (i // cols) * (th + _GAP), (i % cols) * (tw + _GAP)
        mosaic[top : top + th, left : left + tw] = tile
        annotations.append(
            dict(
                x=left - 0.5, y=top - 0.5, xanchor="left", yanchor="top", text=f"#{channel}",
                showarrow=False, font=dict(size=10, color="white"), bgcolor="rgba(0,0,0,0.55)",
            )
        )  # fmt: skip
    heatmap = go.Heatmap(
        z=mosaic,
        colorscale=colorscale,
        hoverongaps=False,
        colorbar=dict(title=dict(text="value" if shared_scale else "relative"), thickness=12),
        hovertemplate="%{z:.3g}<extra></extra>",
    )
    fig = go.Figure(heatmap)
    fig.update_layout(
        annotations=annotations,
        margin=dict(l=0, r=0, t=0, b=0),
        height=max(120, round((width - 80) * mosaic.shape[0] / mosaic.shape[1])),
        plot_bgcolor="white",
    )
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x", constrain="domain")
    return fig
