"""Folding BatchNormalization into convs: the folded model against the original Keras model."""

from __future__ import annotations

import numpy as np
import pytest

import featlib
from featlib._tf import keras
from featlib.errors import UnknownLayerError
from featlib.models.fold import FoldedBatchNorm, fold_batchnorm, list_foldable
from featlib.models.layers import layer_outputs

L = keras.layers


def _bns(model) -> list:
    """Every BatchNormalization of ``model``, nested models included."""
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out += _bns(layer)
        elif isinstance(layer, L.BatchNormalization):
            out.append(layer)
    return out


def _randomize_bns(model, seed=0):
    """Give every BatchNormalization statistics and an affine map far from the identity."""
    rng = np.random.RandomState(seed)
    for bn in _bns(model):
        n = bn.moving_mean.shape[0]
        bn.moving_mean.assign(rng.normal(0.0, 0.5, n).astype("float32"))
        bn.moving_variance.assign(rng.uniform(0.3, 3.0, n).astype("float32"))
        if bn.scale:
            bn.gamma.assign(rng.uniform(0.5, 2.0, n).astype("float32"))
        if bn.center:
            bn.beta.assign(rng.normal(0.0, 0.5, n).astype("float32"))
    return model


def _images(shape=(16, 16, 4), n=3, seed=0):
    return np.random.RandomState(seed).normal(0.0, 1.0, (n, *shape)).astype("float32")


def _assert_same(a, b, rtol=1e-5):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= rtol * max(np.abs(a).max(), 1.0)


