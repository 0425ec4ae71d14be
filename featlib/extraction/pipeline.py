"""The set pipeline: ``extract_set`` runs an ``Extractor`` over an ``ImageSet`` in batches,
decoding on low-priority threads and reading and writing the feature store, so memory is bounded
by the batch and nothing the store holds is computed again."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from featlib.errors import FeatlibError, ImageError, OptionError
from featlib.extraction._device import default_batch_size
from featlib.extraction.extractor import Extractor, Progress
from featlib.extraction.features import (
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
from featlib.extraction.settings import Settings, auto_settings, worth_tuning
from featlib.extraction.tuning import tuned_settings
from featlib.images.decode import RESIZE_MODES, ImageLimits, resolve_limits
from featlib.images.imageset import Builder
from featlib.models.backbones import Backbone

__all__ = [
    "decode_threads",
    "embed_image",
    "extract_set",
]


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


def _check_options(caller: str, pooling, resize_mode: str, precision: str | None) -> None:
    """Refuse what a job of pooled vectors cannot take; ``caller`` names the job."""
    if pooling is None:
        raise OptionError(
            f"{caller} gives pooled vectors only: pooling must be 'avg', 'max' or 'flatten'. "
            "Received: pooling=None"
        )
    check_choice("pooling", pooling, POOLINGS)
    check_choice("resize_mode", resize_mode, RESIZE_MODES)
    if precision is not None:
        check_choice("precision", precision, PRECISIONS)


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
            ``"auto"``, the settings are timed first (``featlib.extraction.tuning.tuned_settings``)
            only when the images to compute are enough to repay it
            (``featlib.extraction.settings.worth_tuning``).
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
    _check_options("extract_set", pooling, resize_mode, precision)
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


def embed_image(
    data: bytes,
    name: str,
    backbone: Backbone,
    layer: str,
    *,
    pooling: str = "avg",
    resize_mode: str = "stretch",
    precision: str | None = None,
    limits: ImageLimits | None = None,
    extractor: Extractor | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One new image's pooled vector, as ``extract_set`` computes it for an image of a set.

    The bytes are checked, decoded and resized exactly as a set's images are, so the vector can
    be compared with a set's features (a query for ``featlib.nearest``). Nothing is stored.

    Args:
        data: the file's bytes.
        name: the file's name, for error messages.
        backbone: a ``featlib.Backbone``.
        layer: a layer name (see ``featlib.list_layers``).
        pooling: ``"avg"``, ``"max"`` or ``"flatten"``.
        resize_mode: one of ``RESIZE_MODES``.
        precision: see ``extract_set``.
        limits: size limits; ``ImageLimits.from_env()`` when None.
        extractor: an ``Extractor`` to reuse, made for this backbone, layer, pooling and
            precision (as for ``extract_set``).

    Returns:
        ``(image, vector)``: the uint8 array of shape (height, width, 3) the network received,
        and the float32 vector of shape (n_features,).

    Raises:
        ImageError: the bytes are not a usable image; the message names the file.
        OptionError: a bad option, or an extractor made for something else.
    """
    _check_options("embed_image", pooling, resize_mode, precision)
    names = layer_names(layer)
    if extractor is None:
        extractor = Extractor(backbone, names, pooling, precision or "float32")
    else:
        _check_extractor(extractor, backbone, names, pooling, precision)
    builder = Builder(resolve_limits(limits), name)
    record = builder.add_bytes(name, data)
    if record.error is not None:
        raise ImageError(name, record.error)
    image = builder.build().load(record, size=backbone.input_size, resize_mode=resize_mode)
    vector = extractor.run_batch(image[None])[0][0]
    return image, vector
