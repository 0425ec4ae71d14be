"""AppTest for every page of the Streamlit app: widgets set by key, no exception, the expected
elements present. Offline; small sets (the bundled photos, or a few generated images)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

import featlib
from ui import state

APP = "../app.py"
FEATURE_MAPS = "app_pages/feature_maps.py"
PROJECTIONS = "app_pages/projections.py"
NEIGHBOURS = "app_pages/neighbours.py"
CHECKS = "app_pages/checks.py"  # the page's own tests: tests/test_app_checks.py
MODEL = "app_pages/model.py"
SMALL = {"backbone": "mobilenetv2", "weights": "random"}  # fast, and needs no weights file


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """No network, an empty Keras cache, a fresh feature store, no cached data from before,
    no UMAP compilation in the background, and full error details."""
    monkeypatch.setattr(featlib, "warm_up_umap", lambda: None)
    monkeypatch.setenv("FEATLIB_OFFLINE", "1")
    monkeypatch.setenv("FEATLIB_CACHE_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    st.cache_data.clear()
    # .streamlit/config.toml hides error details from users; tests want to read them.
    shown = st.config.get_option("client.showErrorDetails")
    st.config.set_option("client.showErrorDetails", "full")
    yield
    st.config.set_option("client.showErrorDetails", shown)


def png(seed: int, size=(48, 40)) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def app(page: str | None = None, **params) -> AppTest:
    """The app after its first run, with URL parameters, on ``page``."""
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params.update(params)
    at.run()
    if page is not None:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


def image_counts(at: AppTest) -> list[int]:
    """Pictures in each ``st.image`` call, in page order."""
    return [len(e.proto.imgs) for e in at.get("image")]


def test_home_shows_the_samples_and_writes_the_url():
    at = app()
    assert [m.value for m in at.metric] == ["10", "10", "2", "0"]
    assert image_counts(at) == [10]
    assert at.query_params["backbone"] == "vgg16"
    assert at.query_params["layer"] == "block4_pool"
    assert "HED" in texts(at.caption)


def test_home_upload_with_a_bad_file_keeps_the_good_ones():
    at = app()
    at.file_uploader(key=state.UPLOADS).set_value(
        [("a.png", png(0), "image/png"), ("broken.png", b"not a png", "image/png"),
         ("b.png", png(1), "image/png")]
    ).run()  # fmt: skip
    assert not at.exception
    assert at.selectbox(key=state.IMAGES).value == "uploads"
    assert [m.value for m in at.metric] == ["3", "2", "0", "1"]
    assert "could not be used" in texts(at.warning)
    errors = at.dataframe[-1].value
    assert list(errors["file"]) == ["broken.png"]


def test_home_upload_zip_of_class_folders():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for i, label in enumerate(["cat", "cat", "dog"]):
            archive.writestr(f"{label}/{i}.png", png(i))
    at = app()
    at.file_uploader(key=state.UPLOADS).set_value(("pets.zip", buf.getvalue(), "application/zip"))
    at.run()
    assert not at.exception
    assert [m.value for m in at.metric] == ["3", "3", "2", "0"]


def test_uploads_stay_in_their_session():
    first, second = app(), app()
    first.file_uploader(key=state.UPLOADS).set_value(("a.png", png(0), "image/png")).run()
    second.selectbox(key=state.IMAGES).set_value("uploads").run()
    assert not second.exception
    assert "No uploads yet" in texts(second.info)


def test_uploads_are_kept_across_pages_until_forgotten():
    at = app()
    at.file_uploader(key=state.UPLOADS).set_value(("a.png", png(0), "image/png")).run()
    at.switch_page(FEATURE_MAPS).run()
    assert at.selectbox(key=state.IMAGE).value == "a.png"
    at.switch_page("app_pages/home.py").run()
    assert "kept while you switch pages" in texts(at.caption)
    at.button(key=state.FORGET_UPLOADS).click().run()
    assert at.selectbox(key=state.IMAGES).value == "photos"
    assert [m.value for m in at.metric] == ["10", "10", "2", "0"]


def test_weights_unavailable_offers_random():
    at = app(backbone="mobilenetv2")
    assert "No auto weights for mobilenetv2" in texts(at.warning)
    at.button(key=state.USE_RANDOM).click().run()
    assert not at.exception
    assert at.selectbox(key=state.WEIGHTS).value == "random"
    assert not at.warning


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


def test_model_page():
    at = app(MODEL, **SMALL)
    assert at.metric[0].value == "mobilenetv2"
    layers = at.dataframe[0].value
    assert "receptive field (px)" in layers.columns and len(layers) > 100
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5" in texts(at.info)
    bb = featlib.load_backbone(SMALL["backbone"], weights=SMALL["weights"])
    run = featlib.Extractor(bb, featlib.list_layers(bb)[-1].name, precision="auto")  # remembered
    assert f"in {run.precision}, {run.batch_size} images per pass" in texts(at.caption)


def tiny_model_file(tmp_path) -> bytes:
    import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(2, name="head")(x)
    path = tmp_path / "tiny.keras"
    keras.Model(inputs, outputs).save(path)
    return path.read_bytes()


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


def test_uploaded_model_file_that_is_not_a_model():
    at = app(weights="file")
    at.file_uploader(key=state.WEIGHTS_FILE).set_value(("bad.keras", b"junk", "application/zip"))
    at.run()
    assert not at.exception
    assert "bad.keras" in texts(at.error)


@pytest.fixture
def fake_imagenet(tmp_path):
    """A Keras cache holding MobileNetV2 'ImageNet' weights with the top (random values, saved
    in Keras' legacy .h5 layout) and a class index naming class i "class_i"."""
    import json

    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    from featlib.models.imagenet import CLASS_INDEX_FILE
    from featlib.models.registry import get_spec

    folder = tmp_path / "keras" / "models"
    folder.mkdir(parents=True)
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, include_top=True)
    with h5py.File(folder / get_spec("mobilenetv2").imagenet_files[1], "w") as h5:
        legacy_h5_format.save_weights_to_hdf5_group(h5, model)
    index = {str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}
    (folder / CLASS_INDEX_FILE).write_text(json.dumps(index))
    return folder


