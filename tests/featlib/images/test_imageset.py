"""featlib.images.imageset: the set's accessors, summary and batches."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from featlib import images as fi
from featlib.errors import FeatlibError, ImageError
from tests.featlib.images.builders import (
    encode,
    noise,
)

# --- the set -------------------------------------------------------------------------------------


def test_set_accessors_and_summary():
    files = [("a.png", noise(1)), ("b.png", b"junk"), ("a copy.png", noise(1))]
    image_set = fi.from_uploads(files)

    assert len(image_set) == 3 and repr(image_set) == "ImageSet(3 records: 2 ok, 1 errors)"
    assert image_set.labels == [None, None]
    assert image_set.summary() == {
        "count": 3,
        "ok": 2,
        "errors": 1,
        "labels": {},
        "unlabelled": 2,
        "splits": {},
    }
    first, copy = image_set.ok
    assert first.sha256 == copy.sha256  # duplicates stay as records
    assert image_set.read_bytes(first) == noise(1)
    assert (first.width, first.height, first.mode) == (8, 6, "RGB")
    assert image_set.load(first).shape == (6, 8, 3)
    np.testing.assert_array_equal(image_set.load(first), image_set.load(copy))

    thumb = image_set.thumbnail(first, max_side=4)
    assert thumb.mode == "RGB" and max(thumb.size) == 4

    with pytest.raises(ImageError, match=r"b\.png: not an image"):
        image_set.load(image_set.errors[0])
    stranger = fi.from_uploads([("other.png", noise(9))]).ok[0]
    with pytest.raises(FeatlibError, match="does not belong"):
        image_set.read_bytes(stranger)


def test_load_batch_fills_in_order():
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    image_set = fi.from_uploads(
        [(f"{i}.png", encode(Image.new("RGB", (5, 3), c))) for i, c in enumerate(colours)]
    )
    batch = image_set.load_batch(image_set.ok, (4, 4), "center-crop")
    assert batch.shape == (3, 4, 4, 3) and batch.dtype == np.uint8
    assert [tuple(b[0, 0]) for b in batch] == colours
    assert image_set.load_batch([], (4, 4)).shape == (0, 4, 4, 3)
