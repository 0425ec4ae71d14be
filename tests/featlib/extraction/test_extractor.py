"""Extraction equals plain Keras, pools by closed forms, and keeps bf16 close to fp32."""

from __future__ import annotations

import io
import os
import sys
import threading

import numpy as np
import pytest
from PIL import Image

import featlib
from featlib._tf import keras
from featlib.errors import FeatlibError, OptionError
from featlib.extraction import extractor, pipeline, settings, tuning
from featlib.extraction._device import default_batch_size, resolve_precision
from featlib.extraction.extractor import Extractor
from featlib.extraction.settings import Settings
from featlib.extraction.store import FeatureStore
from featlib.models.backbones import load_model_file
from featlib.models.fold import list_foldable
from featlib.models.layers import list_layers

EQUIVALENCE = [("vgg16", 64), ("resnet50", 64), ("mobilenetv2", 64), ("efficientnetb0", 64),
               ("inceptionv3", 96)]  # fmt: skip


def _images(n, size, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (n, *size, 3)).astype(np.uint8)


def _png_files(n, seed=0):
    def png(pixels):
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, "PNG")
        return buf.getvalue()

    return [(f"{i}.png", png(x)) for i, x in enumerate(_images(n, (40, 30), seed))]


def _assert_close(got, want):
    want = np.asarray(want)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * max(np.abs(want).max(), 1e-6))


def _assert_equals_plain_keras(bb, names):
    """Full maps of ``names`` from an Extractor against the backbone's own Keras graph."""
    x = _images(3, bb.input_size)
    ours = Extractor(bb, names, pooling=None, batch_size=2)(x)
    model = bb.model
    reference = keras.Model(model.inputs, [model.get_layer(n).output for n in names])
    for n, want in zip(names, reference(bb.preprocess(x)), strict=True):
        _assert_close(ours[n], want)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "size"), EQUIVALENCE)
def test_every_layer_equals_plain_keras(name, size):
    bb = featlib.load_backbone(name, weights="random", seed=0, input_size=(size, size))
    _assert_equals_plain_keras(bb, [i.name for i in list_layers(bb)])


@pytest.mark.parametrize(("name", "size"), EQUIVALENCE)
def test_block_outputs_through_folded_batchnorm_equal_plain_keras(name, size):
    """Asking for block outputs only lets every BatchNormalization be folded into its conv."""
    bb = featlib.load_backbone(name, weights="random", seed=0, input_size=(size, size))
    names = [i.name for i in featlib.block_outputs(bb)]
    batchnorms = [la for la in bb.model.layers if isinstance(la, keras.layers.BatchNormalization)]
    assert len(list_foldable(bb.model, keep=names)) == len(batchnorms)
    _assert_equals_plain_keras(bb, names)


def test_nested_user_model_equals_plain_keras(tmp_path, nested_model):
    path = tmp_path / "transfer.keras"
    nested_model.save(path)
    bb = load_model_file(path, preprocessing="scale")
    names = [i.name for i in list_layers(bb)]
    x = _images(4, (32, 32))
    ours = Extractor(bb, names, pooling=None)(x)
    prepared = x.astype(np.float32) / 255.0
    inner = bb.model.get_layer("backbone")
    inner_in = keras.Model(bb.model.inputs, bb.model.get_layer("identity_scale").output)(prepared)
    for n in names:
        if n.startswith("backbone/"):
            sub = keras.Model(inner.inputs, inner.get_layer(n.split("/")[1]).output)
            want = sub(inner_in)
        else:
            want = keras.Model(bb.model.inputs, bb.model.get_layer(n).output)(prepared)
        _assert_close(ours[n], want)


@pytest.mark.parametrize("pooling", ["avg", "max", "flatten", None])
def test_pooling_by_closed_forms(model_file, pooling):
    bb = load_model_file(model_file)
    x = _images(5, (32, 32))
    maps = Extractor(bb, ["conv2", "probs"], pooling=None)(x)
    pooled = Extractor(bb, ["conv2", "probs"], pooling=pooling, batch_size=2)(x)
    expected = {
        "avg": maps["conv2"].mean(axis=(1, 2)),
        "max": maps["conv2"].max(axis=(1, 2)),
        "flatten": maps["conv2"].reshape(5, -1),
        None: maps["conv2"],
    }[pooling]
    _assert_close(pooled["conv2"], expected)
    _assert_close(pooled["probs"], maps["probs"])  # pooling leaves vectors alone
    assert pooled["conv2"].dtype == np.float32


def test_batches_do_not_change_results(model_file):
    bb = load_model_file(model_file)
    x = _images(7, (32, 32))
    one = Extractor(bb, "conv2", batch_size=1)(x)["conv2"]
    many = Extractor(bb, "conv2", batch_size=32)(x)["conv2"]
    _assert_close(one, many)


