"""Tests of featlib.images: decoding, bad input, resizing, and every kind of source.

Every bad file is built here, in memory; nothing is read from binary fixtures.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from featlib import images as fi
from featlib.errors import ArchiveError, FeatlibError, ImageError, SourceError
from featlib.images import sources
from tests.fake_s3 import fake_s3

# --- builders ------------------------------------------------------------------------------------


def encode(img: Image.Image, fmt: str = "PNG", **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def noise(seed: int = 0, size: tuple[int, int] = (8, 6), fmt: str = "PNG") -> bytes:
    """A small random RGB picture, (width, height) = size."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), fmt)


def png_header(width: int, height: int) -> bytes:
    """A PNG whose valid IHDR claims width x height, with a token IDAT: a decompression bomb."""

    def chunk(tag: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(tag + body))
        return struct.pack(">I", len(body)) + tag + body + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


def corrupt_png() -> bytes:
    """A PNG whose compressed pixels start with a deflate block of the reserved type 3."""
    data = bytearray(noise(1, (16, 16)))
    data[data.find(b"IDAT") + 4 + 2] = 0xFF  # after the 2-byte zlib header: BFINAL=1, BTYPE=3
    return bytes(data)


def make_zip(entries, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A ZIP of (name or ZipInfo, bytes) entries."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def symlink_entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def patch_entry(data: bytes, name: str, *, size: int | None = None, flags: int = 0) -> bytes:
    """Rewrite an entry's declared uncompressed size and/or OR in flag bits, in both headers."""
    buf = bytearray(data)
    raw = name.encode()
    local, central = buf.find(raw) - 30, buf.rfind(raw) - 46
    assert buf[local : local + 4] == b"PK\x03\x04" and buf[central : central + 4] == b"PK\x01\x02"
    if size is not None:
        struct.pack_into("<I", buf, local + 22, size)
        struct.pack_into("<I", buf, central + 24, size)
    for offset in (local + 6, central + 8):
        struct.pack_into("<H", buf, offset, struct.unpack_from("<H", buf, offset)[0] | flags)
    return bytes(buf)


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def snapshot(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def by_name(image_set: fi.ImageSet) -> dict[str, fi.ImageRecord]:
    return {r.name: r for r in image_set.records}


def build(kind: str, files: dict[str, bytes], tmp_path: Path, limits=None) -> fi.ImageSet:
    """The same files as uploads, a folder, or a ZIP."""
    if kind == "uploads":
        return fi.from_uploads(files.items(), limits)
    if kind == "zip":
        return fi.from_zip(make_zip(files.items()), limits)
    folder = tmp_path / "set"
    write_tree(folder, files)
    return fi.from_folder(folder, limits)


SOURCES = ["uploads", "folder", "zip"]

# --- limits --------------------------------------------------------------------------------------


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


# --- ZIP -----------------------------------------------------------------------------------------

REFUSED = [
    ("../evil.png", "'..'"),
    ("cats/../../evil.png", "'..'"),
    ("..\\evil.png", "'..'"),
    ("/tmp/evil.png", "absolute path"),
    ("C:/evil.png", "drive letter"),
    ("c:\\evil.png", "drive letter"),
]


@pytest.mark.parametrize(("entry", "reason"), REFUSED)
def test_zip_refuses_escaping_entries_and_writes_nothing(tmp_path, monkeypatch, entry, reason):
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    data = make_zip([("good.png", noise(1)), (entry, noise(2)), (symlink_entry("link.png"), b"/")])

    image_set = fi.from_zip(data)

    errors = by_name(image_set)
    assert reason in errors[entry.replace("\\", "/")].error
    assert "symbolic link refused" in errors["link.png"].error
    assert [r.name for r in image_set.ok] == ["good.png"]
    assert image_set.load(image_set.ok[0]).shape == (6, 8, 3)
    assert snapshot(tmp_path) == before
    assert not (tmp_path.parent / "evil.png").exists()


def test_zip_with_two_entries_of_the_same_name_uses_the_first():
    data = make_zip([("cats/a.png", noise(1)), ("cats/a.png", noise(2)), ("cats/b.png", noise(3))])
    image_set = fi.from_zip(data)
    first, second, other = image_set.records
    assert first.name == second.name == "cats/a.png"
    assert first.error is None and first.sha256 == hashlib.sha256(noise(1)).hexdigest()
    assert "same name" in second.error
    assert other.error is None


def test_zip_of_thousands_of_tiny_entries():
    entries = [(f"c{i % 3}/{i}.png", noise(i, (2, 2))) for i in range(3_000)]
    image_set = fi.from_zip(make_zip(entries))
    assert len(image_set.ok) == 3_000
    assert image_set.summary()["labels"] == {"c0": 1_000, "c1": 1_000, "c2": 1_000}


def test_zip_skips_folders_and_hidden_files_reports_text_and_refuses_nested_archives():
    data = make_zip(
        [
            ("cats/", b""),
            ("cats/a.png", noise(1)),
            ("cats/.DS_Store", b"\x00\x01"),
            ("__MACOSX/cats/._a.png", b"\x00\x05"),
            ("./dogs/b.png", noise(2)),
            ("README.md", b"# pets"),
            ("more.zip", make_zip([("c.png", noise(3))])),
        ]
    )
    image_set = fi.from_zip(data)
    assert [(r.name, r.label, r.error) for r in image_set.records] == [
        ("README.md", None, "a text file, not an image: skipped"),
        ("cats/a.png", "cats", None),
        ("dogs/b.png", "dogs", None),
        ("more.zip", None, "nested archives are not expanded"),
    ]


def test_text_files_are_reported_alike_loose_and_inside_a_zip():
    zipped = make_zip([("cats/a.png", noise(1)), ("cats/notes.txt", b"hello")])
    image_set = fi.from_uploads(
        [("notes.txt", b"hello"), ("pets.zip", zipped), ("b.png", noise(2))]
    )
    assert [(r.name, r.error) for r in image_set.errors] == [
        ("notes.txt", "a text file, not an image: skipped"),
        ("pets.zip/cats/notes.txt", "a text file, not an image: skipped"),
    ]
    assert image_set.summary()["ok"] == 2


def test_zip_layout_skips_a_wrapping_folder():
    entries = [
        ("pets/train/cat/a.png", noise(1)),
        ("pets/train/dog/b.png", noise(2)),
        ("pets/val/cat/c.png", noise(3)),
        ("pets/test/d.png", noise(4)),
    ]
    image_set = fi.from_zip(make_zip(entries))
    assert [(r.name, r.label, r.split) for r in image_set.records] == [
        ("pets/test/d.png", None, "test"),
        ("pets/train/cat/a.png", "cat", "train"),
        ("pets/train/dog/b.png", "dog", "train"),
        ("pets/val/cat/c.png", "cat", "val"),
    ]
    (single,) = fi.from_zip(make_zip([("cat/a.png", noise(1))])).records
    assert single.label == "cat"


@pytest.mark.parametrize(
    ("placeholder", "raw"),
    [("cafXY", "café".encode()), ("cafX", "café".encode("cp437"))],
    ids=["utf8-without-flag", "cp437"],
)
def test_zip_names_without_the_utf8_flag(placeholder, raw):
    data = make_zip([(f"{placeholder}/a.png", noise(1))])
    data = data.replace(placeholder.encode(), raw)
    (record,) = fi.from_zip(data).records
    assert (record.name, record.label, record.error) == ("café/a.png", "café", None)


def test_zip_with_a_utf8_flagged_name():
    (record,) = fi.from_zip(make_zip([("猫/a.png", noise(1))])).records
    assert record.label == "猫" and record.error is None


BOMBS = [
    ("entries", [(f"{i}.png", noise(i)) for i in range(5)], {"max_zip_entries": 3}),
    ("unpacks to", [("a.png", noise(1)), ("b.png", noise(2))], {"max_zip_bytes": 200}),
    ("compression ratio", [("zeros.bmp", bytes(2 * 1024 * 1024))], {}),
    ("holds 5 files", [(f"{i}.png", noise(i)) for i in range(5)], {"max_files": 4}),
]


@pytest.mark.parametrize(("match", "entries", "limits"), BOMBS, ids=[b[0] for b in BOMBS])
def test_zip_bombs_are_refused_from_the_directory(monkeypatch, match, entries, limits):
    data = make_zip(entries)

    def never(*args, **kwargs):
        raise AssertionError("an entry was read")

    monkeypatch.setattr(zipfile.ZipFile, "open", never)
    with pytest.raises(ArchiveError, match=match):
        fi.from_zip(data, fi.ImageLimits(**limits))


@pytest.mark.parametrize("n_entries", [5, 65_536], ids=["zip", "zip64"])
def test_zip_entry_count_is_read_before_the_directory(monkeypatch, n_entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i in range(n_entries):
            zf.writestr(str(i), b"")

    def never(*args, **kwargs):
        raise AssertionError("the central directory was parsed")

    monkeypatch.setattr(zipfile, "ZipFile", never)
    with pytest.raises(ArchiveError, match=f"has {n_entries:,} entries"):
        fi.from_zip(buf.getvalue(), fi.ImageLimits(max_zip_entries=4))


def test_zip_end_record_that_understates_the_entries():
    data = bytearray(make_zip([(f"{i}.png", noise(i)) for i in range(5)]))
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 1, 1)  # "1 entry" on this disk and in total
    with pytest.raises(ArchiveError, match="has 5 entries"):
        fi.from_zip(bytes(data), fi.ImageLimits(max_zip_entries=4))


def test_zip_bomb_among_uploads_is_one_error_record():
    bomb = make_zip([("zeros.bmp", bytes(2 * 1024 * 1024))])
    nested = make_zip([("cats/a.png", noise(1)), ("cats/bad.png", b"nope")])
    image_set = fi.from_uploads([("bomb.zip", bomb), ("x.png", noise(2)), ("pets.ZIP", nested)])
    assert [(r.name, r.label, r.error is None) for r in image_set.records] == [
        ("bomb.zip", None, False),
        ("x.png", None, True),
        ("pets.ZIP/cats/a.png", "cats", True),
        ("pets.ZIP/cats/bad.png", "cats", False),
    ]
    assert "ZIP bomb" in image_set.records[0].error
    assert image_set.load_batch(image_set.ok, (3, 3)).shape == (2, 3, 3, 3)


@pytest.mark.parametrize(
    ("patch", "reason"),
    [
        ({"size": 100}, "corrupt ZIP entry"),  # more data than declared: never read past it
        ({"size": 100_000}, "corrupt ZIP entry"),  # less data than declared
        ({"flags": 0x1}, "encrypted"),
    ],
)
def test_zip_entry_that_lies_about_itself(patch, reason):
    forged = noise(5, (32, 32))
    data = patch_entry(
        make_zip([("a.png", noise(1)), ("forged.png", forged)]), "forged.png", **patch
    )
    image_set = fi.from_zip(data)
    assert reason in by_name(image_set)["forged.png"].error
    assert [r.name for r in image_set.ok] == ["a.png"]


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04 not really", noise(1)])
def test_not_a_zip(data):
    with pytest.raises(ArchiveError, match="not a readable ZIP"):
        fi.from_zip(data)


def test_zip_from_a_path(tmp_path):
    path = tmp_path / "pets.zip"
    path.write_bytes(make_zip([("cat/a.png", noise(1))]))
    assert fi.from_zip(path).labels == ["cat"]
    with pytest.raises(SourceError, match=r"missing\.zip: no such ZIP file"):
        fi.from_zip(tmp_path / "missing.zip")


# --- folders -------------------------------------------------------------------------------------


@pytest.fixture
def pets(tmp_path) -> Path:
    folder = tmp_path / "pets"
    write_tree(
        folder,
        {
            "train/cat/a.png": noise(1),
            "train/cat/deeper/b.png": noise(2),
            "train/dog/c.jpg": noise(3, fmt="JPEG"),
            "Val/dog/d.png": noise(4),
            "bird/e.png": noise(5),
            "loose.png": noise(6),
            "bird/notes.txt": b"not an image, skipped",
            "bird/weird.dat": b"not an image either",
            "bird/.hidden.png": noise(7),
            ".cache/f.png": noise(8),
            "bird/nested.zip": make_zip([("g.png", noise(9))]),
        },
    )
    outside = tmp_path / "outside"
    write_tree(outside, {"secret.png": noise(10)})
    os.symlink(outside / "secret.png", folder / "bird" / "leak.png")
    os.symlink(outside, folder / "escape")
    os.symlink(folder / "bird" / "e.png", folder / "train" / "cat" / "alias.png")
    os.symlink(folder, folder / "bird" / "up")
    os.symlink("self.png", folder / "bird" / "self.png")
    return folder


def test_folder_labels_splits_and_skips(pets):
    image_set = fi.from_folder(pets)
    assert [(r.name, r.label, r.split, r.error is None) for r in image_set.records] == [
        ("Val/dog/d.png", "dog", "val", True),
        ("bird/e.png", "bird", None, True),
        ("bird/leak.png", "bird", None, False),
        ("bird/nested.zip", "bird", None, False),
        ("bird/self.png", "bird", None, False),
        ("bird/weird.dat", "bird", None, False),
        ("escape", None, None, False),
        ("loose.png", None, None, True),
        ("train/cat/a.png", "cat", "train", True),
        ("train/cat/alias.png", "cat", "train", True),
        ("train/cat/deeper/b.png", "cat", "train", True),
        ("train/dog/c.jpg", "dog", "train", True),
    ]
    errors = by_name(image_set)
    assert "outside the folder" in errors["bird/leak.png"].error
    assert "outside the folder" in errors["escape"].error
    assert "nested archives" in errors["bird/nested.zip"].error
    assert "symbolic link loop" in errors["bird/self.png"].error
    assert "not an image" in errors["bird/weird.dat"].error
    assert errors["train/cat/alias.png"].sha256 == errors["bird/e.png"].sha256
    assert image_set.summary()["splits"] == {"train": 4, "val": 1}
    assert image_set.load_batch(image_set.ok, (6, 6)).shape == (7, 6, 6, 3)


def test_folder_reads_lazily_and_notices_changes(pets):
    image_set = fi.from_folder(pets)
    record = by_name(image_set)["loose.png"]
    assert image_set.read_bytes(record) == noise(6)
    (pets / "loose.png").write_bytes(noise(11))
    with pytest.raises(ImageError, match=r"loose\.png: the file changed"):
        image_set.load(record)
    (pets / "loose.png").unlink()
    with pytest.raises(ImageError, match="file not found"):
        image_set.read_bytes(record)


def test_folder_with_a_root(pets, tmp_path):
    image_set = fi.from_folder(pets / "bird", root=tmp_path)
    assert by_name(image_set)["leak.png"].error is None  # inside the wider root
    with pytest.raises(SourceError, match="outside the allowed root"):
        fi.from_folder(tmp_path / "outside", root=pets)


def test_folder_limits(pets, tmp_path):
    with pytest.raises(SourceError, match="more than 3 files"):
        fi.from_folder(pets, fi.ImageLimits(max_files=3))
    with pytest.raises(SourceError, match="not a folder"):
        fi.from_folder(pets / "loose.png")
    with pytest.raises(SourceError, match="not a folder"):
        fi.from_folder(tmp_path / "missing")


# --- CSV -----------------------------------------------------------------------------------------


def test_csv_source(tmp_path):
    data_dir = tmp_path / "data"
    write_tree(data_dir, {"img/a.png": noise(1), "img/b.png": noise(2), "../secret.png": noise(3)})
    os.symlink(tmp_path / "secret.png", data_dir / "img" / "link.png")
    rows = [
        "path,split,label",
        "img/a.png,train,cat",
        "img\\b.png,Validation,dog",
        "img/../img/a.png,, ",
        "../secret.png,train,cat",
        f"{tmp_path / 'secret.png'},train,cat",
        "C:\\secret.png,train,cat",
        "img/link.png,train,cat",
        "img/missing.png,test,dog",
        "img,test,dog",
        ",test,dog",
        "",
    ]
    (data_dir / "labels.csv").write_text("\n".join(rows), encoding="utf-8-sig")

    image_set = fi.from_csv(data_dir / "labels.csv")
    got = [(r.name, r.label, r.split, r.error) for r in image_set.records]
    assert [g[:3] for g in got] == [
        ("img/a.png", "cat", "train"),
        ("img\\b.png", "dog", "val"),
        ("img/../img/a.png", None, None),
        ("../secret.png", "cat", "train"),
        (str(tmp_path / "secret.png"), "cat", "train"),
        ("C:\\secret.png", "cat", "train"),
        ("img/link.png", "cat", "train"),
        ("img/missing.png", "dog", "test"),
        ("img", "dog", "test"),
        ("row 11", "dog", "test"),
    ]
    reasons = [g[3] or "" for g in got]
    assert reasons[:3] == ["", "", ""]
    assert "outside the CSV's folder through '..'" in reasons[3]
    assert "absolute path refused" in reasons[4] and "absolute path refused" in reasons[5]
    assert "outside the CSV's folder through a symbolic link" in reasons[6]
    assert "file not found" in reasons[7]
    assert "a folder, not a file" in reasons[8]
    assert "no usable path" in reasons[9]
    assert image_set.load_batch(image_set.ok, (4, 4)).shape == (3, 4, 4, 3)


def test_csv_of_uris_reads_them_through_pyarrow(tmp_path):
    bucket = tmp_path / "served" / "bucket"
    write_tree(bucket, {"cat/a.png": noise(1), "big.png": noise(2, size=(64, 64))})
    with fake_s3(tmp_path / "served") as uri:
        rows = [
            f"{uri('bucket/cat/a.png')},cat",
            f"{uri('bucket/missing.png')},dog",
            f"{uri('bucket/big.png')},dog",
            "nosuchscheme://bucket/a.png,cat",
            f"file://{bucket / 'cat' / 'a.png'},cat",
        ]
        (tmp_path / "list.csv").write_text("\n".join(rows))
        limits = fi.ImageLimits(max_file_bytes=len(noise(2, size=(64, 64))) - 1)
        image_set = fi.from_csv(tmp_path / "list.csv", limits)
        (ok,) = image_set.ok
        assert (ok.name, ok.label) == (rows[0][:-4], "cat")
        assert ok.sha256 == hashlib.sha256(noise(1)).hexdigest()
        assert image_set.read_bytes(ok) == noise(1)  # read again through pyarrow, hash checked
        assert image_set.file(ok) == ok.name
    reasons = [r.error for r in image_set.records[1:]]
    assert reasons[0] == "file not found"
    assert "too large" in reasons[1]
    assert "cannot be read through pyarrow (Unrecognized filesystem type" in reasons[2]
    assert "file:// URI refused" in reasons[3]


def test_listed_not_read_then_read_files(tmp_path):
    write_tree(tmp_path / "set", {"cat/a.png": noise(1), "cat/bad.png": b"junk", "x.txt": b"t"})
    (tmp_path / "set" / "dog.zip").write_bytes(b"PK")
    listed = fi.open_source(tmp_path / "set", read=False)
    assert [(r.name, r.label, r.sha256, r.error) for r in listed.ok] == [
        ("cat/a.png", "cat", None, None), ("cat/bad.png", "cat", None, None)
    ]  # fmt: skip
    assert [r.name for r in listed.errors] == ["dog.zip"]  # refused by its name, unread
    entries = [(r.name, listed.file(r), r.label, r.split) for r in listed.ok]
    read = fi.read_files(entries)
    assert read.records == [
        r for r in fi.open_source(tmp_path / "set").records if r.name != "dog.zip"
    ]


def test_csv_without_header_is_positional(tmp_path):
    write_tree(tmp_path, {"a.png": noise(1), "b.png": noise(2)})
    (tmp_path / "list.csv").write_text("a.png,cat\nb.png,dog,test\n")
    image_set = fi.from_csv(tmp_path / "list.csv")
    assert [(r.label, r.split) for r in image_set.ok] == [("cat", None), ("dog", "test")]


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"path,label\n\xff\xfe\xfa,cat\n", "not UTF-8"), (b"a.png," + b"x" * 200_000, "valid CSV")],
    ids=["not-utf8", "huge-field"],
)
def test_csv_that_cannot_be_read(tmp_path, content, match):
    (tmp_path / "bad.csv").write_bytes(content)
    with pytest.raises(SourceError, match=match):
        fi.from_csv(tmp_path / "bad.csv")


