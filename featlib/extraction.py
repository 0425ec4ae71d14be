"""Batched multi-layer feature extraction: one forward pass, pooling inside the graph.

``Extractor`` compiles a ``tf.function`` that takes uint8 RGB images, preprocesses them the way
the backbone expects, runs the model once for every requested layer and pools each output.
``extract_set`` runs it over an ``ImageSet`` in batches, reading and writing the feature store,
so memory is bounded by the batch and nothing the store holds is computed again.

Example::

    >>> bb = featlib.load_backbone("vgg16", weights="random", input_size=(64, 64))
    >>> ex = featlib.Extractor(bb, ["block3_conv3", "block5_pool"], pooling="avg")
    >>> out = ex(np.zeros((4, 64, 64, 3), np.uint8))
    >>> out["block3_conv3"].shape, out["block5_pool"].shape
    ((4, 256), (4, 512))
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from featlib._tf import keras, tf
from featlib.backbones import Backbone, preprocess
from featlib.errors import FeatlibError, ImageError, OptionError
from featlib.features import (
    POOLINGS,
    PRECISIONS,
    Features,
    check_batch_size,
    check_choice,
    collect,
    layer_names,
    set_keys,
    unique_records,
)
from featlib.fold import fold_batchnorm, list_foldable
from featlib.images import RESIZE_MODES
from featlib.layers import find_layer, layer_outputs, list_layers
from featlib.tuning import (
    Settings,
    auto_settings,
    cpu_has_bf16,
    cpu_model,
    default_batch_size,
    tuned_settings,
    worth_tuning,
)

__all__ = [
    "POOLINGS",
    "PRECISIONS",
    "Extractor",
    "Features",
    "cpu_has_bf16",
    "cpu_model",
    "decode_threads",
    "default_batch_size",
    "device_name",
    "extract",
    "extract_set",
    "resolve_precision",
]

Progress = Callable[[int, int], None]


def device_name() -> str:
    """The device TensorFlow runs on: ``"GPU:0"`` when it sees a GPU, else ``"CPU"``."""
    return "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU"


def resolve_precision(precision: str) -> str:
    """Turn ``"auto"`` into the fastest precision this machine runs accurately.

    bfloat16 on CPUs with AMX / AVX512-BF16, mixed float16 on GPUs with tensor cores
    (compute capability 7.0 or newer), float32 elsewhere.
    """
    check_choice("precision", precision, PRECISIONS)
    if precision != "auto":
        return precision
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return "mixed_float16" if details.get("compute_capability", (0, 0)) >= (7, 0) else "float32"
    return "bfloat16" if cpu_has_bf16() else "float32"


_FOLDED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_FOLD_LOCK = threading.Lock()


def _prepared(model: keras.Model, names: list[str], precision: str) -> keras.Model:
    """``model`` with its BatchNormalization folded into the convs (``featlib.fold``: exact in
    inference mode, a third faster on MobileNet / EfficientNet), except into the convs among
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
            they have been measured, else the hardware defaults (``featlib.tuning.auto_settings``:
            precision, batch size unless given, XLA). An extractor never times anything itself;
            ``extract_set`` does when a job is large enough to repay it.
        batch_size: images per forward pass; default from ``default_batch_size``.
        jit_compile: compile the forward pass with XLA (pays on some GPUs; on CPUs it made
            depthwise models 20x slower). With ``"auto"``, the measured choice.

    Attributes:
        layers: the layer names, in the order given.
        precision: the resolved precision.
        asked_precision: the precision as asked (``"auto"`` or the same as ``precision``).
        batch_size: images per forward pass.
        jit_compile: whether XLA compiles the forward pass.
        output_shapes: per layer, the shape of one image's output after pooling.

    Example::

        >>> ex = Extractor(bb, "block5_pool", pooling="max")
        >>> ex(images)["block5_pool"].shape
        (n, 512)
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


def _load(image_set, record, size, resize_mode):
    """Pixels of one image, or the record with its ``error`` when it cannot be decoded."""
    try:
        return image_set.load(record, size=size, resize_mode=resize_mode)
    except ImageError as exc:
        return dataclasses.replace(record, error=exc.reason)


def _lowest_priority() -> None:
    """Run the calling thread at the lowest CPU priority (nice 19).

    Decoding then takes the cycles the forward pass leaves (between its operations, while its
    threads wait for each other) instead of stalling it: on 2 cores, pipelined decoding at
    normal priority reached 0.82-0.87 of the bare forward pass of MobileNetV2, at nice 19
    0.89-0.94. Linux gives each thread its own nice value; elsewhere this does nothing.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def decode_threads() -> int:
    """How many threads ``extract_set`` decodes on: one per CPU, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


def _check_extractor(ex: Extractor, backbone: Backbone, names, pooling, precision) -> None:
    """Refuse an extractor made for other settings: its vectors would be stored under keys
    that say otherwise."""
    wrong = []
    if (ex.backbone.key, tuple(ex.backbone.input_size)) != (backbone.key, backbone.input_size):
        wrong.append(f"backbone {backbone.key} at {backbone.input_size}")
    if set(ex.layers) != set(names):
        wrong.append(f"layers {names}")
    if ex.pooling != pooling:
        wrong.append(f"pooling={pooling!r}")
    if precision not in (None, ex.precision, ex.asked_precision):
        wrong.append(f"precision={precision!r}")
    if wrong:
        raise OptionError(
            f"extractor must be made for what extract_set is asked: {', '.join(wrong)}. "
            f"Received: an extractor for backbone {ex.backbone.key} at {ex.backbone.input_size}, "
            f"layers {ex.layers}, pooling={ex.pooling!r}, precision={ex.asked_precision!r}"
        )


