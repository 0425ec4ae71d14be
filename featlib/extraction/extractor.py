"""Batched multi-layer feature extraction: one forward pass, pooling inside the graph.

``Extractor`` compiles a ``tf.function`` that takes uint8 RGB images, preprocesses them the way
the backbone expects, runs the model once for every requested layer and pools each output.

Example::

    >>> bb = featlib.load_backbone("vgg16", weights="random", input_size=(64, 64))
    >>> ex = featlib.Extractor(bb, ["block3_conv3", "block5_pool"], pooling="avg")
    >>> out = ex(np.zeros((4, 64, 64, 3), np.uint8))
    >>> out["block3_conv3"].shape, out["block5_pool"].shape
    ((4, 256), (4, 512))
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

import numpy as np

from featlib._tf import keras, tf
from featlib.errors import OptionError
from featlib.extraction._device import default_batch_size
from featlib.extraction.features import (
    POOLINGS,
    PRECISIONS,
    check_batch_size,
    check_choice,
    layer_names,
)
from featlib.extraction.settings import auto_settings
from featlib.models.backbones import Backbone, preprocess
from featlib.models.fold import fold_batchnorm, list_foldable
from featlib.models.layers import find_layer, layer_outputs, list_layers

__all__ = [
    "Extractor",
    "extract",
]


Progress = Callable[[int, int], None]


_FOLDED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_FOLD_LOCK = threading.Lock()


def _prepared(model: keras.Model, names: list[str], precision: str) -> keras.Model:
    """``model`` with its BatchNormalization folded into the convs (``featlib.models.fold``: exact
    in inference mode, faster on MobileNet / EfficientNet), except into the convs among
    ``names``, whose own outputs are asked for, computing in ``precision``. One copy per model,
    kept set and precision is shared by every ``Extractor``, so that extractors do not each hold
    a copy of the weights."""
    keep = frozenset({conv for conv, _ in list_foldable(model)}.intersection(names))
    with _FOLD_LOCK:
        copies = _FOLDED.setdefault(model, {})
        if (keep, precision) not in copies:
            folded, count = fold_batchnorm(model, keep)
            if precision != "float32":
                policy = f"mixed_{precision.removeprefix('mixed_')}"
                # the folded model is a fresh copy: its policy is set in place (a second clone
                # cost 1.3 s for MobileNetV2); the user's own model is never changed
                folded = _set_policy(folded, policy) if count else _with_policy(model, policy)
            # never the key itself: it would stay alive
            copies[(keep, precision)] = None if folded is model else folded
        return copies[(keep, precision)] or model


def _layers_within(model: keras.Model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _layers_within(layer)


def _set_policy(model: keras.Model, policy: str) -> keras.Model:
    """``model`` itself, its layers (nested ones too) now computing in ``policy``."""
    for layer in [model, *_layers_within(model)]:
        layer.dtype_policy = keras.DTypePolicy(policy)
    return model


def _with_policy(model: keras.Model, policy: str) -> keras.Model:
    """A copy of ``model`` whose layers compute in ``policy`` ("mixed_bfloat16"...)."""

    def clone(layer):
        config = layer.get_config()
        config["dtype"] = keras.DTypePolicy(policy)
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone, recursive=True)
    copy.set_weights(model.get_weights())
    return copy


def _pool(x, pooling):
    x = tf.cast(x, tf.float32)
    if pooling is None or x.shape.rank == 2:
        return x
    if pooling == "flatten":
        return tf.reshape(x, (tf.shape(x)[0], -1))
    axes = list(range(1, x.shape.rank - 1))
    return tf.reduce_mean(x, axis=axes) if pooling == "avg" else tf.reduce_max(x, axis=axes)


class Extractor:
    """Extract several layers in one forward pass, in batches.

    Args:
        backbone: a ``featlib.Backbone``.
        layers: layer names (see ``featlib.list_layers``); one name or a list.
        pooling: ``"avg"`` or ``"max"`` over the spatial axes, ``"flatten"``, or ``None`` for
            full maps (keep those to the few images being looked at).
        precision: ``"float32"`` (default), ``"bfloat16"``, ``"mixed_float16"`` (GPU) or
            ``"auto"``: the settings measured fastest for this backbone on this machine where
            they have been measured, else the hardware defaults
            (``featlib.extraction.settings.auto_settings``: precision, batch size unless given,
            XLA). An extractor never times anything itself;
            ``extract_set`` does when a job is large enough to repay it.
        batch_size: images per forward pass; default from ``default_batch_size``.
        jit_compile: compile the forward pass with XLA (pays on some GPUs, not on CPUs:
        ``benchmarks/RESULTS.md``). With ``"auto"``, the measured choice.

    Attributes:
        layers: the layer names, in the order given.
        precision: the resolved precision.
        asked_precision: the precision as asked (``"auto"`` or the same as ``precision``).
        batch_size: images per forward pass.
        jit_compile: whether XLA compiles the forward pass.
        output_shapes: per layer, the shape of one image's output after pooling.

    Example::

        >>> ex = Extractor(bb, "block5_pool", pooling="max")
        >>> ex(images.load_batch(images.ok, (64, 64)))["block5_pool"].shape
        (12, 512)
    """

    def __init__(
        self,
        backbone: Backbone,
        layers,
        pooling="avg",
        precision="float32",
        batch_size=None,
        jit_compile=False,
    ):
        check_choice("pooling", pooling, POOLINGS)
        check_choice("precision", precision, PRECISIONS)
        check_batch_size(batch_size)
        names = layer_names(layers)
        infos = list_layers(backbone)
        for name in names:
            find_layer(backbone, name, infos)
        self.backbone = backbone
        self.layers = names
        self.pooling = pooling
        self.asked_precision = precision
        self.precision = precision
        self.batch_size = int(batch_size or default_batch_size(backbone.input_size))
        self.jit_compile = bool(jit_compile)
        if precision == "auto":
            auto = auto_settings(backbone)
            self.precision, self.jit_compile = auto.precision, auto.jit_compile
            self.batch_size = int(batch_size or auto.batch_size)
        model = _prepared(backbone.model, names, self.precision)
        inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
        self._model = keras.Model(inputs, layer_outputs(model, names))
        h, w = backbone.input_size
        mode, module = backbone.preprocessing, backbone.module

        @tf.function(
            input_signature=[tf.TensorSpec([None, h, w, 3], tf.uint8)],
            jit_compile=self.jit_compile,
        )
        def run(images):
            outputs = self._model(preprocess(images, mode, module), training=False)
            outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
            return [_pool(o, pooling) for o in outputs]

        self._run = run
        shapes = [tuple(o.shape[1:]) for o in self._model.outputs]
        self.output_shapes = {n: self._pooled_shape(s) for n, s in zip(names, shapes, strict=True)}

    def _pooled_shape(self, shape: tuple) -> tuple:
        if self.pooling is None or len(shape) == 1:
            return shape
        if self.pooling == "flatten":
            return (int(np.prod(shape)),)
        return (shape[-1],)

    def run_batch(self, images: np.ndarray) -> list[np.ndarray]:
        """One forward pass on at most ``batch_size`` images; arrays in ``self.layers`` order."""
        return [o.numpy() for o in self._run(tf.convert_to_tensor(images, tf.uint8))]

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Extract every layer for a stack of images.

        Args:
            images: uint8 ndarray of shape (n, height, width, 3), RGB, at ``input_size``.

        Returns:
            dict layer name -> float32 ndarray of shape (n, *output_shapes[layer]).
        """
        images = np.asarray(images)
        expected = (*self.backbone.input_size, 3)
        if images.ndim != 4 or images.shape[1:] != expected or images.dtype != np.uint8:
            raise OptionError(
                f"images must be uint8 of shape (n, {expected[0]}, {expected[1]}, 3). "
                f"Received: dtype={images.dtype}, shape={images.shape}"
            )
        n = len(images)
        out = {name: np.empty((n, *self.output_shapes[name]), np.float32) for name in self.layers}
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            for name, arr in zip(self.layers, self.run_batch(images[start:stop]), strict=True):
                out[name][start:stop] = arr
        return out


def extract(backbone: Backbone, images: np.ndarray, layers, pooling="avg", **kwargs):
    """One-call extraction: ``Extractor(backbone, layers, pooling, **kwargs)(images)``."""
    return Extractor(backbone, layers, pooling=pooling, **kwargs)(images)