def test_csv_limits(tmp_path):
    write_tree(tmp_path, {"a.png": noise(1)})
    (tmp_path / "many.csv").write_text("a.png,x\n" * 5)
    with pytest.raises(SourceError, match="more than 4 files"):
        fi.from_csv(tmp_path / "many.csv", fi.ImageLimits(max_files=4))
    with pytest.raises(SourceError, match="no such CSV"):
        fi.from_csv(tmp_path / "missing.csv")


# --- samples and dispatch ------------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize(
    ("name", "max_images", "labels"),
    [
        ("photos", None, {"photo": 7, "texture": 3}),
        ("faces", None, {"face": 100, "non-face": 100}),
        ("faces", 20, {"face": 10, "non-face": 10}),
        ("digits", 30, None),
    ],
)
def test_samples_load_offline(no_network, name, max_images, labels):
    image_set = fi.load_samples(name, max_images=max_images)
    summary = image_set.summary()
    assert summary["errors"] == 0 and summary["ok"] == (max_images or len(image_set))
    assert summary["labels"] == labels or labels is None
    assert all(len(r.sha256) == 64 for r in image_set.records)
    assert image_set.load_batch(image_set.ok[:3], (16, 16)).shape == (3, 16, 16, 3)


def test_digits_default_count_and_size():
    image_set = fi.load_samples("digits")
    assert len(image_set) == 300 and set(image_set.labels) == {str(d) for d in range(10)}
    assert {(r.width, r.height) for r in image_set.records} == {(32, 32)}


