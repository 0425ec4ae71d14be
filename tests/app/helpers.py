"""What the page tests share: the pages' paths, a small fast choice of model, and AppTest helpers.
The fixtures ``offline`` (autouse) and ``fake_imagenet`` are made fixtures for tests/app/ by its
conftest.py."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

import featlib

APP = str(Path(__file__).resolve().parents[2] / "app.py")
HOME = "app_pages/home.py"
FEATURE_MAPS = "app_pages/feature_maps.py"
PROJECTIONS = "app_pages/projections.py"
NEIGHBOURS = "app_pages/neighbours.py"
CHECKS = "app_pages/checks.py"
TEACHING = "app_pages/teaching.py"
MODEL = "app_pages/model.py"
SMALL = {"backbone": "mobilenetv2", "weights": "random"}  # fast, and needs no weights file


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


@pytest.fixture
def feature_file(tmp_path, monkeypatch):
    """The app as ``featlib app FEATURES --images ROOT`` starts it: 120 made-up 32-d vectors of
    4 classes with their pictures, one picture deleted after extraction. Yields ``(feature
    file, images folder)``."""
    from featlib.cli.commands import APP_FEATURES_ENV, APP_IMAGES_ENV
    from tests.system.feature_sets import write_feature_set

    path, root = write_feature_set(tmp_path / "set", 120, dim=32, n_classes=4, side=16)
    (root / "class_03" / "000119.png").unlink()
    monkeypatch.setenv(APP_FEATURES_ENV, str(path))
    monkeypatch.setenv(APP_IMAGES_ENV, str(root))
    return path, root


def plotly_array(value) -> np.ndarray:
    """An array of a plotly figure's JSON: a list, or a typed array ``{"dtype", "bdata"}``."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value)


def plotted_rows(at: AppTest) -> dict[str, list[int]]:
    """The first plotly chart's traces: trace name -> the row indices of its points (its
    ``customdata``), as the browser receives them."""
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    return {t["name"]: plotly_array(t["customdata"]).astype(int).tolist() for t in figure["data"]}
