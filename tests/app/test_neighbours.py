"""AppTest of the Neighbours page."""

from __future__ import annotations

import featlib
from tests.app.helpers import (
    NEIGHBOURS,
    SMALL,
    app,
    image_counts,
    png,
    texts,
)
from tests.system.feature_sets import LAYER
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