def _run_settings(backbone: Backbone, extractor, precision: str, batch_size) -> Settings:
    """The settings a job starts from, before it knows whether timing would pay."""
    if extractor is not None:
        return Settings(extractor.precision, extractor.batch_size, extractor.jit_compile)
    if precision == "auto":
        auto = auto_settings(backbone)
        return dataclasses.replace(auto, batch_size=batch_size or auto.batch_size)
    return Settings(precision, batch_size or default_batch_size(backbone.input_size))


def extract_set(
    backbone: Backbone,
    image_set,
    layers,
    *,
    pooling: str = "avg",
    resize_mode: str = "stretch",
    precision: str | None = None,
    batch_size: int | None = None,
    store=None,
    progress: Progress | None = None,
    extractor: Extractor | None = None,
) -> Features:
    """Pooled features of every usable image of a set, through the feature store.

    Images are decoded on low-priority threads (``decode_threads``) while the network runs on
    the previous batch.
    Each distinct image (by SHA-256) is computed once; what the store has is not computed, and
    when it has everything no model is run at all.

    Args:
        backbone: a ``featlib.Backbone``.
        image_set: a ``featlib.ImageSet``.
        layers: one layer name or a list.
        pooling: ``"avg"``, ``"max"`` or ``"flatten"`` (full maps are not kept for sets).
        resize_mode: ``"stretch"``, ``"center-crop"`` or ``"pad"``.
        precision: see ``Extractor``; ``None``: the extractor's, else ``"float32"``. With
            ``"auto"``, the settings are timed first (``featlib.tuning.tuned_settings``) only
            when the images to compute are enough to repay it (``featlib.tuning.worth_tuning``).
        batch_size: see ``Extractor``.
        store: a ``featlib.FeatureStore``, or ``None`` to keep nothing on disk.
        progress: called as ``progress(done, total)`` with counts of distinct images.
        extractor: an ``Extractor`` to reuse (its batch size wins). It must have been made for
            this backbone, these layers, this pooling and this precision.

    Returns:
        ``Features`` with one row per usable record.

    Raises:
        OptionError: a bad option, or an extractor made for something else.

    Example::

        >>> feats = extract_set(bb, featlib.load_samples("photos"), "block5_pool")
        >>> feats.features["block5_pool"].shape
        (10, 512)
    """
    if pooling is None:
        raise OptionError(
            "extract_set keeps pooled vectors only: pooling must be 'avg', 'max' or 'flatten'. "
            "Received: pooling=None"
        )
    check_choice("pooling", pooling, POOLINGS)
    check_choice("resize_mode", resize_mode, RESIZE_MODES)
    if precision is not None:
        check_choice("precision", precision, PRECISIONS)
    check_batch_size(batch_size)
    names = layer_names(layers)
    if extractor is not None:
        _check_extractor(extractor, backbone, names, pooling, precision)
    if not len(image_set):
        raise FeatlibError(
            "The image set is empty: there is nothing to extract. Received: an ImageSet of 0 files"
        )
    size = backbone.input_size
    ok = list(image_set.ok)
    unique = unique_records(image_set)
    settings = _run_settings(backbone, extractor, precision or "float32", batch_size)

    def lookup(precision: str) -> tuple[dict, dict, list]:
        keys = set_keys(unique, backbone.key, names, size, resize_mode, pooling, precision)
        found = store.get_set(keys) if store is not None else {}
        return keys, found, [rec for sha, rec in unique.items() if sha not in found]

    keys, vectors, todo = lookup(settings.precision)
    timing_pays = precision == "auto" and not settings.measured and worth_tuning(len(todo), size)
    if extractor is None and timing_pays:
        tuned = tuned_settings(backbone)
        if tuned.precision != settings.precision:
            keys, vectors, todo = lookup(tuned.precision)
        settings = dataclasses.replace(tuned, batch_size=batch_size or tuned.batch_size)
    failed: dict[str, object] = {}
    chunks = [todo[i : i + settings.batch_size] for i in range(0, len(todo), settings.batch_size)]
    with ThreadPoolExecutor(decode_threads(), initializer=_lowest_priority) as pool:

        def submit(chunk):
            return [pool.submit(_load, image_set, rec, size, resize_mode) for rec in chunk]

        pending = submit(chunks[0]) if chunks else []  # decoded while the model is prepared
        ex = extractor
        if ex is None and (todo or not unique):  # nothing to compute: no model is run or traced
            ex = Extractor(backbone, names, pooling, settings.precision, settings.batch_size,
                           settings.jit_compile)  # fmt: skip
        total, done = len(unique), len(unique) - len(todo)
        if progress:
            progress(done, total)
        for i, chunk in enumerate(chunks):
            loaded = [f.result() for f in pending]
            pending = submit(chunks[i + 1]) if i + 1 < len(chunks) else []
            pairs = zip(chunk, loaded, strict=True)
            decoded = [(r, x) for r, x in pairs if isinstance(x, np.ndarray)]
            failed.update({x.sha256: x for x in loaded if not isinstance(x, np.ndarray)})
            if decoded:
                arrays = ex.run_batch(np.stack([x for _, x in decoded]))
                for j, (rec, _) in enumerate(decoded):
                    vectors[rec.sha256] = {n: a[j] for n, a in zip(ex.layers, arrays, strict=True)}
                if store is not None:
                    with store.batch():  # this batch is stored before progress is said
                        for rec, _ in decoded:
                            store.put_many(keys[rec.sha256], vectors[rec.sha256])
            done += len(chunk)
            if progress:
                progress(done, total)
    errors = list(image_set.errors) + [
        dataclasses.replace(r, error=failed[r.sha256].error) for r in ok if r.sha256 in failed
    ]
    computed = len(todo) - len(failed)
    return collect(ok, vectors, names, errors, computed, ex.output_shapes if ex else None)
