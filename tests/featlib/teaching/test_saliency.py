"""Grad-CAM: on a classifier trained here to answer "is there a bright square?", the heat map's
maximum lies on the square — for a plain model and for the same network nested inside another —
and the maps are tf-keras-vis' (a development-only dependency) on the same model, image and
class: before the softmax with ``ReplaceToLinear``, after it without."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import featlib
from featlib._tf import keras
from featlib.errors import FeatlibError
from featlib.teaching.saliency import gradcam

SIZE = 32
SQUARE = 6


def picture(rng, corner=None) -> np.ndarray:
    """Dim noise; with ``corner`` (row, col), a bright square there."""
    img = rng.integers(0, 90, (SIZE, SIZE, 3)).astype(np.uint8)
    if corner is not None:
        r, c = corner
        img[r : r + SQUARE, c : c + SQUARE] = 255
    return img


def corners(rng, n):
    return rng.integers(0, SIZE - SQUARE, (n, 2))


@pytest.fixture(scope="module")
def square_detector():
    """A small CNN trained to tell pictures with a bright square from pictures without."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    n = 400
    x = np.stack([picture(rng, c if i % 2 else None) for i, c in enumerate(corners(rng, n))])
    y = np.arange(n) % 2
    inputs = keras.Input((SIZE, SIZE, 3))
    h = keras.layers.Rescaling(1 / 255)(inputs)
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(h)
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(h)
    h = keras.layers.GlobalMaxPooling2D()(h)
    outputs = keras.layers.Dense(2, activation="softmax", name="probs")(h)
    model = keras.Model(inputs, outputs, name="detector")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x.astype(np.float32), y, epochs=8, batch_size=32, verbose=0)
    return model


def backbone_of(model, tmp_path, name):
    path = tmp_path / f"{name}.keras"
    model.save(path)
    return featlib.load_model_file(path, preprocessing="none")


def assert_peak_on_square(cam, corner):
    scale = SIZE // cam.heatmap.shape[0]
    row, col = np.unravel_index(np.argmax(cam.heatmap), cam.heatmap.shape)
    r, c = corner
    assert r - 1 <= row * scale <= r + SQUARE and c - 1 <= col * scale <= c + SQUARE


@pytest.mark.slow
def test_heat_map_peaks_on_the_square(square_detector, tmp_path):
    bb = backbone_of(square_detector, tmp_path, "detector")
    rng = np.random.default_rng(1)
    for corner in corners(rng, 5):
        cam = gradcam(bb, picture(rng, corner), "conv2", target=1)
        assert cam.heatmap.shape == (SIZE, SIZE) and cam.target_kind == "class"
        assert cam.heatmap.min() >= 0 and cam.heatmap.max() == pytest.approx(1.0)
        assert_peak_on_square(cam, corner)
    assert gradcam(bb, picture(rng, (3, 3)), "conv2").target == 1  # predicted class by default


@pytest.mark.slow
def test_nested_model_layers_work_too(square_detector, tmp_path):
    inputs = keras.Input((SIZE, SIZE, 3))
    outputs = keras.layers.Identity(name="after")(square_detector(inputs))
    outer = keras.Model(inputs, outputs, name="transfer")
    bb = backbone_of(outer, tmp_path, "transfer")
    rng = np.random.default_rng(2)
    corner = (20, 4)
    cam = gradcam(bb, picture(rng, corner), "detector/conv2", target=1)
    assert_peak_on_square(cam, corner)


def test_feature_extractors_explain_their_strongest_channel(model_file):
    bb = featlib.load_model_file(model_file)
    layers = [i for i in featlib.list_layers(bb) if i.spatial]
    image = np.random.default_rng(0).integers(0, 256, (*bb.input_size, 3), dtype=np.uint8)
    model = keras.Model(bb.model.inputs, bb.model.get_layer(layers[-1].name).output)
    strongest = int(np.argmax(model(bb.preprocess(image[None]))[0].numpy().mean(axis=(0, 1))))
    cam = gradcam(dataclasses.replace(bb, model=model), image, layers[0].name)
    assert cam.target_kind == "channel" and cam.target == strongest


@pytest.mark.parametrize(
    ("layer", "kwargs", "match"),
    [
        ("gap", {}, "spatial"),
        ("conv1", {"target": 9}, "target must be in"),
        ("conv1", {"shape": 8}, "shape"),
        ("conv1", {"score": "softmax"}, "score must be one of"),
    ],
)
def test_bad_arguments(model_file, layer, kwargs, match):
    bb = featlib.load_model_file(model_file)
    side = kwargs.pop("shape", bb.input_size[0])
    image = np.zeros((side, side, 3), np.uint8)
    with pytest.raises(FeatlibError, match=match):
        gradcam(bb, image, layer, **kwargs)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.slow
@pytest.mark.parametrize(("score", "linear"), [("logit", True), ("probability", False)])
def test_the_same_maps_as_tf_keras_vis(square_detector, tmp_path, score, linear):
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    bb = backbone_of(square_detector, tmp_path, "detector")
    reference = Gradcam(
        square_detector, model_modifier=ReplaceToLinear() if linear else None, clone=True
    )
    rng = np.random.default_rng(3)
    compared = 0
    for corner in corners(rng, 4):
        image = picture(rng, corner)
        for target in (0, 1):
            ours = gradcam(bb, image, "conv2", target=target, score=score)
            theirs = np.asarray(reference(
                CategoricalScore(target), image[None].astype(np.float32),
                penultimate_layer="conv2", expand_cam=False, normalize_cam=False,
            )[0])  # fmt: skip
            assert ours.score_kind == score
            if theirs.max() > 0:
                assert correlation(ours.heatmap, theirs) >= 0.999
                compared += 1
            else:
                assert ours.heatmap.max() == 0
    assert compared >= 4  # a map on every picture, at least for the square's class


@pytest.mark.slow
def test_the_logit_is_read_before_the_softmax(square_detector, tmp_path):
    bb = backbone_of(square_detector, tmp_path, "detector")
    image = picture(np.random.default_rng(4), (10, 10))
    head = square_detector.get_layer("probs")
    pooled = keras.Model(square_detector.inputs, head.input)(image[None].astype(np.float32))
    kernel, bias = head.get_weights()
    logits = pooled.numpy() @ kernel + bias
    assert gradcam(bb, image, "conv2", target=1).score == pytest.approx(logits[0, 1], rel=1e-4)
    probability = gradcam(bb, image, "conv2", target=1, score="probability").score
    assert probability == pytest.approx(np.exp(logits[0, 1]) / np.exp(logits[0]).sum(), rel=1e-4)
