"""Shared fixtures: offline, a private cache, and small Keras models with named layers."""

from __future__ import annotations

import os

# Tests never touch the network and never write to the user's caches.
os.environ["FEATLIB_OFFLINE"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _private_caches(tmp_path_factory, monkeypatch):
    root = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("FEATLIB_CACHE_DIR", str(root / "featlib-cache"))
    monkeypatch.setenv("KERAS_HOME", str(root / "keras-home"))


@pytest.fixture
def rng():
    return np.random.RandomState(0)


def make_tiny_model(input_size=(32, 32), n_classes=3, name="tiny"):
    """A small functional CNN with named layers: conv, pool, conv, global pool, dense."""
    from featlib._tf import keras

    inputs = keras.Input((*input_size, 3), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name=name)


def make_nested_model(input_size=(32, 32)):
    """A transfer-learning-style classifier: a backbone model inside an outer model."""
    from featlib._tf import keras

    keras.utils.set_random_seed(1)
    inner = make_tiny_model(input_size, name="backbone")
    features = keras.Model(inner.inputs, inner.get_layer("conv2").output, name="backbone")
    inputs = keras.Input((*input_size, 3), name="outer_image")
    x = keras.layers.Rescaling(1.0, name="identity_scale")(inputs)
    x = features(x)
    x = keras.layers.Conv2D(4, 1, activation="relu", name="head_conv")(x)
    x = keras.layers.GlobalMaxPooling2D(name="head_pool")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="head_probs")(x)
    return keras.Model(inputs, outputs, name="transfer")


@pytest.fixture
def tiny_model():
    from featlib._tf import keras

    keras.utils.set_random_seed(0)
    return make_tiny_model()


@pytest.fixture
def nested_model():
    return make_nested_model()


@pytest.fixture
def model_file(tmp_path, tiny_model):
    path = tmp_path / "tiny.keras"
    tiny_model.save(path)
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The address of ``streamlit run app.py`` served for the browser tests of one module."""
    from tests.system.browser_helpers import serve

    with serve(tmp_path_factory) as served:
        yield served.url


# Modules whose tests run side by side on the workers of ``pytest -n`` (``make test``); every
# other module runs whole on one worker, so that its module-scoped fixtures (a local Ray, a
# Streamlit server, computed features) are built once.
SPREAD = frozenset({"test_app_walk.py"})


def pytest_collection_modifyitems(config, items):
    for item in items:
        # Grouped by path, not name: tests/app/ and tests/featlib/ hold files of the same name.
        if item.path.name not in SPREAD:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
