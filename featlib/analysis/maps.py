"""Statistics of one image's feature maps: how strongly and how widely each channel fires.

``channel_stats`` summarises every channel of a layer's output; ``top_channels`` ranks them, the
default view of the app's feature-map grid and of "through the network".

Example::

    >>> import numpy as np
    >>> maps = np.zeros((14, 14, 8), np.float32); maps[..., 5] = 2.0
    >>> top_channels(maps, k=1)
    array([5])
    >>> float(channel_stats(maps).active[5])
    1.0
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from featlib.errors import FeatlibError

__all__ = ["RANKINGS", "ChannelStats", "channel_stats", "top_channels"]

RANKINGS = ("mean", "max", "active")


@dataclass(frozen=True)
class ChannelStats:
    """Per-channel summaries of one feature map.

    Attributes:
        mean: float32 array of shape (channels,), the mean activation over positions.
        max: float32 array of shape (channels,), the largest activation.
        active: float32 array of shape (channels,), the fraction of positions above zero.
    """

    mean: np.ndarray
    max: np.ndarray
    active: np.ndarray


def _check_maps(maps) -> np.ndarray:
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 3 or 0 in maps.shape:
        raise FeatlibError(
            f"maps must be one image's feature map of shape (height, width, channels). "
            f"Received: shape={maps.shape}"
        )
    return maps


def channel_stats(maps) -> ChannelStats:
    """Mean, max and fraction of active positions for every channel.

    Args:
        maps: array of shape (height, width, channels).

    Returns:
        ``ChannelStats`` with three float32 arrays of shape (channels,).

    Example::

        >>> channel_stats(np.ones((2, 2, 3))).mean.tolist()
        [1.0, 1.0, 1.0]
    """
    maps = _check_maps(maps)
    return ChannelStats(
        mean=maps.mean(axis=(0, 1)),
        max=maps.max(axis=(0, 1)),
        active=(maps > 0).mean(axis=(0, 1), dtype=np.float32),
    )


def top_channels(maps, k: int = 16, by: str = "mean") -> np.ndarray:
    """Indices of the k strongest channels, strongest first (ties by index).

    Args:
        maps: array of shape (height, width, channels).
        k: how many; fewer when the layer has fewer channels.
        by: ``"mean"`` activation, ``"max"`` activation or ``"active"`` fraction.

    Returns:
        int64 array of shape (min(k, channels),).

    Example::

        >>> top_channels(np.arange(6, dtype=np.float32).reshape(1, 2, 3), k=2)
        array([2, 1])
    """
    if by not in RANKINGS:
        raise FeatlibError(f"by must be one of {RANKINGS}. Received: by={by!r}")
    if isinstance(k, bool) or int(k) < 1:
        raise FeatlibError(f"k must be a positive integer. Received: k={k!r}")
    score = getattr(channel_stats(maps), by)
    return np.argsort(-score, kind="stable")[: int(k)].astype(np.int64)