def test_samples_arguments():
    assert fi.list_samples() == ["photos", "faces", "digits"]
    with pytest.raises(SourceError, match=r"unknown sample set 'cats'.*list_samples"):
        fi.load_samples("cats")
    with pytest.raises(FeatlibError, match="max_images must be a positive integer"):
        fi.load_samples("digits", max_images=0)


def test_open_source_dispatches(pets, tmp_path, monkeypatch):
    (tmp_path / "pets.zip").write_bytes(make_zip([("cat/a.png", noise(1))]))
    (tmp_path / "list.csv").write_text("pets/loose.png,x\n")
    monkeypatch.setattr(sources, "load_samples", lambda name: f"sample {name}")

    assert fi.open_source(str(pets)).records == fi.from_folder(pets).records
    assert fi.open_source(tmp_path / "pets.zip").labels == ["cat"]
    assert fi.open_source(str(tmp_path / "list.csv")).labels == ["x"]
    assert fi.open_source("sample:faces") == "sample faces"


@pytest.mark.parametrize(
    ("source", "match"),
    [("pets/loose.png", "loose.png: not a folder, .zip or .csv"), ("nowhere", "no such file")],
)
def test_open_source_refuses(pets, tmp_path, source, match):
    with pytest.raises(SourceError, match=match):
        fi.open_source(tmp_path / source)
