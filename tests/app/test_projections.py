"""AppTest of the Projections page."""

from __future__ import annotations

import pytest
import streamlit as st

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