@pytest.mark.slow
def test_imagenet_predictions_on_the_model_and_projection_pages(fake_imagenet):
    at = app(MODEL, **SMALL)
    assert not at.info
    top5 = at.dataframe[-1].value
    assert list(top5.columns) == ["image", "#1", "#2", "#3", "#4", "#5"]
    assert len(top5) == 10 and top5["#1"].str.startswith("class_").all()
    at.switch_page(PROJECTIONS).run()
    at.radio(key=state.COLOR_BY).set_value("prediction").run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 1


def test_an_unusable_store_is_said_once_and_the_page_still_works(tmp_path, monkeypatch):
    from ui import resources

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("FEATLIB_CACHE_DIR", str(blocker / "store"))
    resources._store.clear()
    try:
        at = app(PROJECTIONS, **SMALL)
        assert "feature store is off" in texts(at.warning)
        assert len(at.get("plotly_chart")) == 1
        at.switch_page(NEIGHBOURS).run()
        at.radio(key=state.POOLING).set_value("max").run()  # computed again, without the store
        assert not at.exception, at.exception
        assert len(at.get("image")) > 0
        assert "feature store is off" not in texts(at.warning)
    finally:
        resources._store.clear()


TEACHING = "app_pages/teaching.py"


@pytest.mark.parametrize("page", [FEATURE_MAPS, PROJECTIONS, NEIGHBOURS, CHECKS, TEACHING])
def test_every_page_explains_itself(page):
    at = app(page, **SMALL)
    assert not at.exception, at.exception
    assert "What am I looking at?" in [e.label for e in at.expander]
