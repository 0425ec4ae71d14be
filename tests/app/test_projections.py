"""AppTest of the Projections page."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import streamlit as st
from PIL import Image

import featlib
from tests.app.helpers import (
    PROJECTIONS,
    SMALL,
    app,
    plotted_rows,
    texts,
)
from tests.system.feature_sets import class_names
from ui import state


@pytest.mark.parametrize(
    ("method", "dims", "colour"),
    [("pca", 2, "label"), ("tsne", 2, "cluster"), ("pca", 3, "cluster")],
)
def test_projections(method, dims, colour):
    at = app(PROJECTIONS, **SMALL)
    at.radio(key=state.METHOD).set_value(method)
    at.radio(key=state.DIMS).set_value(dims)
    at.radio(key=state.COLOR_BY).set_value(colour).run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 1
    assert len(at.get("download_button")) == 3
    assert "trustworthiness" in texts(at.caption)
    assert "prediction" in texts(at.caption)  # ImageNet colouring is off, and says why


def test_projections_of_a_feature_file_come_from_the_store_the_second_time(
    feature_file, monkeypatch
):
    path, _ = feature_file
    st.cache_resource.clear()  # the feature store this test's environment names
    at = app(PROJECTIONS)
    rows = plotted_rows(at)
    assert sorted(rows) == class_names(4)
    truth = [r.label for r in featlib.read_features(path).records]
    assert all(truth[i] == label for label, points in rows.items() for i in points)
    assert sum(map(len, rows.values())) == 120
    assert len(at.get("download_button")) == 3
    st.cache_resource.clear()  # a restarted server: only the store remembers

    def no_projecting(*args, **kwargs):
        raise AssertionError("projected again")

    monkeypatch.setattr(featlib, "project", no_projecting)
    again = app(PROJECTIONS)
    assert plotted_rows(again) == rows
    assert texts(again.caption).count("trustworthiness") == 1


def plot_events(at, mode: str) -> dict:
    """What the page last sent the plot-events component mounted in ``mode`` ("hover" or
    "select")."""
    sent = [json.loads(c.proto.json) for c in at.get("bidi_component")]
    (data,) = [d for d in sent if d["mode"] == mode]
    return data


def hover_card(at) -> dict | None:
    """What the hover component was last sent to show: row, picture (data URL) and caption."""
    return plot_events(at, "hover")["card"]


def pick(at, rows: list, figure: str | None = None) -> None:
    """Pick ``rows`` on the plot as the browser reports it (on the figure shown unless
    ``figure`` is given), and rerun."""
    figure = plot_events(at, "select")["figure"] if figure is None else figure
    at.session_state[state.SELECTION] = {"selection": {"rows": rows, "figure": figure}}
    at.run()
    assert not at.exception, at.exception


def gallery_names(at) -> list[str]:
    """The file names in the gallery's captions, in order."""
    (gallery,) = at.get("image")
    return [i.caption.split(" · ")[0].replace("\u200b", "") for i in gallery.proto.imgs]


def test_picked_points_fill_a_paged_gallery_that_a_new_plot_empties(feature_file):
    path, _ = feature_file
    names = featlib.read_features(path).names
    at = app(PROJECTIONS)
    assert "Click a point to see its image here" in texts(at.caption)
    assert not at.get("image")

    pick(at, [5, 3, 3, 120, -1, "7", 2.0])  # what a browser could send: only rows 3 and 5 are
    assert [s.value for s in at.subheader] == ["2 selected"]
    assert gallery_names(at) == [names[3], names[5]]

    pick(at, [9])
    assert [s.value for s in at.subheader] == ["1 selected"]
    assert gallery_names(at) == [names[9]]
    at.button(key=state.TO_NEIGHBOURS).click().run()
    assert not at.exception, at.exception
    assert at.session_state[state.QUERY] == names[9]
    assert [t.value for t in at.title] == ["Neighbours"]

    at.switch_page(PROJECTIONS).run()
    pick(at, list(range(0, 120, 2)))  # 60: two pages of 48
    assert [s.value for s in at.subheader] == ["60 selected"]
    assert gallery_names(at) == [names[i] for i in range(0, 96, 2)]
    at.number_input(key=state.GALLERY_PAGE).set_value(2).run()
    assert gallery_names(at) == [names[i] for i in range(96, 120, 2)]
    pick(at, list(range(1, 120, 2)))  # a new pick starts on its first page
    assert gallery_names(at) == [names[i] for i in range(1, 96, 2)]

    at.radio(key=state.COLOR_BY).set_value("cluster").run()  # a new plot: its points unpicked
    assert not at.exception, at.exception
    assert not at.subheader and not at.get("image")
    pick(at, [1, 2], figure="another figure")
    assert not at.subheader


def card_picture(card: dict) -> np.ndarray:
    """The hover card's picture, decoded, as float RGB."""
    encoded = card["src"].split(";base64,")[1]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB"), float)


def test_hovering_a_point_shows_its_picture(feature_file):
    path, root = feature_file
    names = featlib.read_features(path).names
    at = app(PROJECTIONS)
    assert hover_card(at) is None  # nothing hovered yet
    at.session_state[state.HOVER] = {"row": 37}  # what the browser sends, as the component does
    at.run()
    assert not at.exception, at.exception
    card = hover_card(at)
    assert card["row"] == 37
    assert card["caption"].replace("\u200b", "").split(" · ") == [names[37], "class_01"]
    assert card["src"].startswith("data:image/png;base64,")  # a tiny picture: PNG, lossless
    original = np.asarray(Image.open(root / names[37]).convert("RGB"), float)
    np.testing.assert_array_equal(card_picture(card), original)  # sent as it is, not scaled

    at.session_state[state.HOVER] = {"row": 119}  # its picture was deleted: a grey tile
    at.run()
    assert not at.exception, at.exception
    grey = card_picture(hover_card(at))
    assert grey.std() < 2 and names[119] in hover_card(at)["caption"].replace("\u200b", "")

    at.session_state[state.HOVER] = {"row": 120}  # not a row: nothing to show
    at.run()
    assert not at.exception, at.exception
    assert hover_card(at) is None


def test_hovering_a_point_of_the_sample_images_shows_a_small_jpeg():
    at = app(PROJECTIONS, **SMALL)
    at.session_state[state.HOVER] = {"row": 0}
    at.run()
    assert not at.exception, at.exception
    card = hover_card(at)
    assert card["src"].startswith("data:image/jpeg;base64,")  # a photograph: JPEG
    assert max(card_picture(card).shape[:2]) == 160