def test_bfloat16_keeps_pooled_vectors_close_on_real_photos():
    from skimage import data
    from skimage.transform import resize

    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    x = np.stack([(resize(p, (224, 224)) * 255).astype(np.uint8) for p in photos])
    bb = featlib.load_backbone("vgg16", weights="offline")
    layers = ["block3_pool", "block4_pool", "block5_pool"]
    fp32 = Extractor(bb, layers, precision="float32")(x)
    bf16 = Extractor(bb, layers, precision="bfloat16")(x)
    for n in layers:
        a, b = fp32[n], bf16[n]
        cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        assert cosine.min() >= 0.999, (n, cosine)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"layers": "nope"}, r"no layer 'nope'.*list_layers"),
        ({"layers": []}, "at least one layer"),
        ({"layers": "conv1", "pooling": "mean"}, r"Received: pooling='mean'"),
        ({"layers": "conv1", "precision": "int8"}, r"Received: precision='int8'"),
        ({"layers": "conv1", "batch_size": 0}, r"Received: batch_size=0"),
    ],
)
def test_bad_arguments(model_file, kwargs, match):
    with pytest.raises(FeatlibError, match=match):
        Extractor(load_model_file(model_file), **kwargs)


def test_images_of_the_wrong_shape_are_refused(model_file):
    ex = Extractor(load_model_file(model_file), "conv1")
    with pytest.raises(OptionError, match=r"uint8 of shape \(n, 32, 32, 3\).*\(2, 16, 16, 3\)"):
        ex(np.zeros((2, 16, 16, 3), np.uint8))


def test_precision_and_batch_defaults():
    assert resolve_precision("float32") == "float32"
    assert resolve_precision("auto") in ("float32", "bfloat16", "mixed_float16")
    assert default_batch_size((224, 224)) == 32
    assert default_batch_size((600, 600)) == 4


def test_extractors_share_one_folded_copy_unless_a_conv_is_asked_for():
    bb = featlib.load_backbone("mobilenetv2", weights="random", seed=0, input_size=(64, 64))
    first = Extractor(bb, "out_relu")
    second = Extractor(bb, ["block_4_add", "out_relu"])
    assert first._model.get_layer("Conv1") is second._model.get_layer("Conv1")
    assert first._model.get_layer("Conv1") is not bb.model.get_layer("Conv1")  # folded copy
    with_conv = Extractor(bb, ["Conv1", "out_relu"], pooling=None)
    assert with_conv._model.get_layer("Conv1") is not first._model.get_layer("Conv1")
    x = _images(2, bb.input_size)
    plain = keras.Model(bb.model.inputs, bb.model.get_layer("Conv1").output)(bb.preprocess(x))
    _assert_close(with_conv(x)["Conv1"], plain)  # the conv's own output, before its BN


def test_extract_set_equals_the_extractor_and_decodes_at_the_lowest_priority(
    model_file, monkeypatch
):
    files = _png_files(11)
    images = featlib.from_uploads([*files, ("copy.png", files[0][1])])
    priorities = []
    load = pipeline._load

    def spy(*args):
        priorities.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return load(*args)

    monkeypatch.setattr(pipeline, "_load", spy)
    bb = load_model_file(model_file)
    feats = featlib.extract_set(bb, images, ["conv1", "gap"], batch_size=4)
    assert feats.names == [r.name for r in images.ok] and feats.computed == 11
    plain = Extractor(bb, ["conv1", "gap"])(images.load_batch(images.ok, bb.input_size))
    for name, want in plain.items():
        _assert_close(feats.features[name], want)
    assert len(priorities) == 11  # the copy is not decoded twice
    if sys.platform.startswith("linux"):
        assert set(priorities) == {19}


@pytest.mark.parametrize("with_batchnorm", [True, False])
def test_the_shared_folded_copy_does_not_keep_a_model_alive(model_file, with_batchnorm):
    import gc
    import weakref

    if with_batchnorm:
        bb = featlib.load_backbone("mobilenetv2", weights="random", seed=0, input_size=(32, 32))
    else:
        bb = load_model_file(model_file)
    ex = Extractor(bb, list_layers(bb)[-1].name)
    ex(_images(1, bb.input_size))
    model = weakref.ref(bb.model)
    assert model() in extractor._FOLDED
    del bb, ex
    gc.collect()
    assert model() is None


