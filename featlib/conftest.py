"""The names the docstring examples use (run by ``pytest --doctest-modules``, see ``make test``).

Each example sees its module's own names plus ``featlib``, ``np``, ``io``, ``Path``, ``Image``,
every public ``featlib`` name, and, when it mentions them: ``images`` (12 bundled digits),
``png_bytes`` (a small PNG), ``bb`` (VGG16 with random weights at 64x64), ``feats`` (its
pooled ``block4_pool`` features of ``images``) and ``sweep`` (its layer sweep of 20 bundled
faces). Each runs offline in a fresh temporary folder, with a private feature store and Keras
cache.
"""

from __future__ import annotations

import functools
import io
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ["FEATLIB_OFFLINE"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@functools.cache
def _images():
    import featlib

    return featlib.load_samples("digits", max_images=12)


@functools.cache
def _backbone():
    import featlib

    return featlib.load_backbone("vgg16", weights="random", input_size=(64, 64))


@functools.cache
def _sweep():
    import featlib

    return featlib.layer_sweep(_backbone(), featlib.load_samples("faces", max_images=20))


@functools.cache
def _features():
    import featlib

    return featlib.extract_set(_backbone(), _images(), "block4_pool", precision="float32")


def _png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), "red").save(buf, "PNG")
    return buf.getvalue()


_LAZY = {
    "images": _images,
    "bb": _backbone,
    "feats": _features,
    "sweep": _sweep,
    "png_bytes": _png_bytes,
}


@pytest.fixture(autouse=True)
def _doctest_names(request, doctest_namespace, tmp_path, monkeypatch):
    import featlib

    monkeypatch.setenv("FEATLIB_CACHE_DIR", str(tmp_path / "featlib-cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.chdir(tmp_path)
    doctest_namespace.update(featlib=featlib, np=np, io=io, Path=Path, Image=Image)
    doctest_namespace.update({name: getattr(featlib, name) for name in featlib.__all__})
    test = getattr(request.node, "dtest", None)
    source = "" if test is None else "".join(example.source for example in test.examples)
    for name, make in _LAZY.items():
        # made only for an example that uses the name without defining it
        if re.search(rf"\b{name}\b", source) and not re.search(rf"^{name} =", source, re.M):
            doctest_namespace[name] = make()
