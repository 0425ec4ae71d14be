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


def hover_card(at) -> dict | None:
    """What the hover component was last sent to show: row, picture (data URL) and caption."""
    return json.loads(at.get("bidi_component")[0].proto.json)["card"]


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
