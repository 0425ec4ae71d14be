"""AppTest of the Neighbours page."""

from __future__ import annotations

import json

import numpy as np

import featlib
from featlib.analysis.neighbors import label_mean_similarity
from tests.app.helpers import (
    NEIGHBOURS,
    SMALL,
    app,
    image_counts,
    plotly_array,
    png,
    texts,
)
from tests.system.feature_sets import LAYER, write_feature_set
from ui import state


def test_neighbours_from_the_set():
    at = app(NEIGHBOURS, **SMALL)
    at.selectbox(key=state.QUERY).set_value("chelsea.png")
    at.slider(key=state.K).set_value(3).run()
    assert not at.exception
    assert image_counts(at) == [1, 3]  # the query, then three neighbours
    assert len(at.get("plotly_chart")) == 1


def test_neighbours_of_an_upload_and_of_a_bad_upload():
    at = app(NEIGHBOURS, **SMALL)
    at.radio(key=state.QUERY_FROM).set_value("upload").run()
    assert "Upload an image" in texts(at.info)
    at.file_uploader(key=state.QUERY_FILE).set_value(("q.png", png(3), "image/png")).run()
    assert not at.exception
    assert image_counts(at) == [1, 5]
    at.file_uploader(key=state.QUERY_FILE).set_value(("q.png", b"junk", "image/png")).run()
    assert not at.exception
    assert "q.png" in texts(at.error)


def test_neighbours_in_a_feature_file_match_the_file_vectors(feature_file):
    path, _ = feature_file
    feats = featlib.read_features(path)
    at = app(NEIGHBOURS)
    assert at.radio(key=state.QUERY_FROM).options == ["from the set"]  # no network to embed
    query = feats.names[7]
    at.selectbox(key=state.QUERY).set_value(query)
    at.slider(key=state.K).set_value(4).run()
    assert not at.exception, at.exception
    found, _ = featlib.nearest(feats.features[LAYER], 7, k=4)
    captions = at.get("image")[1].proto.imgs
    assert [
        c.caption.split(". ", 1)[1].split(" · ")[0].replace("\u200b", "") for c in captions
    ] == [feats.names[i] for i in found]
    assert image_counts(at) == [1, 4]


def test_large_sets_type_the_query_and_compare_labels_not_images(tmp_path, monkeypatch):
    from featlib.cli.commands import APP_FEATURES_ENV

    path, _ = write_feature_set(tmp_path / "set", 5001, dim=8, n_classes=3, side=4)
    monkeypatch.setenv(APP_FEATURES_ENV, str(path))
    feats = featlib.read_features(path)
    at = app(NEIGHBOURS)
    at.text_input(key=state.QUERY).input("class_02/004001.png").run()
    assert not at.exception, at.exception
    shown = [c.split(". ", 1)[1].split(" · ")[0] for c in at.dataframe[0].value["neighbour"]]
    found, _ = featlib.nearest(feats.features[LAYER], 4001, k=5)
    assert [name.replace("\u200b", "") for name in shown] == [feats.names[i] for i in found]
    at.text_input(key=state.QUERY).input("no/such.png").run()
    assert "No image of this set is named 'no/such.png'" in texts(at.warning)
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    names, means = label_mean_similarity(feats.features[LAYER], feats.labels)
    z = plotly_array(figure["data"][0]["z"]).reshape(means.shape)
    assert np.allclose(z, means, atol=1e-6) and names == ["class_00", "class_01", "class_02"]
