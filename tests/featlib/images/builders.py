"""Builders of image files, ZIPs and folders for the tests of featlib.images: every bad file is
built here, in memory; nothing is read from binary fixtures."""

from __future__ import annotations

import io
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from featlib import images as fi

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
