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
import functools
import os
import sys
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from featlib._tf import keras, tf
from featlib.backbones import Backbone, preprocess
from featlib.errors import FeatlibError, ImageError
from featlib.fold import fold_batchnorm, list_foldable
from featlib.layers import find_layer, layer_outputs, list_layers

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

POOLINGS = (None, "avg", "max", "flatten")
PRECISIONS = ("float32", "bfloat16", "mixed_float16", "auto")

Progress = Callable[[int, int], None]


def device_name() -> str:
    """The device TensorFlow runs on: ``"GPU:0"`` when it sees a GPU, else ``"CPU"``."""
    return "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU"


@functools.cache
def _cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AMX or AVX512-BF16), per /proc/cpuinfo."""
    flags = _cpuinfo()
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_precision(precision: str) -> str:
    """Turn ``"auto"`` into the fastest precision this machine runs accurately.

    bfloat16 on CPUs with AMX / AVX512-BF16, mixed float16 on GPUs with tensor cores
    (compute capability 7.0 or newer), float32 elsewhere.
    """
    if precision not in PRECISIONS:
        raise ValueError(
            f"precision must be one of {PRECISIONS}. Received: precision={precision!r}"
        )
    if precision != "auto":
        return precision
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return "mixed_float16" if details.get("compute_capability", (0, 0)) >= (7, 0) else "float32"
    return "bfloat16" if cpu_has_bf16() else "float32"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or ``"cpu"`` where it does not say."""
    models = [
        ln.split(":", 1)[1].strip() for ln in _cpuinfo().splitlines() if ln.startswith("model name")
    ]
    return models[0] if models else "cpu"