def _conv_bn(conv, bn=None, before=None):
    """input → [before] → conv → bn → relu, with the BN's output under the name "bn"."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 4), name="image")
    x = before(inputs) if before is not None else inputs
    x = (bn or L.BatchNormalization(name="bn"))(conv(x))
    outputs = L.ReLU(name="relu")(x)
    return _randomize_bns(keras.Model(inputs, outputs, name="conv_bn"))


FOLDABLE = {
    "conv": lambda: _conv_bn(L.Conv2D(6, 3, padding="same", use_bias=False, name="conv")),
    "conv_bias": lambda: _conv_bn(L.Conv2D(6, 3, strides=2, name="conv")),
    "conv_groups": lambda: _conv_bn(L.Conv2D(6, 3, groups=2, dilation_rate=2, name="conv")),
    "depthwise_x2": lambda: _conv_bn(L.DepthwiseConv2D(3, depth_multiplier=2, name="conv")),
    "no_scale": lambda: _conv_bn(
        L.Conv2D(6, 1, name="conv"), L.BatchNormalization(scale=False, name="bn")
    ),
    "no_center": lambda: _conv_bn(
        L.Conv2D(6, 1, name="conv"), L.BatchNormalization(center=False, name="bn")
    ),
    "neither": lambda: _conv_bn(
        L.DepthwiseConv2D(3, name="conv"),
        L.BatchNormalization(scale=False, center=False, epsilon=0.1, name="bn"),
    ),
}


@pytest.mark.parametrize("case", sorted(FOLDABLE))
def test_folded_model_computes_the_original(case):
    model = FOLDABLE[case]()
    x = _images()
    folded, n = fold_batchnorm(model)
    assert n == 1 and list_foldable(model) == [("conv", "bn")]
    assert isinstance(folded.get_layer("bn"), FoldedBatchNorm)
    assert folded.get_layer("conv").use_bias
    _assert_same(model(x, training=False), folded(x, training=False))
    _assert_same(model.predict(x, verbose=0), folded.predict(x, verbose=0))


def _conv_feeds_two():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 4))
    y = L.Conv2D(4, 3, padding="same", name="conv")(inputs)
    outputs = L.Add()([y, L.BatchNormalization(name="bn")(y)])
    return keras.Model(inputs, outputs)


def _conv_is_an_output():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 4))
    y = L.Conv2D(4, 3, name="conv")(inputs)
    return keras.Model(inputs, [y, L.BatchNormalization(name="bn")(y)])


def _shared_conv():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 4))
    conv = L.Conv2D(4, 3, padding="same", name="conv")
    x = L.BatchNormalization(name="bn")(conv(inputs))
    return keras.Model(inputs, L.BatchNormalization(name="bn2")(conv(x)))


def _bn_in_training_mode():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 4))
    outputs = L.BatchNormalization(name="bn")(L.Conv2D(4, 3, name="conv")(inputs), training=True)
    return keras.Model(inputs, outputs)


NOT_FOLDABLE = {
    "relu_conv": lambda: _conv_bn(L.Conv2D(6, 3, activation="relu", name="conv")),
    "separable": lambda: _conv_bn(L.SeparableConv2D(6, 3, name="conv")),
    "dense": lambda: _conv_bn(L.Dense(6, name="conv")),
    "bn_on_height": lambda: _conv_bn(
        L.Conv2D(6, 3, name="conv"), L.BatchNormalization(axis=1, name="bn")
    ),
    "conv_feeds_two": _conv_feeds_two,
    "conv_is_an_output": _conv_is_an_output,
    "shared_conv": _shared_conv,
    "bn_in_training_mode": _bn_in_training_mode,
}


@pytest.mark.parametrize("case", sorted(NOT_FOLDABLE))
def test_what_cannot_fold_is_left_alone(case):
    model = NOT_FOLDABLE[case]()
    assert list_foldable(model) == []
    assert fold_batchnorm(model) == (model, 0)


def test_a_kept_conv_is_not_folded_and_keeps_its_own_output():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 4))
    x = L.BatchNormalization(name="bn1")(L.Conv2D(5, 3, name="conv1")(inputs))
    x = L.BatchNormalization(name="bn2")(L.Conv2D(6, 3, name="conv2")(L.ReLU()(x)))
    model = _randomize_bns(keras.Model(inputs, x))
    assert fold_batchnorm(model, keep="conv1")[1] == 1
    folded, n = fold_batchnorm(model, keep=["conv1"])
    assert n == 1 and list_foldable(model, keep=["conv1"]) == [("conv2", "bn2")]
    assert isinstance(folded.get_layer("bn1"), L.BatchNormalization)
    names = ["conv1", "bn1", "conv2", "bn2"]
    x = _images()
    want = keras.Model(model.inputs, layer_outputs(model, names))(x)
    got = keras.Model(folded.inputs, layer_outputs(folded, names))(x)
    for name, a, b in zip(names, want, got, strict=True):
        if name != "conv2":  # folded: it yields bn2's output now
            _assert_same(a, b)
    _assert_same(want[3], got[2])


def test_unknown_kept_name_is_an_error_naming_the_discoverer():
    model = FOLDABLE["conv"]()
    with pytest.raises(UnknownLayerError, match=r"'cnv'.*Closest: conv.*list_layers"):
        fold_batchnorm(model, keep=["cnv"])


def test_the_original_model_is_untouched():
    model = FOLDABLE["conv_bias"]()
    before = [w.copy() for w in model.get_weights()]
    types = [type(layer) for layer in model.layers]
    x = _images()
    want = model(x, training=False)
    folded, _ = fold_batchnorm(model)
    folded.get_layer("conv").set_weights([w * 0 for w in folded.get_layer("conv").get_weights()])
    assert [type(layer) for layer in model.layers] == types
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    _assert_same(want, model(x, training=False))


def _nested(inner_kind):
    keras.utils.set_random_seed(0)
    if inner_kind == "sequential":
        inner = keras.Sequential(
            [
                keras.Input((16, 16, 4)),
                L.Conv2D(6, 3, padding="same", use_bias=False, name="conv"),
                L.BatchNormalization(name="bn"),
                L.ReLU(name="relu"),
            ],
            name="inner",
        )
    else:
        inner_in = keras.Input((16, 16, 4))
        x = L.BatchNormalization(name="bn")(L.Conv2D(6, 3, padding="same", name="conv")(inner_in))
        inner = keras.Model(inner_in, L.ReLU(name="relu")(x), name="inner")
    inputs = keras.Input((16, 16, 4), name="image")
    # The outer layers reuse the inner names: weights must be matched per model, not globally.
    x = L.BatchNormalization(name="bn")(L.Conv2D(6, 3, name="conv")(inner(inputs)))
    return _randomize_bns(keras.Model(inputs, L.GlobalAveragePooling2D()(x), name="outer"))


@pytest.mark.parametrize("inner_kind", ["functional", "sequential"])
def test_nested_models_are_folded_inside(inner_kind):
    model = _nested(inner_kind)
    x = _images()
    folded, n = fold_batchnorm(model)
    assert n == 2 and sorted(list_foldable(model)) == [("conv", "bn"), ("inner/conv", "inner/bn")]
    assert isinstance(folded.get_layer("inner").get_layer("bn"), FoldedBatchNorm)
    assert isinstance(model.get_layer("inner").get_layer("bn"), L.BatchNormalization)
    _assert_same(model(x, training=False), folded(x, training=False))
    want = keras.Model(model.inputs, layer_outputs(model, ["inner/bn"]))(x)
    got = keras.Model(folded.inputs, layer_outputs(folded, ["inner/bn"]))(x)
    _assert_same(want, got)
    kept, n_kept = fold_batchnorm(model, keep=["inner/conv"])
    assert n_kept == 1 and isinstance(kept.get_layer("inner").get_layer("bn"), L.BatchNormalization)
    _assert_same(model(x, training=False), kept(x, training=False))


def test_nothing_to_fold_comes_back_as_is(tiny_model):
    assert fold_batchnorm(tiny_model) == (tiny_model, 0)


def test_bn_output_is_found_by_name():
    model = _conv_bn(L.Conv2D(6, 3, name="conv"), before=L.Conv2D(4, 1, name="stem"))
    x = _images()
    want = keras.Model(model.inputs, layer_outputs(model, ["bn"]))(x)
    folded, _ = fold_batchnorm(model)
    assert "bn" in [i.name for i in featlib.list_layers(folded)]
    _assert_same(want, keras.Model(folded.inputs, layer_outputs(folded, ["bn"]))(x))


def test_folded_model_saves_and_changes_dtype_policy(tmp_path):
    folded, _ = fold_batchnorm(FOLDABLE["depthwise_x2"]())
    x = _images()
    path = tmp_path / "folded.keras"
    folded.save(path)
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    assert isinstance(loaded.get_layer("bn"), FoldedBatchNorm)
    _assert_same(folded(x), loaded(x))

    # featlib changes a model's precision by cloning each layer from its config.
    def bf16(layer):
        config = layer.get_config()
        config["dtype"] = keras.DTypePolicy("mixed_bfloat16")
        return layer.__class__.from_config(config)

    low = keras.models.clone_model(folded, clone_function=bf16, recursive=True)
    low.set_weights(folded.get_weights())
    assert low.get_layer("bn").dtype_policy.name == "mixed_bfloat16"
    _assert_same(folded(x), np.asarray(low(x), np.float32), rtol=5e-2)


def test_subclassed_and_non_models():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = L.Conv2D(4, 3, name="conv")
            self.bn = L.BatchNormalization(name="bn")

        def call(self, x, training=None):
            return self.bn(self.conv(x), training=training)

    net = Net()
    net(_images())
    assert fold_batchnorm(net) == (net, 0) and list_foldable(net) == []
    with pytest.raises(TypeError, match="Received: model="):
        fold_batchnorm(L.Conv2D(4, 3))


BACKBONES = ["mobilenetv2", "efficientnetb0", "resnet50"]


@pytest.mark.parametrize("name", BACKBONES)
def test_backbones_fold_every_batchnorm_and_compute_the_same(name):
    bb = featlib.load_backbone(name, weights="random", seed=0, input_size=(64, 64))
    _randomize_bns(bb.model)
    x = bb.preprocess(np.random.RandomState(0).uniform(0, 255, (2, 64, 64, 3)))
    folded, n = fold_batchnorm(bb.model)
    assert n == len(_bns(bb.model)) > 40 and not _bns(folded)
    _assert_same(bb.model(x, training=False), folded(x, training=False), rtol=1e-4)
