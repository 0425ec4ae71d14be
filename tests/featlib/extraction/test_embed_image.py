"""``embed_image``: one new image's vector is the one ``extract_set`` gives the same file."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import featlib
from featlib.errors import ImageError, OptionError
from featlib.extraction.extractor import Extractor
from featlib.extraction.pipeline import embed_image
from featlib.images.decode import ImageLimits
from featlib.models.backbones import load_model_file


def _encoded(seed: int, fmt: str) -> bytes:
    pixels = np.random.RandomState(seed).randint(0, 256, (50, 70, 3)).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize(("fmt", "resize_mode"), [("PNG", "stretch"), ("JPEG", "pad")])
@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_the_vector_is_the_one_extract_set_gives(model_file, fmt, resize_mode, pooling):
    bb = load_model_file(model_file)
    files = [(f"{i}.{fmt.lower()}", _encoded(i, fmt)) for i in range(3)]
    feats = featlib.extract_set(
        bb, featlib.from_uploads(files), "conv1", pooling=pooling, resize_mode=resize_mode
    )
    name, data = files[1]
    image, vector = embed_image(data, name, bb, "conv1", pooling=pooling, resize_mode=resize_mode)
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    assert vector.shape == (8,) and vector.dtype == np.float32
    np.testing.assert_allclose(vector, feats.features["conv1"][1], rtol=1e-5, atol=1e-6)


def test_a_given_extractor_is_used_and_checked(model_file):
    bb = load_model_file(model_file)
    data = _encoded(0, "PNG")
    ex = Extractor(bb, "gap", pooling="max")
    image, vector = embed_image(data, "a.png", bb, "gap", pooling="max", extractor=ex)
    np.testing.assert_array_equal(vector, ex(image[None])["gap"][0])
    with pytest.raises(OptionError, match="pooling='avg'"):
        embed_image(data, "a.png", bb, "gap", extractor=ex)


@pytest.mark.parametrize(
    ("data", "limits", "reason"),
    [
        (b"not a picture", None, "not an image"),
        (b"", None, "empty"),
        (_encoded(0, "PNG"), ImageLimits(max_pixels=100), "too many pixels"),
        (_encoded(0, "PNG"), ImageLimits(max_file_bytes=100), "too large"),
    ],
)
def test_errors_name_the_file(model_file, data, limits, reason):
    bb = load_model_file(model_file)
    with pytest.raises(ImageError, match=rf"^query\.png: .*{reason}"):
        embed_image(data, "query.png", bb, "gap", limits=limits)


def test_limits_come_from_the_environment_when_not_given(model_file, monkeypatch):
    monkeypatch.setenv("FEATLIB_MAX_FILE_BYTES", "100")
    with pytest.raises(ImageError, match="FEATLIB_MAX_FILE_BYTES"):
        embed_image(_encoded(0, "PNG"), "q.png", load_model_file(model_file), "gap")


def test_pooling_is_required(model_file):
    with pytest.raises(OptionError, match="pooling=None"):
        embed_image(_encoded(0, "PNG"), "q.png", load_model_file(model_file), "gap", pooling=None)
