"""A set's pooled features: the result type, the options that shape them, what the store holds.

Nothing here imports TensorFlow, so a run whose every vector is already in the feature store is
answered without building a model (``stored_features``); ``featlib.extract_set`` computes the
rest and shares these pieces.

Example::

    >>> store = featlib.FeatureStore()
    >>> stored_features(images, "mobilenetv2|random:0|top=0", ["out_relu"], (224, 224),
    ...                 precision="float32", store=store) is None  # nothing stored yet
    True
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from featlib.errors import OptionError
from featlib.extraction.store import FeatureStore

__all__ = [
    "CHANNEL_POOLINGS",
    "POOLINGS",
    "PRECISIONS",
    "Features",
    "check_batch_size",
    "check_choice",
    "collect",
    "layer_names",
    "set_keys",
    "stored_features",
    "unique_records",
]

CHANNEL_POOLINGS = ("avg", "max")  # one value per channel: vectors as long as the channels
POOLINGS = (None, *CHANNEL_POOLINGS, "flatten")
PRECISIONS = ("float32", "bfloat16", "mixed_float16", "auto")


def check_choice(name: str, value, choices: tuple) -> None:
    """Raise ``OptionError`` unless ``value`` is one of ``choices``."""
    if not any(value is c or (isinstance(value, str) and value == c) for c in choices):
        raise OptionError(f"{name} must be one of {choices}. Received: {name}={value!r}")


def check_batch_size(batch_size) -> None:
    """Raise ``OptionError`` unless ``batch_size`` is None or a positive integer."""
    integral = isinstance(batch_size, numbers.Integral) and not isinstance(batch_size, bool)
    if batch_size is not None and not (integral and batch_size >= 1):
        raise OptionError(
            f"batch_size must be a positive integer or None. Received: batch_size={batch_size!r}"
        )


def layer_names(layers) -> list[str]:
    """One layer name or several, as a non-empty list."""
    names = [layers] if isinstance(layers, str) else list(layers)
    if not names:
        raise OptionError("layers must name at least one layer. Received: layers=[]")
    return names


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

    @property
    def widths(self) -> dict[str, int]:
        """Layer -> vector length, without waiting for vectors still being read
        (``featlib.engine.shards.open_features``)."""
        known = getattr(self.features, "widths", None)
        return (
            dict(known) if known is not None else {k: v.shape[1] for k, v in self.features.items()}
        )


def unique_records(image_set) -> dict:
    """The first usable record of each distinct image (by SHA-256), in the set's order."""
    unique: dict = {}
    for rec in image_set.ok:
        unique.setdefault(rec.sha256, rec)
    return unique


def set_keys(
    shas, backbone_key: str, layers: list[str], input_size, resize_mode: str, pooling, precision
) -> dict[str, dict[str, str]]:
    """``{sha256: {layer: store key}}`` for the given images (see ``FeatureStore.key``)."""
    return {
        sha: {
            n: FeatureStore.key(sha, backbone_key, n, input_size, resize_mode, pooling, precision)
            for n in layers
        }
        for sha in shas
    }


def collect(
    records: list, vectors: dict, layers: list[str], errors: list, computed: int, empty=None
) -> Features:
    """``Features`` of the ``records`` whose vectors (``{sha256: {layer: vector}}``) are known.

    ``empty`` gives each layer's vector shape for when no record has vectors.
    """
    rows = [r for r in records if r.sha256 in vectors]
    feats = {
        n: np.stack([vectors[r.sha256][n] for r in rows]).astype(np.float32, copy=False)
        if rows
        else np.empty((0, *empty[n]), np.float32)
        for n in layers
    }
    return Features(records=rows, features=feats, errors=errors, computed=computed)


def stored_features(
    image_set,
    backbone_key: str,
    layers,
    input_size: tuple[int, int],
    *,
    pooling: str = "avg",
    resize_mode: str = "stretch",
    precision: str,
    store: FeatureStore,
) -> Features | None:
    """The features of a set when the store holds every vector, else ``None``.

    Args:
        image_set: a ``featlib.ImageSet``.
        backbone_key: ``Backbone.key`` (``featlib.weights_key`` tells it without a model).
        layers: one layer name or a list.
        input_size: the backbone's ``(height, width)``.
        pooling: ``"avg"``, ``"max"`` or ``"flatten"``.
        resize_mode: ``"stretch"``, ``"center-crop"`` or ``"pad"``.
        precision: the resolved precision (not ``"auto"``).
        store: a ``featlib.FeatureStore``.

    Returns:
        ``Features`` exactly as ``extract_set`` returns them (with ``computed=0``), or ``None``
        when any usable image lacks a vector or no image is usable.
    """
    names = layer_names(layers)
    unique = unique_records(image_set)
    keys = set_keys(unique, backbone_key, names, input_size, resize_mode, pooling, precision)
    vectors = store.get_set(keys)
    if not unique or len(vectors) < len(unique):
        return None
    return collect(list(image_set.ok), vectors, names, list(image_set.errors), 0)