def test_an_image_that_fails_while_extracting_is_reported_and_the_rest_goes_on(
    model_file, tmp_path
):
    folder = tmp_path / "set"
    folder.mkdir()
    rng = np.random.default_rng(2)
    for i in range(6):
        pixels = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")
    images = featlib.from_folder(folder)
    (folder / "3.png").write_bytes(b"replaced after the set was read")
    bb = load_model_file(model_file)
    feats = featlib.extract_set(bb, images, "gap", batch_size=4)
    assert feats.names == ["0.png", "1.png", "2.png", "4.png", "5.png"]
    assert [(r.name, r.error) for r in feats.errors] == [
        ("3.png", "the file changed since the set was built; rebuild it")
    ]
    assert feats.computed == 5
    ok = [r for r in images.ok if r.name != "3.png"]
    _assert_close(
        feats.features["gap"], Extractor(bb, "gap")(images.load_batch(ok, (32, 32)))["gap"]
    )


def _pngs(n, seed=0):
    """An ImageSet of ``n`` random 30x40 PNG uploads."""
    return featlib.from_uploads(_png_files(n, seed))


def test_extract_set_refuses_an_extractor_made_for_something_else(model_file, tmp_path):
    from tests.conftest import make_tiny_model

    bb = load_model_file(model_file)
    make_tiny_model(name="other").save(tmp_path / "other.keras")
    other = load_model_file(tmp_path / "other.keras")
    images, store = _pngs(3), FeatureStore(tmp_path / "store")
    ex = Extractor(bb, "gap", pooling="avg", precision="float32")
    for backbone, layers, kwargs, what in [
        (other, "gap", {}, "backbone"),
        (bb, "conv1", {}, "layers"),
        (bb, "gap", {"pooling": "max"}, "pooling='max'"),
        (bb, "gap", {"precision": "bfloat16"}, "precision='bfloat16'"),
    ]:
        with pytest.raises(OptionError, match=rf"made for what extract_set is asked: {what}.*"):
            featlib.extract_set(backbone, images, layers, extractor=ex, store=store, **kwargs)
    assert store.info()["entries"] == 0
    feats = featlib.extract_set(bb, images, "gap", extractor=ex, precision="float32", store=store)
    assert feats.computed == 3 and store.info()["entries"] == 3


def test_a_fully_stored_set_runs_no_model(model_file, tmp_path, monkeypatch):
    bb, images, store = load_model_file(model_file), _pngs(4), FeatureStore(tmp_path)
    first = featlib.extract_set(bb, images, ["conv1", "gap"], store=store)

    def no_model(*args, **kwargs):
        raise AssertionError("an Extractor was built")

    monkeypatch.setattr(pipeline, "Extractor", no_model)
    again = featlib.extract_set(bb, images, ["conv1", "gap"], store=store)
    assert again.computed == 0
    for name, want in first.features.items():
        np.testing.assert_array_equal(again.features[name], want)


def test_auto_times_only_a_job_large_enough_to_repay_it(model_file, tmp_path, monkeypatch):
    monkeypatch.setenv("FEATLIB_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(settings, "_measured", {})
    timed = []
    monkeypatch.setattr(tuning, "_measure", lambda bb: timed.append(bb) or Settings("float32", 3))
    bb, images = load_model_file(model_file), _pngs(5)
    small = featlib.extract_set(bb, images, "gap", precision="auto")
    assert timed == []  # 5 images cannot repay the timing: the hardware defaults
    arch = settings.architecture(bb.name, bb.include_top, bb.key)
    defaults = Settings(resolve_precision("auto"), default_batch_size(bb.input_size), False, False)
    assert settings.known_settings(arch, bb.input_size) == defaults
    monkeypatch.setattr(pipeline, "worth_tuning", lambda n, size: n >= 5)
    large = featlib.extract_set(bb, images, "gap", precision="auto")
    assert timed == [bb]
    assert settings.known_settings(arch, bb.input_size) == Settings("float32", 3)
    np.testing.assert_allclose(large.features["gap"], small.features["gap"], rtol=2e-2, atol=2e-2)


def test_low_precision_runs_on_the_folded_copy_and_leaves_the_backbone_alone():
    bb = featlib.load_backbone("mobilenetv2", weights="random", seed=0, input_size=(64, 64))
    x = _images(3, bb.input_size)
    fp32 = Extractor(bb, "out_relu")(x)["out_relu"]
    ex = Extractor(bb, "out_relu", precision="bfloat16")
    got = ex(x)["out_relu"]
    assert {layer.compute_dtype for layer in bb.model.layers} == {"float32"}
    assert ex._model.get_layer("Conv1").compute_dtype == "bfloat16"
    assert Extractor(bb, "out_relu")._model.get_layer("Conv1").compute_dtype == "float32"
    cosine = (got * fp32).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(fp32, axis=1)
    assert cosine.min() >= 0.99
