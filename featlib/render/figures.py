"""Plotly figures: scatter plots of projections, similarity and confusion heatmaps, the layer
sweep's figures."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
import plotly.colors
import plotly.graph_objects as go

from featlib.errors import OptionError
from featlib.render.images import NO_LABEL

__all__ = [
    "confusion_heatmap",
    "scatter",
    "similarity_heatmap",
    "sweep_animation",
    "sweep_figure",
    "sweep_projections",
]

_SWEEP_COLUMNS = 6  # blocks side by side in one row: six names of ~20 characters fit a page


def _category_names(values: Sequence) -> list[str]:
    return [NO_LABEL if v is None else str(v) for v in values]


def scatter(
    embedding: np.ndarray,
    color: Sequence,
    names: Sequence[str],
    labels: Sequence[str | None],
    color_title: str = "label",
) -> go.Figure:
    """A 2-D or 3-D scatter of a projection, one trace (and legend entry) per colour category.

    Each point carries its row index in ``customdata``, so a selection maps back to images.

    Args:
        embedding: array of shape (n_samples, 2) or (n_samples, 3).
        color: one category per row (a label, cluster number, predicted class); ``None`` is
            shown as "(no label)".
        names: one image name per row, shown on hover.
        labels: one label (or None) per row, shown on hover.
        color_title: the legend's title.

    Returns:
        ``plotly.graph_objects.Figure``.

    Example::

        >>> colour = ["a", "a", "b", "b", None]
        >>> fig = scatter(np.random.rand(5, 2), colour, list("vwxyz"), [None] * 5)
        >>> [t.name for t in fig.data]
        ['a', 'b', '(no label)']
    """
    embedding = np.asarray(embedding)
    n, dims = embedding.shape
    if dims not in (2, 3) or not len(color) == len(names) == len(labels) == n:
        raise OptionError(
            f"embedding must be (n, 2) or (n, 3) with one color, name and label per row. "
            f"Received: embedding {embedding.shape}, {len(color)} colors, {len(names)} names, "
            f"{len(labels)} labels"
        )
    categories = np.array(_category_names(color), dtype=object)
    order = sorted(set(categories), key=lambda c: (c == NO_LABEL, _natural(c)))
    qualitative = plotly.colors.qualitative
    palette = qualitative.Plotly if len(order) <= 10 else qualitative.Alphabet
    label_text = _category_names(labels)
    # Hover names the image and, when the colour is not the label, its label: the legend entry
    # (the trace's name) is shown beside it. At 100,000 points every character counts.
    same = label_text == categories.tolist()
    hover = np.array(
        names if same else [f"{n}<br>label: {t}" for n, t in zip(names, label_text, strict=True)],
        dtype=object,
    )
    traces = []
    for i, category in enumerate(order):
        rows = np.flatnonzero(categories == category).astype(np.int32)  # half of int64's bytes
        common = dict(
            name=category, mode="markers", customdata=rows, hovertext=hover[rows].tolist(),
            hovertemplate="<b>%{hovertext}</b><extra>%{fullData.name}</extra>",
        )  # fmt: skip
        colour = palette[i % len(palette)]
        if dims == 3:
            x, y, z = embedding[rows].T
            traces.append(go.Scatter3d(x=x, y=y, z=z, marker=dict(size=4, color=colour), **common))
        else:
            x, y = embedding[rows].T
            kind = go.Scattergl if n > 5000 else go.Scatter
            traces.append(kind(x=x, y=y, marker=_marker(n, colour), **common))
    fig = go.Figure(traces)
    fig.update_layout(
        legend=dict(title=dict(text=color_title), itemsizing="constant"),
        margin=dict(l=10, r=10, t=40, b=10),  # room for the mode bar above the legend
        height=560,
    )
    if dims == 3:
        # Plotly's default camera puts the far tick labels outside the plot, where they are
        # clipped: step back a little, and keep the labels few and short.
        axis = dict(nticks=5, tickformat=".3~g")
        camera = dict(eye=dict(x=1.6, y=1.6, z=1.0))
        fig.update_layout(scene=dict(xaxis=axis, yaxis=axis, zaxis=axis, camera=camera))
    else:
        # A drag pans, a click selects the point under the mouse (box and lasso are tools).
        fig.update_layout(dragmode="pan", clickmode="event+select")
    return fig


def _marker(n: int, colour: str) -> dict:
    """Markers for a 2-D scatter of ``n`` points: large and outlined while they are few; smaller
    and see-through when many, so that dense clusters show their density and hide no others."""
    if n <= 500:
        return dict(size=10, color=colour, line=dict(width=1, color="white"))
    return dict(size=7 if n <= 2000 else 5, color=colour, opacity=0.6, line=dict(width=0))


def _natural(text: str) -> list:
    """Sort key that puts "2" before "10": text and numbers alternate, compared in kind."""
    return [int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", text))]


def similarity_heatmap(
    matrix: np.ndarray,
    labels: Sequence[str | None],
    names: Sequence[str] | None = None,
) -> go.Figure:
    """A similarity matrix as a heatmap, with lines and ticks between label groups.

    Args:
        matrix: array of shape (m, m), rows already ordered (e.g. by ``order_by_label``).
        labels: the label of each row, in the same order.
        names: image names in the same order, shown on hover (for up to 200 rows).

    Returns:
        ``plotly.graph_objects.Figure`` with one ``Heatmap`` trace.

    Example::

        >>> fig = similarity_heatmap(np.eye(4), ["a", "a", "b", "b"])
        >>> list(fig.layout.xaxis.ticktext)
        ['a', 'b']
    """
    m = len(matrix)
    text = _category_names(labels)
    starts = [i for i in range(m) if i == 0 or text[i] != text[i - 1]]
    ends = [*starts[1:], m]
    centres = [(a + b - 1) / 2 for a, b in zip(starts, ends, strict=True)]
    ticks = dict(tickmode="array", tickvals=centres, ticktext=[text[i] for i in starts])
    if names is not None and m <= 200:
        extra = dict(
            text=[[f"{names[i]} · {names[j]}" for j in range(m)] for i in range(m)],
            hovertemplate="%{text}<br>similarity %{z:.3f}<extra></extra>",
        )
    else:
        extra = dict(hovertemplate="rows %{y} · %{x}<br>similarity %{z:.3f}<extra></extra>")
    low = float(np.min(matrix)) if m else 0.0  # the set's own range: contrast between blocks
    fig = go.Figure(
        go.Heatmap(
            z=matrix, zmin=low, zmax=1.0, colorscale="viridis",
            colorbar=dict(title=dict(text="cosine"), thickness=12), **extra,
        )
    )  # fmt: skip
    line, far = dict(type="line", line=dict(color="white", width=1)), m - 0.5
    lines = []
    for start in starts[1:]:
        edge = start - 0.5
        lines.append(dict(line, x0=edge, x1=edge, y0=-0.5, y1=far))
        lines.append(dict(line, x0=-0.5, x1=far, y0=edge, y1=edge))
    fig.update_layout(shapes=lines, height=620, margin=dict(l=10, r=10, t=10, b=10))
    fig.update_xaxes(**ticks, tickangle=-45, constrain="domain")
    fig.update_yaxes(**ticks, autorange="reversed", scaleanchor="x", constrain="domain")
    return fig


def confusion_heatmap(confusion: np.ndarray, classes: Sequence[str]) -> go.Figure:
    """A confusion matrix as a heatmap: rows the given labels, columns the predicted ones.

    Cells are coloured by the fraction of the row (so small classes read as clearly as large
    ones) and show the counts.

    Args:
        confusion: int array of shape (n_classes, n_classes), rows true, columns predicted.
        classes: the class names, in the matrix's order.

    Returns:
        ``plotly.graph_objects.Figure`` with one ``Heatmap`` trace.

    Example::

        >>> fig = confusion_heatmap(np.array([[5, 1], [0, 4]]), ["cat", "dog"])
        >>> fig.data[0].text.tolist()
        [['5', '1'], ['0', '4']]
    """
    counts = np.asarray(confusion)
    k = len(classes)
    if counts.shape != (k, k):
        raise OptionError(
            f"confusion must be (n_classes, n_classes) for {k} classes. Received: {counts.shape}"
        )
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    names = [str(c) for c in classes]
    fig = go.Figure(
        go.Heatmap(
            z=share, x=names, y=names, text=counts.astype(str), texttemplate="%{text}",
            zmin=0.0, zmax=1.0, colorscale="blues",
            colorbar=dict(title=dict(text="share of row"), thickness=12),
            hovertemplate="label %{y} → predicted %{x}: %{text}<extra></extra>",
        )
    )  # fmt: skip
    side = min(640, 160 + 40 * k)
    fig.update_layout(height=side, margin=dict(l=10, r=10, t=10, b=10))
    fig.update_xaxes(title="predicted", tickangle=-45, type="category")
    fig.update_yaxes(title="label", autorange="reversed", type="category")
    return fig


def sweep_figure(sweeps: Sequence) -> go.Figure:
    """Linear-probe accuracy and silhouette against depth, one pair of lines per sweep.

    Args:
        sweeps: ``featlib.Sweep`` results over the same layers (e.g. trained and random
            weights); the first is drawn solid, the others dashed.

    Returns:
        ``plotly.graph_objects.Figure`` with two traces per sweep and a dotted chance line.

    Example::

        >>> fig = sweep_figure([sweep])
        >>> [t.name for t in fig.data][:2]
        ['probe accuracy · random init (seed 0)', 'silhouette · random init (seed 0)']
    """
    if not sweeps:
        raise OptionError("sweep_figure needs at least one sweep. Received: no sweeps")
    layers = list(sweeps[0].layers)
    fig = go.Figure()
    palette = plotly.colors.qualitative.Plotly
    for n, sweep in enumerate(sweeps):
        dash = "solid" if n == 0 else "dash"
        for i, (what, values) in enumerate(
            [("probe accuracy", sweep.accuracy), ("silhouette", sweep.silhouette)]
        ):
            fig.add_trace(
                go.Scatter(
                    x=layers, y=values, name=f"{what} · {sweep.weights}", mode="lines+markers",
                    line=dict(color=palette[i], dash=dash),
                    hovertemplate="%{x}: %{y:.3f}<extra>%{fullData.name}</extra>",
                )
            )  # fmt: skip
    fig.add_hline(
        y=sweeps[0].chance, line=dict(color="grey", dash="dot"),
        annotation_text="chance", annotation_position="bottom right",
    )  # fmt: skip
    fig.update_layout(
        height=420, margin=dict(l=10, r=10, t=10, b=10),
        legend=dict(orientation="h", y=-0.25), yaxis=dict(title="score", range=[-0.2, 1.05]),
        xaxis=dict(title="block (shallow → deep)", type="category"),
    )  # fmt: skip
    return fig


def _sweep_traces(sweep, embedding: np.ndarray, showlegend: bool, size: int) -> list[go.Scatter]:
    """One scatter per label (in natural order) of one block's embedding; rows keep the set's
    order within a label, so that the same trace index is the same images in every block."""
    categories = _category_names(sweep.labels)
    palette = plotly.colors.qualitative.Plotly
    traces = []
    for k, category in enumerate(sorted(set(categories), key=_natural)):
        rows = [j for j, c in enumerate(categories) if c == category]
        traces.append(
            go.Scatter(
                x=embedding[rows, 0], y=embedding[rows, 1], mode="markers", name=category,
                legendgroup=category, showlegend=showlegend,
                marker=dict(size=size, color=palette[k % len(palette)]),
                text=[sweep.names[j] for j in rows], hovertemplate="%{text}<extra></extra>",
            )
        )  # fmt: skip
    return traces


def sweep_projections(sweep) -> go.Figure:
    """The set's 2-D projection at each block, side by side, coloured by label.

    Args:
        sweep: a ``featlib.Sweep`` (its embeddings are already aligned block to block).

    Returns:
        ``plotly.graph_objects.Figure`` with one small scatter per block, at most
        ``_SWEEP_COLUMNS`` to a row so that the blocks' names stay readable.
    """
    from plotly.subplots import make_subplots

    n = len(sweep.layers)
    rows = math.ceil(n / _SWEEP_COLUMNS)
    cols = math.ceil(n / rows)  # balanced rows: 16 blocks as 6, 6, 4 would leave a gap; 3 x 6
    fig = make_subplots(
        rows=rows, cols=cols, subplot_titles=list(sweep.layers), horizontal_spacing=0.02,
        vertical_spacing=0.12 / rows,
    )  # fmt: skip
    for i, embedding in enumerate(sweep.embeddings):
        for trace in _sweep_traces(sweep, embedding, showlegend=i == 0, size=5):
            fig.add_trace(trace, row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    fig.update_annotations(font_size=12)
    fig.update_layout(height=40 + 230 * rows, margin=dict(l=10, r=10, t=30, b=10))
    return fig


def sweep_animation(sweep, duration_ms: int = 900) -> go.Figure:
    """The set's 2-D projection block by block as an animation: press play or drag the slider,
    and each image's point glides from where one block puts it to where the next one does.

    Args:
        sweep: a ``featlib.Sweep`` (its embeddings are already aligned block to block, so the
            motion shows what changes, not an arbitrary rotation).
        duration_ms: milliseconds per block, half of them spent moving.

    Returns:
        ``plotly.graph_objects.Figure`` showing the first block, with one frame per block
        (named after its layer), a play button and a slider; the axes hold every block's points.

    Example::

        >>> fig = sweep_animation(sweep)
        >>> [f.name for f in fig.frames] == list(sweep.layers)
        True
    """
    every = np.concatenate(sweep.embeddings)
    low, high = every.min(axis=0), every.max(axis=0)
    pad = 0.05 * np.maximum(high - low, 1e-6)
    frames = [
        go.Frame(name=layer, data=_sweep_traces(sweep, embedding, showlegend=True, size=9))
        for layer, embedding in zip(sweep.layers, sweep.embeddings, strict=True)
    ]
    fig = go.Figure(data=frames[0].data, frames=frames)
    glide = dict(duration=duration_ms // 2, easing="cubic-in-out")
    play = dict(
        frame=dict(duration=duration_ms, redraw=False), mode="immediate", fromcurrent=True,
        transition=glide,
    )  # fmt: skip
    pause = dict(
        frame=dict(duration=0, redraw=False), mode="immediate", transition=dict(duration=0)
    )
    buttons = [
        dict(label="▶ Play", method="animate", args=[None, play]),
        dict(label="❚❚ Pause", method="animate", args=[[None], pause]),
    ]
    steps = [dict(label=layer, method="animate", args=[[layer], play]) for layer in sweep.layers]
    fig.update_layout(
        height=520, margin=dict(l=10, r=10, t=50, b=80),
        xaxis=dict(range=[low[0] - pad[0], high[0] + pad[0]], showticklabels=False),
        yaxis=dict(range=[low[1] - pad[1], high[1] + pad[1]], showticklabels=False),
        # The buttons sit above the plot and the slider has the whole width below it, so that
        # neither covers the other's label nor the last block's name.
        updatemenus=[dict(
            type="buttons", buttons=buttons, direction="left",
            x=0, y=1.02, xanchor="left", yanchor="bottom", pad=dict(t=0, b=4),
        )],
        sliders=[dict(
            steps=steps, transition=glide, x=0.03, len=0.94, y=0, yanchor="top",
            pad=dict(t=30, b=10), currentvalue=dict(prefix="block: ", xanchor="left"),
        )],
    )  # fmt: skip
    return fig
