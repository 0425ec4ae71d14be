"""Property-based fuzzing of the decoding path (hypothesis).

Whatever bytes arrive, an upload yields either a usable record whose pixels load as an RGB
uint8 array of the requested size, or a per-file error (an error record, or an ``ImageError``
naming the file when it is loaded) — never another exception, never a hang (hypothesis'
per-example deadline), never memory beyond a stated bound.
"""

from __future__ import annotations

import io
import resource

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from featlib.errors import ImageError
from featlib.images.decode import RESIZE_MODES, ImageLimits
from featlib.images.sources import from_uploads
from tests.featlib.images.builders import png_header

SIZE = (32, 24)  # (height, width) asked of every usable image
DEADLINE_MS = 5_000  # per example: decoding one small file must never take longer
MEMORY_BOUND_MB = 400  # growth of peak resident memory over a whole fuzz run
LIMITS = ImageLimits(max_pixels=2_000_000, max_file_bytes=4 << 20)
FUZZ = settings(
    max_examples=500,
    deadline=DEADLINE_MS,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)

MODES = ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr", "I", "I;16", "F", "LAB", "HSV"]
FORMATS = ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def check_upload(name: str, data: bytes, resize_mode: str = "stretch") -> str:
    """Run one file through the upload path; return "ok" or "error", fail on anything else."""
    images = from_uploads([(name, data)], limits=LIMITS)
    (record,) = images.records
    if record.error is not None:
        assert record.name == name and record.error.strip()
        return "error"
    try:
        pixels = images.load(record, size=SIZE, resize_mode=resize_mode)
    except ImageError as exc:
        assert name in str(exc)
        return "error"
    assert pixels.shape == (*SIZE, 3) and pixels.dtype == np.uint8
    return "ok"


def encode(img: Image.Image, fmt: str, **params) -> bytes | None:
    """The image saved as ``fmt``, or None where Pillow cannot write that mode in that format."""
    buf = io.BytesIO()
    try:
        img.save(buf, fmt, **params)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return buf.getvalue()


@st.composite
def pictures(draw) -> tuple[str, bytes]:
    """A real image: any mode, format, size (from 1x1 up to 1x10000), frames and EXIF rotation."""
    mode = draw(st.sampled_from(MODES))
    fmt = draw(st.sampled_from(FORMATS))
    width, height = draw(
        st.one_of(
            st.tuples(st.integers(1, 64), st.integers(1, 64)),
            st.sampled_from([(1, 1), (1, 10_000), (10_000, 1), (3, 2_000)]),
        )
    )
    seed = draw(st.integers(0, 2**16))
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    try:
        img = Image.fromarray(rgb).convert(mode)
    except ValueError:
        img = Image.fromarray(rgb[..., 0]).convert(mode)
    params = {}
    if draw(st.booleans()):
        exif = Image.Exif()
        exif[0x0112] = draw(st.integers(1, 8))  # orientation
        params["exif"] = exif
    if fmt in {"GIF", "PNG", "WEBP", "TIFF"} and draw(st.booleans()):
        params["save_all"] = True
        params["append_images"] = [img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    data = encode(img, fmt, **params) or encode(img.convert("RGB"), fmt)
    return f"{mode.replace(';', '')}.{fmt.lower()}", data


@st.composite
def damaged(draw) -> tuple[str, bytes]:
    """A real image with bytes flipped, truncated, or both."""
    name, data = draw(pictures())
    buf = bytearray(data)
    for _ in range(draw(st.integers(0, 8))):
        i = draw(st.integers(0, len(buf) - 1))
        buf[i] ^= draw(st.integers(1, 255))
    if draw(st.booleans()):
        buf = buf[: draw(st.integers(0, len(buf)))]
    return name, bytes(buf)


@pytest.fixture(scope="module")
def memory_bound():
    """Fail the module if peak resident memory grew past the stated bound during fuzzing."""
    before = peak_rss_mb()
    yield
    grown = peak_rss_mb() - before
    assert grown < MEMORY_BOUND_MB, f"peak memory grew by {grown:.0f} MB"


@pytest.mark.slow
@FUZZ
@given(data=st.binary(max_size=4096), name=st.sampled_from(["x.png", "x.jpg", "x", "x.gif"]))
def test_random_bytes_are_an_error_or_an_image(memory_bound, data, name):
    check_upload(name, data)


@pytest.mark.slow
@FUZZ
@given(picture=pictures(), resize_mode=st.sampled_from(RESIZE_MODES))
def test_every_real_image_loads_as_rgb_of_the_requested_size(memory_bound, picture, resize_mode):
    name, data = picture
    assert check_upload(name, data, resize_mode) == "ok"


@pytest.mark.slow
@FUZZ
@given(picture=damaged())
def test_damaged_images_are_an_error_or_an_image(memory_bound, picture):
    check_upload(*picture)


@pytest.mark.parametrize("width, height", [(100_000, 100_000), (2**31 - 1, 2**31 - 1), (1, 10**9)])
def test_headers_claiming_enormous_sizes_are_refused_without_decoding(width, height):
    before = peak_rss_mb()
    images = from_uploads([("bomb.png", png_header(width, height))], limits=LIMITS)
    (record,) = images.records
    assert record.error is not None and "pixels" in record.error
    assert peak_rss_mb() - before < 50
