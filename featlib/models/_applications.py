"""Build ``keras.applications`` models without touching process-wide state.

Keras draws every initializer's seed from Python's global ``random`` (through
``make_default_seed``) and fetches weights through ``file_utils.get_file``. A build here swaps
both, under one lock, for private stand-ins: a generator seeded by the caller, so a seed gives the
same weights even while other threads build, and the caller's file fetch. Python's, NumPy's and
TensorFlow's global generators are never touched.
"""

from __future__ import annotations

import contextlib
import functools
import random
import threading

from featlib._tf import keras
from featlib.models.registry import BackboneSpec

__all__ = ["build_application", "requested_file"]

# Held for the whole build: the swapped functions are module attributes shared by every thread.
_LOCK = threading.RLock()


@contextlib.contextmanager
def _swapped(swaps):
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in swaps]
    for owner, name, value in swaps:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for owner, name, value in originals:
            setattr(owner, name, value)


def build_application(
    spec: BackboneSpec,
    weights: str | None = None,
    *,
    include_top: bool = False,
    input_size: tuple[int, int] | None = None,
    seed: int = 0,
    get_file=None,
) -> keras.Model:
    """Call the Keras constructor of ``spec`` with its initializers seeded by ``seed``.

    Args:
        spec: the registry entry.
        weights: ``None`` (initialised), ``"imagenet"`` or a weights file, as Keras takes it.
        include_top: keep the classification head (then the input is the native size).
        input_size: ``(height, width)`` without the top; defaults to the native size.
        seed: seed of the initializers; the same seed gives the same weights.
        get_file: stands in for ``keras.utils.get_file`` during the build (ImageNet weights).
    """
    # Imported here, after featlib._tf has quieted TensorFlow's start-up logs.
    from keras.src import backend
    from keras.src.random import seed_generator
    from keras.src.utils import file_utils

    kwargs = {"weights": weights, "include_top": include_top}
    if not include_top:
        kwargs["input_shape"] = (*(input_size or spec.input_size), 3)
    rng = random.Random(seed)

    def draw_seed() -> int:
        return rng.randint(1, int(1e9))

    swaps = [
        (seed_generator, "make_default_seed", draw_seed),
        (backend.random, "make_default_seed", draw_seed),
    ]
    if get_file is not None:
        swaps.append((file_utils, "get_file", get_file))
    with _LOCK, _swapped(swaps):
        return getattr(keras.applications, spec.constructor)(**kwargs)


@functools.cache
def requested_file(spec: BackboneSpec, include_top: bool) -> tuple[str, str, str | None]:
    """What Keras fetches for ``spec``'s ImageNet weights: ``(file name, origin URL, hash)``.

    Learned by building the architecture with a fetch that records its arguments and stops the
    build, so the URLs and checksums stay those of the installed Keras.
    """
    asked = {}

    def record(fname=None, origin=None, file_hash=None, **kwargs):
        asked.update(fname=fname, origin=origin, file_hash=file_hash)
        raise _Asked

    with contextlib.suppress(_Asked):
        build_application(spec, "imagenet", include_top=include_top, get_file=record)
    return asked["fname"], asked["origin"], asked["file_hash"]


class _Asked(Exception):
    """Stops a build once Keras has said which file it wants."""
