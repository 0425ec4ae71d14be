"""AppTest of the Feature maps page (and the URL that reproduces a view)."""

from __future__ import annotations

import pytest

import featlib
from tests.app.helpers import (
    FEATURE_MAPS,
    SMALL,
    app,
    image_counts,
    texts,
    tiny_model_file,
)
from ui import state


def test_feature_maps_default_view():
    at = app(FEATURE_MAPS)
    assert len(at.get("plotly_chart")) == 1
    assert image_counts(at) == [1, 1, 5]  # input, overlay, strongest channel of 5 blocks
    assert at.selectbox(key=state.CHANNEL).value == at.dataframe[0].value["channel"][0]


@pytest.mark.parametrize(
    ("kind", "key", "value"),
    [("selectbox", state.LAYER, "Conv1_relu"), ("radio", state.CHANNELS, "range"),
     ("toggle", state.SHARED_SCALE, True), ("selectbox", state.COLORSCALE, "gray"),
     ("selectbox", state.IMAGE, "rocket.png"), ("slider", state.COUNT, 64)],
)  # fmt: skip
def test_feature_maps_widgets(kind, key, value):
    at = app(FEATURE_MAPS, **SMALL)
    getattr(at, kind)(key=key).set_value(value).run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 1
    assert getattr(at, kind)(key=key).value == value


def test_feature_maps_compare_with_another_image():
    at = app(FEATURE_MAPS, **SMALL)
    at.radio(key=state.COMPARE).set_value("image").run()
    at.selectbox(key=state.OTHER_IMAGE).set_value("brick.png").run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 3
    *_, strip, other_strip = image_counts(at)  # input, overlay, then one strip per image
    assert strip == other_strip > 1


def test_feature_maps_compare_random_with_trained():
    at = app(FEATURE_MAPS, backbone="vgg16", weights="random")
    at.radio(key=state.COMPARE).set_value("weights").run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 3
    assert "HED" in texts(at.markdown)


def test_feature_maps_compare_weights_that_cannot_load():
    at = app(FEATURE_MAPS, **SMALL)
    at.radio(key=state.COMPARE).set_value("weights").run()
    assert not at.exception
    assert "Cannot load auto weights" in texts(at.warning)
    assert len(at.get("plotly_chart")) == 1


def test_uploaded_model_file(tmp_path):
    at = app(FEATURE_MAPS, weights="file")
    assert "Upload a weights file" in texts(at.info)
    at.file_uploader(key=state.WEIGHTS_FILE).set_value(
        ("tiny.keras", tiny_model_file(tmp_path), "application/octet-stream")
    ).run()
    assert not at.exception, at.exception
    layers = [option.split(" — ")[0] for option in at.selectbox(key=state.LAYER).options]
    assert layers == ["conv", "pool", "conv2", "gap", "head"]
    assert "your model tiny.keras" in texts(at.sidebar.caption)
    at.selectbox(key=state.LAYER).set_value("conv2").run()
    assert len(at.get("plotly_chart")) == 1
    at.selectbox(key=state.LAYER).set_value("head").run()
    assert "not a map" in texts(at.info)


def test_url_reproduces_the_view():
    at = app(FEATURE_MAPS, **SMALL, layer="block_3_expand_relu", image="coffee.png", count="4")
    assert at.selectbox(key=state.BACKBONE).value == "mobilenetv2"
    assert at.selectbox(key=state.LAYER).value == "block_3_expand_relu"
    assert at.selectbox(key=state.IMAGE).value == "coffee.png"
    assert at.slider(key=state.COUNT).value == 4


def test_url_with_unknown_values_falls_back_to_defaults():
    at = app(FEATURE_MAPS, backbone="nonsense", layer="nowhere", count="x", shared="yes")
    assert at.selectbox(key=state.BACKBONE).value == "vgg16"
    assert at.selectbox(key=state.LAYER).value == "block4_pool"
    assert at.slider(key=state.COUNT).value == 16
    assert at.toggle(key=state.SHARED_SCALE).value is False


def test_uploaded_weights_file_loads_into_the_registry_backbone(tmp_path):
    path = tmp_path / "w.weights.h5"
    featlib.load_backbone("mobilenetv2", weights="random", seed=5).model.save_weights(path)
    at = app(**{**SMALL, "weights": "file"})
    at.file_uploader(key=state.WEIGHTS_FILE).set_value(
        ("mine_notop.h5", path.read_bytes(), "application/octet-stream")  # Keras' own naming
    ).run()
    assert not at.exception, at.exception
    assert "weights file mine_notop.h5" in texts(at.sidebar.caption)
    assert len(at.selectbox(key=state.LAYER).options) > 100  # the whole MobileNetV2
