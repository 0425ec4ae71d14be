"""featlib.render: colour maps, tiles and figures (layout only, checked by shape and content)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from featlib import render
from featlib.render import images as render_images


@pytest.mark.parametrize("colorscale", render.COLORSCALES)
def test_colorize_maps_the_range_to_the_scale_ends(colorscale):
    out = render.colorize(np.array([[0.0, 0.5, 1.0]]), colorscale)
    assert out.shape == (1, 3, 3) and out.dtype == np.uint8
    lut = render_images._lut(colorscale)
    np.testing.assert_array_equal(out[0, [0, 2]], lut[[0, 255]])


def test_colorize_constant_and_clipped():
    lut = render_images._lut("gray")
    assert (render.colorize(np.full((2, 2), 7.0), "gray") == lut[0]).all()
    clipped = render.colorize(np.array([[-5.0, 5.0]]), "gray", vmin=0, vmax=1)
    np.testing.assert_array_equal(clipped[0], lut[[0, 255]])


def test_unknown_colorscale():
    with pytest.raises(ValueError, match="colorscale must be one of"):
        render.colorize(np.zeros((2, 2)), "rainbow")


@pytest.mark.parametrize(
    ("shape", "size", "expected"), [((7, 7), 140, (140, 140, 3)), ((4, 8), 50, (50, 100, 3))]
)
def test_map_image_keeps_the_aspect(shape, size, expected):
    assert render.map_image(np.random.default_rng(0).random(shape), size).shape == expected


def test_square_pads_to_a_tile():
    tile = render.square(np.full((10, 30, 3), 255, np.uint8), 60, color="black")
    pixels = np.asarray(tile)
    assert tile.size == (60, 60)
    assert pixels[0, 0].tolist() == [0, 0, 0] and pixels[30, 30].tolist() == [255, 255, 255]


def test_overlay_blends_heat_over_the_image():
    image = np.full((32, 32, 3), 100, np.uint8)
    values = np.zeros((4, 4))
    values[0, 0] = 1.0
    out = render.overlay(image, values, "gray", alpha=0.5)
    low, high = render_images._lut("gray")[[0, 255]].astype(float)
    assert out.shape == image.shape
    np.testing.assert_array_equal(out[0, 0], np.rint(50 + high / 2))  # the hot corner
    np.testing.assert_array_equal(out[31, 31], np.rint(50 + low / 2))  # the cold one
    with pytest.raises(ValueError, match="alpha"):
        render.overlay(image, values, alpha=2)


@pytest.mark.parametrize("shared", [False, True])
def test_channel_grid_layout(shared):
    maps = np.random.default_rng(0).random((200, 200, 10), dtype=np.float32)
    fig = render.channel_grid(maps, [9, 0, 3], shared_scale=shared, columns=2, max_tile=50)
    z = np.asarray(fig.data[0].z, dtype=float)
    assert z.shape == (2 * 50 + 2, 2 * 50 + 2)  # 2 x 2 tiles of 50 px, 2 px gaps
    assert [a.text for a in fig.layout.annotations] == ["#9", "#0", "#3"]
    assert np.isnan(z[-50:, -50:]).all()  # the fourth tile is empty
    if shared:
        np.testing.assert_allclose(z[:50, :50], maps[::4, ::4, 9])
    else:
        assert np.nanmax(z) == 1.0 and np.nanmin(z) == 0.0


def test_channel_grid_needs_channels():
    with pytest.raises(ValueError, match="at least one channel"):
        render.channel_grid(np.zeros((4, 4, 2)), [])


@pytest.mark.parametrize("dims", [2, 3])
def test_scatter_one_trace_per_category_with_row_indices(dims):
    embedding = np.random.default_rng(0).random((6, dims))
    colours = ["10", "2", None, "2", "10", "2"]
    fig = render.scatter(embedding, colours, list("abcdef"), [None] * 6, "label")
    assert [t.name for t in fig.data] == ["2", "10", render.NO_LABEL]
    assert [list(t.customdata) for t in fig.data] == [[1, 3, 5], [0, 4], [2]]
    assert isinstance(fig.data[0], go.Scatter3d if dims == 3 else go.Scatter)


@pytest.mark.parametrize(
    ("n", "size", "opacity", "kind"),
    [(100, 10, None, go.Scatter), (2000, 7, 0.6, go.Scatter), (6000, 5, 0.6, go.Scattergl)],
)
def test_scatter_markers_shrink_and_thin_out_with_many_points(n, size, opacity, kind):
    embedding = np.random.default_rng(0).random((n, 2))
    fig = render.scatter(embedding, ["a", "b"] * (n // 2), [str(i) for i in range(n)], [None] * n)
    assert {(type(t), t.marker.size, t.marker.opacity) for t in fig.data} == {(kind, size, opacity)}


def test_scatter_3d_keeps_its_tick_labels_inside_the_plot():
    embedding = np.random.default_rng(0).random((6, 3)) * 1e4
    fig = render.scatter(embedding, ["a"] * 6, list("abcdef"), [None] * 6)
    scene = fig.layout.scene
    assert scene.camera.eye.x > 1.25 and scene.camera.eye.y > 1.25  # plotly's default is 1.25
    assert {(a.nticks, a.tickformat) for a in (scene.xaxis, scene.yaxis, scene.zaxis)} == {
        (5, ".3~g")
    }


def test_scatter_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match="one color, name and label per row"):
        render.scatter(np.zeros((3, 2)), ["a"], ["x"] * 3, [None] * 3)


def test_similarity_heatmap_ticks_and_lines_between_labels():
    fig = render.similarity_heatmap(np.eye(5), ["a", "a", "b", "b", None], list("vwxyz"))
    assert list(fig.layout.xaxis.ticktext) == ["a", "b", render.NO_LABEL]
    assert list(fig.layout.xaxis.tickvals) == [0.5, 2.5, 4.0]
    assert len(fig.layout.shapes) == 4  # a vertical and a horizontal line at each of 2 edges
    assert fig.data[0].text[0][1] == "v · w"


def test_confusion_heatmap_colours_by_row_share_and_shows_counts():
    confusion = np.array([[8, 2, 0], [0, 1, 0], [3, 0, 3]])
    fig = render.confusion_heatmap(confusion, ["a", "b", "c"])
    heat = fig.data[0]
    np.testing.assert_allclose(heat.z, confusion / confusion.sum(axis=1, keepdims=True))
    assert heat.text.tolist() == [["8", "2", "0"], ["0", "1", "0"], ["3", "0", "3"]]
    assert list(heat.x) == list(heat.y) == ["a", "b", "c"]


def test_confusion_heatmap_refuses_a_mismatch():
    with pytest.raises(ValueError, match="3 classes"):
        render.confusion_heatmap(np.eye(2), ["a", "b", "c"])


def _sweep(weights: str, accuracy):
    from featlib.teaching.sweep import Sweep

    rng = np.random.default_rng(0)
    return Sweep(
        layers=("block1", "block2", "block3"), accuracy=np.array(accuracy),
        silhouette=np.array([0.0, 0.1, 0.3]), chance=0.5,
        embeddings=tuple(rng.normal(size=(6, 2)).astype(np.float32) for _ in range(3)),
        labels=("a", "a", "a", "b", "b", "b"), names=tuple("uvwxyz"), weights=weights,
    )  # fmt: skip


def test_sweep_figure_draws_trained_solid_and_random_dashed():
    fig = render.sweep_figure([_sweep("trained", [0.6, 0.8, 1.0]), _sweep("random", [0.5] * 3)])
    assert [t.name for t in fig.data] == [
        "probe accuracy · trained", "silhouette · trained",
        "probe accuracy · random", "silhouette · random",
    ]  # fmt: skip
    assert [t.line.dash for t in fig.data] == ["solid", "solid", "dash", "dash"]
    assert list(fig.data[0].y) == [0.6, 0.8, 1.0]
    with pytest.raises(ValueError, match="at least one"):
        render.sweep_figure([])


def test_sweep_projections_one_panel_per_block_one_legend():
    fig = render.sweep_projections(_sweep("trained", [0.6, 0.8, 1.0]))
    assert len(fig.data) == 3 * 2  # blocks x labels
    assert sum(t.showlegend for t in fig.data) == 2
    assert [a.text for a in fig.layout.annotations] == ["block1", "block2", "block3"]


def test_sweep_animation_one_frame_per_block_same_images_per_trace():
    sweep = _sweep("trained", [0.6, 0.8, 1.0])
    fig = render.sweep_animation(sweep)
    assert [f.name for f in fig.frames] == list(sweep.layers)
    assert [s.label for s in fig.layout.sliders[0].steps] == list(sweep.layers)
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["▶ Play", "❚❚ Pause"]
    labels, names = np.array(sweep.labels), np.array(sweep.names)
    for frame, embedding in zip(fig.frames, sweep.embeddings, strict=True):
        assert [t.name for t in frame.data] == ["a", "b"]
        for trace in frame.data:
            np.testing.assert_array_equal(trace.x, embedding[labels == trace.name, 0])
            np.testing.assert_array_equal(trace.y, embedding[labels == trace.name, 1])
            assert list(trace.text) == names[labels == trace.name].tolist()
    np.testing.assert_array_equal(fig.data[0].x, fig.frames[0].data[0].x)
    every = np.concatenate(sweep.embeddings)
    for axis, column in ((fig.layout.xaxis, every[:, 0]), (fig.layout.yaxis, every[:, 1])):
        assert axis.range[0] < column.min() and column.max() < axis.range[1]
