"""featlib.images.decode: limits, bad input, modes, orientation, frames, resizing."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from featlib import images as fi
from featlib.errors import FeatlibError, ImageError
from tests.featlib.images.builders import (
    SOURCES,
    build,
    by_name,
    corrupt_png,
    encode,
    noise,
    png_header,
)


def test_limits_from_env_overrides_defaults():
    env = {"FEATLIB_MAX_PIXELS": "1_000", "FEATLIB_MAX_ZIP_RATIO": "12.5", "FEATLIB_MAX_FILES": ""}
    limits = fi.ImageLimits.from_env(env)
    assert limits == fi.ImageLimits(max_pixels=1000, max_zip_ratio=12.5)
    assert limits.max_files == 20_000


@pytest.mark.parametrize("value", ["many", "-3", "0", "1.5"])
def test_limits_from_env_rejects_bad_values(value):
    with pytest.raises(FeatlibError, match=r"FEATLIB_MAX_PIXELS|max_pixels"):
        fi.ImageLimits.from_env({"FEATLIB_MAX_PIXELS": value})


@pytest.mark.parametrize("field", ["max_pixels", "max_file_bytes", "max_zip_ratio"])
def test_limits_must_be_positive(field):
    with pytest.raises(FeatlibError, match=f"{field} must be a positive number"):
        fi.ImageLimits(**{field: 0})


def test_default_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("FEATLIB_MAX_FILE_BYTES", "100")
    (record,) = fi.from_uploads([("big.png", noise(size=(32, 32)))]).records
    assert "too large" in record.error


@pytest.mark.parametrize("kind", SOURCES)
def test_the_environment_is_read_once_per_source_not_per_image(tmp_path, monkeypatch, kind):
    reads = []
    from_env = fi.ImageLimits.from_env.__func__
    monkeypatch.setattr(
        fi.ImageLimits, "from_env", classmethod(lambda cls: reads.append(1) or from_env(cls))
    )
    image_set = build(kind, {f"{i}.png": noise(i) for i in range(5)}, tmp_path, None)
    image_set.load_batch(image_set.ok, (8, 8))
    assert len(image_set.ok) == 5 and len(reads) == 1


def test_decode_image_reads_no_environment(monkeypatch):
    monkeypatch.setenv("FEATLIB_MAX_FILE_BYTES", "100")
    assert fi.decode_image(noise(size=(32, 32)), "big.png").size == (32, 32)
    with pytest.raises(ImageError, match="too large"):
        fi.decode_image(noise(size=(32, 32)), "big.png", fi.ImageLimits.from_env())


# --- bad input -----------------------------------------------------------------------------------

SMALL_FILES = fi.ImageLimits(max_file_bytes=2_000)
BAD_FILES = [
    # name, bytes, limits, reason
    ("note.png", b"this is plain text, not a picture", None, "not an image"),
    ("script.eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 9 9\n", None, "not an image"),
    ("empty.jpg", b"", None, "empty"),
    ("cut.png", noise(1, (64, 64))[:3000], None, "truncated"),
    ("cut.jpg", noise(1, (64, 64), "JPEG")[:800], None, "truncated"),
    ("cut.gif", noise(1, (64, 64), "GIF")[:1500], None, "truncated"),
    ("corrupt.png", corrupt_png(), None, "corrupt"),
    ("bomb.png", png_header(100_000, 100_000), None, "too many pixels"),
    ("big.png", png_header(8_000, 8_000), None, "too many pixels"),
    ("wide.png", noise(1, (64, 64)), fi.ImageLimits(max_pixels=1_000), "too many pixels"),
    ("heavy.png", noise(1, (64, 64)), SMALL_FILES, "too large"),
]


@pytest.mark.parametrize("kind", SOURCES)
@pytest.mark.parametrize(
    ("name", "data", "limits", "reason"), BAD_FILES, ids=[b[0] for b in BAD_FILES]
)
def test_a_bad_file_gets_an_error_record_and_the_rest_goes_on(
    tmp_path, kind, name, data, limits, reason
):
    files = {"a_good.png": noise(2), name: data, "z_good.jpg": noise(3, fmt="JPEG")}
    image_set = build(kind, files, tmp_path, limits)

    assert [r.name for r in image_set.errors] == [name]
    assert reason in image_set.errors[0].error
    assert [r.name for r in image_set.ok] == ["a_good.png", "z_good.jpg"]
    assert image_set.load_batch(image_set.ok, (5, 7)).shape == (2, 5, 7, 3)
    with pytest.raises(ImageError, match=reason):
        fi.decode_image(data, name, limits or fi.ImageLimits())


def test_pixel_limit_is_checked_from_the_header():
    (record,) = fi.from_uploads([("big.png", png_header(8_000, 8_000))]).records
    assert (record.width, record.height, record.mode) == (8_000, 8_000, "RGB")
    assert "64,000,000" in record.error


def test_oversized_file_is_not_hashed():
    (record,) = fi.from_uploads([("heavy.png", noise(size=(64, 64)))], SMALL_FILES).records
    assert record.sha256 is None and "FEATLIB_MAX_FILE_BYTES" in record.error


def test_a_mode_pillow_cannot_convert_is_an_error_record(monkeypatch):
    real_convert = Image.Image.convert

    def convert(self, mode=None, *args, **kwargs):
        if self.mode == "CMYK":
            raise ValueError("conversion from CMYK to RGB not supported")
        return real_convert(self, mode, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "convert", convert)
    cmyk = encode(Image.new("CMYK", (4, 4), (0, 0, 0, 0)), "TIFF")
    image_set = fi.from_uploads([("odd.tif", cmyk), ("ok.png", noise())])
    assert "unsupported colour mode 'CMYK'" in by_name(image_set)["odd.tif"].error
    assert by_name(image_set)["ok.png"].error is None


# --- modes, orientation, frames ------------------------------------------------------------------


def palette_with_transparency() -> Image.Image:
    img = Image.new("P", (4, 4), 1)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.putpixel((0, 0), 0)
    img.info["transparency"] = 0
    return img


def array_image(values, mode: str) -> Image.Image:
    return Image.fromarray(np.array(values).reshape(1, -1).astype(np.float32)).convert(mode)


MODES = [
    # picture, format, file mode as opened, expected RGB of pixel (0, 0), tolerance
    (Image.new("1", (4, 4), 1), "PNG", "1", (255, 255, 255), 0),
    (Image.new("L", (4, 4), 100), "PNG", "L", (100, 100, 100), 0),
    (Image.new("LA", (4, 4), (0, 0)), "PNG", "LA", (255, 255, 255), 0),
    (Image.new("LA", (4, 4), (0, 128)), "PNG", "LA", (127, 127, 127), 1),
    (Image.new("RGBA", (4, 4), (255, 0, 0, 0)), "PNG", "RGBA", (255, 255, 255), 0),
    (Image.new("RGBA", (4, 4), (255, 0, 0, 0)), "WEBP", "RGBA", (255, 255, 255), 0),
    (palette_with_transparency(), "PNG", "P", (255, 255, 255), 0),
    (palette_with_transparency(), "GIF", "P", (255, 255, 255), 0),
    (Image.new("I;16", (4, 4), 65535), "PNG", "I;16", (255, 255, 255), 0),
    (Image.new("I;16", (4, 4), 32768), "TIFF", "I;16", (128, 128, 128), 0),
    (Image.new("I;16", (4, 4), 257), "PNG", "I;16", (1, 1, 1), 0),
    (Image.new("I", (4, 4), 65535), "TIFF", "I", (255, 255, 255), 0),
    (array_image([-5, 5], "I"), "TIFF", "I", (0, 0, 0), 0),
    (Image.new("F", (4, 4), 0.5), "TIFF", "F", (128, 128, 128), 0),
    (array_image([1000.0, 3000.0], "F"), "TIFF", "F", (0, 0, 0), 0),
    (Image.new("CMYK", (4, 4), (255, 0, 0, 0)), "TIFF", "CMYK", (0, 255, 255), 0),
    (Image.new("CMYK", (8, 8), (255, 0, 0, 0)), "JPEG", "CMYK", (0, 255, 255), 8),
    (Image.new("RGB", (4, 4), (255, 0, 0)).convert("LAB"), "TIFF", "LAB", (255, 0, 0), 8),
    (Image.new("YCbCr", (4, 4), (76, 85, 255)), "TIFF", "YCbCr", (254, 0, 0), 3),
]


@pytest.mark.parametrize(
    ("picture", "fmt", "mode", "expected", "tolerance"),
    MODES,
    ids=[f"{fmt}-{mode}-{i}" for i, (_, fmt, mode, _, _) in enumerate(MODES)],
)
def test_every_mode_becomes_rgb(picture, fmt, mode, expected, tolerance):
    data = encode(picture, fmt)
    (record,) = fi.from_uploads([(f"x.{fmt.lower()}", data)]).records
    assert (record.mode, record.error) == (mode, None)

    img = fi.decode_image(data, "x")
    assert img.mode == "RGB" and img.size == picture.size
    np.testing.assert_allclose(img.getpixel((0, 0)), expected, atol=tolerance)


def test_sixteen_bit_is_scaled_not_clipped():
    ramp = np.array([[0, 256, 32768, 65535]], dtype=np.uint16)
    img = fi.decode_image(encode(Image.fromarray(ramp)), "ramp.png")
    assert np.asarray(img)[0, :, 0].tolist() == [0, 1, 128, 255]


def test_exif_orientation_is_applied():
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, :20] = (255, 0, 0)  # left half red, right half blue
    wide[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    data = encode(Image.fromarray(wide), "JPEG", exif=exif, quality=95)

    image_set = fi.from_uploads([("turned.jpg", data)])
    (record,) = image_set.records
    assert (record.width, record.height) == (20, 40)
    pixels = image_set.load(record)
    assert pixels.shape == (40, 20, 3)
    assert pixels[:15, :, 0].mean() > 200 and pixels[:15, :, 2].mean() < 50  # left is now top
    assert pixels[-15:, :, 2].mean() > 200


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_animated_image_gives_its_first_frame(fmt):
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    buf = io.BytesIO()
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=50, loop=0)
    img = fi.decode_image(buf.getvalue(), f"anim.{fmt.lower()}")
    np.testing.assert_allclose(img.getpixel((4, 4)), (255, 0, 0), atol=8)


# --- resizing ------------------------------------------------------------------------------------


def three_bands(width: int = 60, height: int = 20) -> Image.Image:
    """Red, green and blue vertical thirds."""
    pixels = np.zeros((height, width, 3), np.uint8)
    third = width // 3
    pixels[:, :third, 0] = pixels[:, third : 2 * third, 1] = pixels[:, 2 * third :, 2] = 255
    return Image.fromarray(pixels)


@pytest.mark.parametrize("mode", fi.RESIZE_MODES)
@pytest.mark.parametrize("size", [(16, 24), (24, 16), (20, 60), (1, 1)])
@pytest.mark.parametrize("picture", [(60, 20), (300, 1), (1, 300)], ids=str)
def test_resize_gives_the_requested_shape(mode, size, picture):
    out = fi.resize_image(three_bands(*picture), size, mode)
    assert out.shape == (*size, 3) and out.dtype == np.uint8


def test_pad_letterboxes_with_black_bars():
    out = fi.resize_image(Image.new("RGB", (40, 20), "white"), (20, 20), "pad")
    assert out[:4].max() == 0 and out[-4:].max() == 0  # bars above and below
    assert (out[6:14] == 255).all()


def test_center_crop_keeps_the_centre():
    out = fi.resize_image(three_bands(), (10, 10), "center-crop")
    assert (out[..., 1] > 200).all() and out[..., [0, 2]].max() < 60


def test_stretch_keeps_everything():
    out = fi.resize_image(three_bands(), (10, 30), "stretch")
    assert out[5, 2, 0] == 255 and out[5, 15, 1] == 255 and out[5, 27, 2] == 255


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": (8, 8), "mode": "zoom"}, "resize_mode must be one of"),
        ({"size": (0, 8)}, "size must be"),
        ({"size": (8,)}, "size must be"),
        ({"size": (8.0, 8)}, "size must be"),
    ],
)
def test_resize_checks_its_arguments(kwargs, match):
    with pytest.raises(FeatlibError, match=match):
        fi.resize_image(three_bands(), **kwargs)


def test_small_load_of_a_big_jpeg_matches_a_full_decode():
    y, x = np.mgrid[0:512, 0:512]
    smooth = np.stack([x // 2, y // 2, (x + y) // 4], -1).astype(np.uint8)
    data = encode(Image.fromarray(smooth), "JPEG", quality=95)
    image_set = fi.from_uploads([("big.jpg", data)])
    fast = image_set.load(image_set.ok[0], (32, 32)).astype(int)
    full = fi.resize_image(fi.decode_image(data, "big.jpg"), (32, 32)).astype(int)
    assert np.abs(fast - full).mean() < 3