def default_batch_size(input_size: tuple[int, int]) -> int:
    """32 at 224x224, fewer for larger inputs so a batch stays about the same size in memory."""
    return int(np.clip(32 * (224 * 224) // (input_size[0] * input_size[1]), 1, 32))


_FOLDED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_FOLD_LOCK = threading.Lock()


def _folded(model: keras.Model, names: list[str]) -> keras.Model:
    """``model`` with its BatchNormalization folded into the convs (``featlib.fold``: exact in
    inference mode, a third faster on MobileNet / EfficientNet), except into the convs among
    ``names``, whose own outputs are asked for. One folded copy per model and kept set is
    shared by every ``Extractor``, so that extractors do not each hold a copy of the weights."""
    keep = frozenset({conv for conv, _ in list_foldable(model)}.intersection(names))
    with _FOLD_LOCK:
        copies = _FOLDED.setdefault(model, {})
        if keep not in copies:
            folded, count = fold_batchnorm(model, keep)
            copies[keep] = folded if count else None  # never the key itself: it would stay alive
        return model if copies[keep] is None else copies[keep]


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
            ``"auto"``: the settings measured fastest for this backbone on this machine
            (``featlib.tuning.tuned_settings``: precision, batch size unless given, XLA).
        batch_size: images per forward pass; default from ``default_batch_size``.
        jit_compile: compile the forward pass with XLA (pays on some GPUs; on CPUs it made
            depthwise models 20x slower). With ``"auto"``, the measured choice.

    Attributes:
        layers: the layer names, in the order given.
        precision: the resolved precision.
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
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}. Received: pooling={pooling!r}")
        names = [layers] if isinstance(layers, str) else list(layers)
        if not names:
            raise ValueError("layers must name at least one layer. Received: layers=[]")
        if batch_size is not None and int(batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1. Received: batch_size={batch_size!r}")
        infos = list_layers(backbone)
        for name in names:
            find_layer(backbone, name, infos)
        self.backbone = backbone
        self.layers = names
        self.pooling = pooling
        self.precision = resolve_precision(precision)
        self.batch_size = int(batch_size or default_batch_size(backbone.input_size))
        self.jit_compile = bool(jit_compile)
        if precision == "auto":
            from featlib.tuning import tuned_settings

            tuned = tuned_settings(backbone)
            self.precision, self.jit_compile = tuned.precision, tuned.jit_compile
            self.batch_size = int(batch_size or tuned.batch_size)
        model = _folded(backbone.model, names)
        if self.precision != "float32":
            model = _with_policy(model, f"mixed_{self.precision.removeprefix('mixed_')}")
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
            raise ValueError(
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


@dataclass
class Features:
    """Pooled features of the usable images of a set.

    Attributes:
        records: the image records the rows belong to, in the set's order.
        features: layer name -> float32 ndarray of shape (n_images, n_features).
        errors: records of images that could not be used, each with its ``error``.
        computed: how many distinct images were run through the network (the rest came from
            the store or were duplicates).
    """

    records: list
    features: dict[str, np.ndarray]
    errors: list
    computed: int = 0

    @property
    def labels(self) -> list:
        return [r.label for r in self.records]

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.records]

    @property
    def sha256(self) -> list[str]:
        return [r.sha256 for r in self.records]


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


def extract_set(
    backbone: Backbone,
    image_set,
    layers,
    *,
    pooling: str = "avg",
    resize_mode: str = "stretch",
    precision: str = "float32",
    batch_size: int | None = None,
    store=None,
    progress: Progress | None = None,
    extractor: Extractor | None = None,
) -> Features:
    """Pooled features of every usable image of a set, through the feature store.

    Images are decoded on low-priority threads (``decode_threads``) while the network runs on
    the previous batch.
    Each distinct image (by SHA-256) is computed once; what the store has is not computed.

    Args:
        backbone: a ``featlib.Backbone``.
        image_set: a ``featlib.ImageSet``.
        layers: one layer name or a list.
        pooling: ``"avg"``, ``"max"`` or ``"flatten"`` (full maps are not kept for sets).
        resize_mode: ``"stretch"``, ``"center-crop"`` or ``"pad"``.
        precision: see ``Extractor``.
        batch_size: see ``Extractor``.
        store: a ``featlib.FeatureStore``, or ``None`` to keep nothing on disk.
        progress: called as ``progress(done, total)`` with counts of distinct images.
        extractor: an ``Extractor`` to reuse (its layers, pooling and precision win).

    Returns:
        ``Features`` with one row per usable record.

    Example::

        >>> feats = extract_set(bb, featlib.load_samples("photos"), "block5_pool")
        >>> feats.features["block5_pool"].shape
        (10, 512)
    """
    if pooling is None:
        raise ValueError("extract_set keeps pooled vectors only: pooling must not be None.")
    if not len(image_set):
        raise FeatlibError("The image set is empty: there is nothing to extract.")
    ex = extractor or Extractor(backbone, layers, pooling, precision, batch_size)
    names = ex.layers
    size = backbone.input_size
    ok = list(image_set.ok)
    unique: dict[str, object] = {}
    for rec in ok:
        unique.setdefault(rec.sha256, rec)

    def keys_for(sha):
        return {
            n: store.key(sha, backbone.key, n, size, resize_mode, ex.pooling, ex.precision)
            for n in names
        }

    vectors: dict[str, dict[str, np.ndarray]] = {}
    todo = []
    with store.batch() if store is not None else contextlib.nullcontext():
        for sha, rec in unique.items():
            found = store.get_many(keys_for(sha)) if store is not None else None
            if found is not None:
                vectors[sha] = found
            else:
                todo.append(rec)
    total, done = len(unique), len(unique) - len(todo)
    if progress:
        progress(done, total)
    failed: dict[str, object] = {}
    chunks = [todo[i : i + ex.batch_size] for i in range(0, len(todo), ex.batch_size)]
    with ThreadPoolExecutor(decode_threads(), initializer=_lowest_priority) as pool:

        def submit(chunk):
            return [pool.submit(_load, image_set, rec, size, resize_mode) for rec in chunk]

        pending = submit(chunks[0]) if chunks else []
        for i, chunk in enumerate(chunks):
            loaded = [f.result() for f in pending]
            pending = submit(chunks[i + 1]) if i + 1 < len(chunks) else []
            pairs = zip(chunk, loaded, strict=True)
            decoded = [(r, x) for r, x in pairs if isinstance(x, np.ndarray)]
            failed.update({x.sha256: x for x in loaded if not isinstance(x, np.ndarray)})
            if decoded:
                arrays = ex.run_batch(np.stack([x for _, x in decoded]))
                for j, (rec, _) in enumerate(decoded):
                    vectors[rec.sha256] = {n: a[j] for n, a in zip(names, arrays, strict=True)}
                if store is not None:
                    with store.batch():  # this batch is stored before progress is said
                        for rec, _ in decoded:
                            store.put_many(keys_for(rec.sha256), vectors[rec.sha256])
            done += len(chunk)
            if progress:
                progress(done, total)
    rows = [r for r in ok if r.sha256 in vectors]
    errors = list(image_set.errors) + [
        dataclasses.replace(r, error=failed[r.sha256].error) for r in ok if r.sha256 in failed
    ]
    feats = {
        n: np.stack([vectors[r.sha256][n] for r in rows]).astype(np.float32, copy=False)
        if rows
        else np.empty((0, *ex.output_shapes[n]), np.float32)
        for n in names
    }
    return Features(records=rows, features=feats, errors=errors, computed=len(todo) - len(failed))
