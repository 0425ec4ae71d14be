"""Image sets: decoding and validating images from uploads, folders, ZIPs, CSVs and samples.

An ``ImageSet`` holds one ``ImageRecord`` per file, identified by the SHA-256 of its bytes. A file
that cannot be used (not an image, empty, truncated, corrupt, too large, refused) becomes a record
with ``error`` set to the reason in plain words, and the rest of the set goes on. Every file is
decoded once when the set is built, so ``set.ok`` lists only images that load.

Safety, for bytes nobody has vetted:

- the pixel count is checked from the header *before* decoding (decompression bombs), the file
  size before reading; both limits are fields of ``ImageLimits``;
- only common raster formats are opened (PNG, JPEG, GIF, BMP, TIFF, WebP, PPM, and AVIF where
  Pillow has it); Pillow's other plugins, some of which call external programs (EPS runs
  Ghostscript), are never tried;
- ZIPs are read into memory and never extracted: entries with absolute paths, drive letters,
  ``..`` or symbolic links are refused one by one; too many entries, too many bytes unpacked or
  too high a compression ratio refuse the whole archive, decided from the central directory and
  enforced again while reading;
- folders and CSVs follow no symbolic link out of their root, nor any link loop.

Layout: a top-level ``train/``, ``test/`` or ``val/`` (also ``valid/``, ``validation/``) folder
sets ``split``; the next folder level is the ``label``. Files directly in the root have no label.
Hidden files and ``__MACOSX/`` are skipped silently, and so are text-like files (``.txt``,
``.csv``, ``.json``, ``.md``, ...) in folders; in uploads and ZIPs, which a person hands over file
by file, a text-like file gets an error record that says it was skipped. Every other file is
decoded, so a non-image with an unknown extension gets an error record rather than disappearing.

Example::

    >>> images = from_folder("data/pets")            # data/pets/cat/1.jpg, data/pets/dog/2.png
    >>> images.summary()["labels"]
    {'cat': 1, 'dog': 1}
    >>> images.load_batch(images.ok, size=(224, 224)).shape
    (2, 224, 224, 3)
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import re
import stat
import struct
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import numpy as np
from PIL import ExifTags, Image, ImageCms, ImageOps, UnidentifiedImageError

from featlib._uri import is_uri, read_uri
from featlib.errors import ArchiveError, FeatlibError, ImageError, SourceError

__all__ = [
    "RESIZE_MODES",
    "ImageLimits",
    "ImageRecord",
    "ImageSet",
    "decode_image",
    "from_csv",
    "from_folder",
    "from_uploads",
    "from_zip",
    "list_samples",
    "load_samples",
    "open_source",
    "read_files",
    "resize_image",
]

RESIZE_MODES = ("stretch", "center-crop", "pad")

# The only formats opened; Pillow's other plugins are never tried on user bytes. AVIF is there
# only when this Pillow was built with it.
Image.init()
_FORMATS = tuple(
    f
    for f in ("PNG", "JPEG", "MPO", "GIF", "BMP", "TIFF", "WEBP", "AVIF", "PPM")
    if f in Image.OPEN
)
_FORMAT_NAMES = ", ".join(f for f in _FORMATS if f != "MPO")  # MPO is a kind of JPEG

_SPLITS = {
    "train": "train",
    "test": "test",
    "val": "val",
    "valid": "val",
    "validation": "val",
}
_TEXT_SUFFIXES = frozenset(
    {".txt", ".csv", ".tsv", ".json", ".jsonl", ".md", ".rst", ".yaml", ".yml", ".xml", ".html"}
    | {".htm", ".py", ".ipynb", ".log", ".ini", ".cfg", ".toml", ".pdf"}
)
_TEXT_REASON = "a text file, not an image: skipped"
_ARCHIVE_SUFFIXES = frozenset({".zip", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".7z", ".rar", ".zst"})
_SIXTEEN_BIT = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_SCAN_DRAFT = (64, 64)  # JPEGs are checked at reduced scale: every byte is still decoded
_MIB = 1 << 20
_ENV_VARS = {
    "max_pixels": "FEATLIB_MAX_PIXELS",
    "max_file_bytes": "FEATLIB_MAX_FILE_BYTES",
    "max_files": "FEATLIB_MAX_FILES",
    "max_zip_bytes": "FEATLIB_MAX_ZIP_BYTES",
    "max_zip_entries": "FEATLIB_MAX_ZIP_ENTRIES",
    "max_zip_ratio": "FEATLIB_MAX_ZIP_RATIO",
}


@dataclass(frozen=True)
class ImageLimits:
    """Bounds on what an image set accepts; every field must be positive.

    Args:
        max_pixels: most pixels (width x height) one image may have, checked from its header.
        max_file_bytes: largest file read, in bytes.
        max_files: most files in one set (a larger source raises ``SourceError`` or
            ``ArchiveError``).
        max_zip_bytes: largest total uncompressed size of a ZIP, in bytes.
        max_zip_entries: most entries (files and folders) in a ZIP.
        max_zip_ratio: highest ratio of a ZIP's uncompressed to compressed size.

    Example::

        >>> ImageLimits(max_pixels=4_000_000).max_file_bytes
        52428800
    """

    max_pixels: int = 50_000_000
    max_file_bytes: int = 50 * _MIB
    max_files: int = 20_000
    max_zip_bytes: int = 2 * 1024 * _MIB
    max_zip_entries: int = 50_000
    max_zip_ratio: float = 200.0

    def __post_init__(self):
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise FeatlibError(
                    f"ImageLimits.{field.name} must be a positive number; received {value!r}"
                )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ImageLimits:
        """Limits with defaults overridden by ``FEATLIB_MAX_*`` environment variables.

        Args:
            environ: the variables to read; ``os.environ`` when None.

        Returns:
            ImageLimits: ``FEATLIB_MAX_PIXELS``, ``FEATLIB_MAX_FILE_BYTES``,
            ``FEATLIB_MAX_FILES``, ``FEATLIB_MAX_ZIP_BYTES``, ``FEATLIB_MAX_ZIP_ENTRIES`` (integers)
            and ``FEATLIB_MAX_ZIP_RATIO`` (a number) where set.

        Example::

            >>> ImageLimits.from_env({"FEATLIB_MAX_FILES": "500"}).max_files
            500
        """
        environ = os.environ if environ is None else environ
        values = {}
        for field, var in _ENV_VARS.items():
            raw = environ.get(var, "").strip()
            if not raw:
                continue
            parse = float if field == "max_zip_ratio" else int
            try:
                value = parse(raw)
            except ValueError:
                value = None
            if value is None or not value > 0:
                raise FeatlibError(f"{var} must be a positive number; received {raw!r}")
            values[field] = value
        return cls(**values)


@dataclass(frozen=True)
class ImageRecord:
    """One file of an image set.

    Args:
        name: relative path or upload name, as shown to the user.
        sha256: hex SHA-256 of the file's bytes; None when the bytes could not be read.
        label: class label from the folder layout or CSV; None when there is none.
        split: ``"train"``, ``"test"``, ``"val"`` (or a CSV's own value); None when not given.
        width: width in pixels as displayed (after EXIF orientation); None when unknown.
        height: height in pixels as displayed; None when unknown.
        mode: the file's PIL mode (``"RGB"``, ``"L"``, ``"I;16"``, ``"CMYK"``, ...).
        error: None when the image is usable, else why not, in plain words.

    Example::

        >>> ImageRecord("cat/1.jpg", "ab12...", "cat", None, 640, 480, "RGB", None).error is None
        True
    """

    name: str
    sha256: str | None
    label: str | None
    split: str | None
    width: int | None
    height: int | None
    mode: str | None
    error: str | None


def _limits(limits: ImageLimits | None) -> ImageLimits:
    return ImageLimits.from_env() if limits is None else limits


def _check_size(size) -> tuple[int, int]:
    ok = (
        isinstance(size, Sequence)
        and len(size) == 2
        and all(isinstance(v, int | np.integer) and not isinstance(v, bool) and v > 0 for v in size)
    )
    if not ok:
        raise FeatlibError(f"size must be (height, width) in positive integers; received {size!r}")
    return int(size[0]), int(size[1])


def _check_mode(resize_mode: str) -> None:
    if resize_mode not in RESIZE_MODES:
        raise FeatlibError(f"resize_mode must be one of {RESIZE_MODES}; received {resize_mode!r}")


# --- decoding ------------------------------------------------------------------------------------


def _open(data: bytes, name: str, limits: ImageLimits) -> Image.Image:
    """Read the header only: size and format checks, nothing decoded yet."""
    if not data:
        raise ImageError(name, "the file is empty")
    if len(data) > limits.max_file_bytes:
        raise ImageError(name, _too_big(len(data), limits))
    try:
        return Image.open(io.BytesIO(data), formats=_FORMATS)
    except UnidentifiedImageError:
        raise ImageError(name, f"not an image in a supported format ({_FORMAT_NAMES})") from None
    except Image.DecompressionBombError:
        raise ImageError(
            name,
            f"too many pixels: the header claims more than Pillow's limit of "
            f"{2 * Image.MAX_IMAGE_PIXELS:,} (a decompression bomb?); featlib's limit is "
            f"{limits.max_pixels:,} (FEATLIB_MAX_PIXELS)",
        ) from None
    except Exception as exc:  # Pillow's header parsers raise many types on bad bytes
        raise ImageError(name, _decode_reason(exc)) from exc


def _check_pixels(img: Image.Image, name: str, limits: ImageLimits) -> None:
    width, height = img.size
    if width * height > limits.max_pixels:
        raise ImageError(
            name,
            f"too many pixels: {width}x{height} = {width * height:,}, above the limit of "
            f"{limits.max_pixels:,} (FEATLIB_MAX_PIXELS)",
        )


def _too_big(n_bytes: int, limits: ImageLimits) -> str:
    return (
        f"the file is too large: {n_bytes / _MIB:.1f} MiB, above the limit of "
        f"{limits.max_file_bytes / _MIB:.1f} MiB (FEATLIB_MAX_FILE_BYTES)"
    )


def _decode_reason(exc: BaseException) -> str:
    message = str(exc)
    if isinstance(exc, EOFError) or "truncated" in message.lower():
        return "the file is truncated: the image data ends early"
    if isinstance(exc, MemoryError):
        return "not enough memory to decode the image"
    return f"the image data is corrupt ({message or type(exc).__name__})"


def _finish(
    img: Image.Image, name: str, draft: tuple[int, int] | None = None
) -> tuple[Image.Image, bool]:
    """Decode the first frame, apply EXIF orientation and convert to RGB.

    ``draft`` (w, h) lets JPEGs decode at a reduced scale no smaller than it. Returns the RGB
    image and whether the orientation swapped width and height.
    """
    try:
        if draft is not None:
            img.draft(None, draft)
        img.load()  # first, inside the try: truncation shows up only here
        turned = False
        with contextlib.suppress(Exception):  # a broken EXIF block must not spoil the image
            orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
            ImageOps.exif_transpose(img, in_place=True)
            turned = orientation in (5, 6, 7, 8)
        return _to_rgb(img, name), turned
    except ImageError:
        raise
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, struct.error, ...
        raise ImageError(name, _decode_reason(exc)) from exc


def _scale_to_uint8(array: np.ndarray, mode: str) -> np.ndarray:
    """16-bit, 32-bit integer and float pixels to 0..255 by scaling, never by clipping."""
    values = array.astype(np.float32)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(array.shape, np.uint8)
    lo, hi = values[finite].min(), values[finite].max()
    if mode in _SIXTEEN_BIT or (mode == "I" and lo >= 0 and hi <= 65535):
        scaled = values * (255 / 65535)
    elif mode == "F" and lo >= 0 and hi <= 1:
        scaled = values * 255
    elif hi > lo:  # any other range: stretch its minimum to 0 and its maximum to 255
        scaled = (values - lo) * (255 / (hi - lo))
    else:
        scaled = np.zeros_like(values)
    return np.rint(np.where(finite, scaled, 0)).clip(0, 255).astype(np.uint8)


def _to_rgb(img: Image.Image, name: str) -> Image.Image:
    mode = img.mode
    if mode == "RGB" and "transparency" not in img.info:
        return img
    if mode in _SIXTEEN_BIT or mode in ("I", "F"):
        return Image.fromarray(_scale_to_uint8(np.asarray(img), mode), "L").convert("RGB")
    if mode == "LAB":
        srgb, lab = ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB")
        return ImageCms.applyTransform(img, ImageCms.buildTransform(lab, srgb, "LAB", "RGB"))
    try:
        if mode in _ALPHA_MODES or "transparency" in img.info:
            # Pillow converts premultiplied La only to LA
            rgba = (img.convert("LA") if mode == "La" else img).convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        return img.convert("RGB")
    except ValueError as exc:
        raise ImageError(name, f"unsupported colour mode {mode!r} ({exc})") from exc


def decode_image(data: bytes, name: str, limits: ImageLimits | None = None) -> Image.Image:
    """Decode image bytes into an RGB picture, safely.

    The header is checked first (format, pixel count); then the first frame is decoded, EXIF
    orientation applied, transparency composited on white, and CMYK, LAB, 1-bit, grayscale,
    16-bit, 32-bit and float pixels converted to 8-bit RGB (16-bit by scaling 0..65535 to 0..255;
    float in [0, 1] times 255; other ranges stretched from their minimum to maximum).

    Args:
        data: the file's bytes.
        name: the file's name, used in error messages.
        limits: size limits; ``ImageLimits.from_env()`` when None.

    Returns:
        PIL.Image.Image: mode ``"RGB"``, the image's full size as displayed.

    Raises:
        ImageError: the bytes are empty, too large, not an image, truncated, corrupt, or claim
            more pixels than ``limits.max_pixels``; ``.reason`` says which.

    Example::

        >>> decode_image(Path("cat.png").read_bytes(), "cat.png").mode
        'RGB'
    """
    limits = _limits(limits)
    img = _open(data, name, limits)
    _check_pixels(img, name, limits)
    return _finish(img, name)[0]


def resize_image(img: Image.Image, size: tuple[int, int], mode: str = "stretch") -> np.ndarray:
    """Resize a picture to ``size`` (height, width) and return its RGB pixels.

    Args:
        img: any PIL image; non-RGB modes are converted as in ``decode_image``.
        size: (height, width) of the result.
        mode: ``"stretch"`` (ignore the aspect ratio), ``"center-crop"`` (scale to cover, cut the
            overflow equally from both sides) or ``"pad"`` (scale to fit, letterbox with black).

    Returns:
        ndarray of shape (height, width, 3), dtype uint8.

    Example::

        >>> resize_image(Image.new("RGB", (640, 480)), (224, 224), "pad").shape
        (224, 224, 3)
    """
    height, width = _check_size(size)
    _check_mode(mode)
    img = _to_rgb(img, "image")
    target = (width, height)
    method = Image.Resampling.BILINEAR
    if img.size == target:
        out = img
    elif mode == "stretch":
        out = img.resize(target, method)
    elif mode == "center-crop":
        out = ImageOps.fit(img, target, method, centering=(0.5, 0.5))
    else:
        out = ImageOps.pad(img, target, method, color=(0, 0, 0), centering=(0.5, 0.5))
    return np.array(out, dtype=np.uint8)


def _probe(data: bytes, name: str, limits: ImageLimits) -> tuple:
    """(width, height, mode, error) of one file, size as displayed; decodes it to be sure."""
    try:
        img = _open(data, name, limits)
    except ImageError as exc:
        return None, None, None, exc.reason
    width, height = img.size  # from the header; nothing that decodes may run before _finish
    mode = img.mode
    try:
        _check_pixels(img, name, limits)
        _, turned = _finish(img, name, draft=_SCAN_DRAFT)
    except ImageError as exc:
        return width, height, mode, exc.reason
    return (height, width, mode, None) if turned else (width, height, mode, None)


# --- the set -------------------------------------------------------------------------------------


class ImageSet:
    """Records of one image source, and their pixels on demand.

    In-memory sources (uploads, ZIPs, samples) keep the bytes of usable images, once per SHA-256;
    folders and CSVs keep paths and read them again when needed, checking that the size limit
    still holds and that the bytes still have the recorded SHA-256.

    Args:
        records: the records, in the order to show them.
        blobs: bytes of usable in-memory images, by SHA-256.
        paths: file paths of usable on-disk records.
        limits: limits used when reading paths again; ``ImageLimits.from_env()`` when None.

    Example::

        >>> images = from_uploads([("cat.png", png_bytes)])
        >>> images.load(images.ok[0], size=(224, 224)).shape
        (224, 224, 3)
    """

    def __init__(
        self,
        records: Iterable[ImageRecord],
        blobs: Mapping[str, bytes] | None = None,
        paths: Mapping[ImageRecord, Path] | None = None,
        limits: ImageLimits | None = None,
    ):
        self.records = list(records)
        self._blobs = dict(blobs or {})
        self._paths = dict(paths or {})
        self._limits = _limits(limits)

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return f"ImageSet({len(self)} records: {len(self.ok)} ok, {len(self.errors)} errors)"

    @property
    def ok(self) -> list[ImageRecord]:
        """Records without error, in order."""
        return [r for r in self.records if r.error is None]

    @property
    def errors(self) -> list[ImageRecord]:
        """Records with an error, in order."""
        return [r for r in self.records if r.error is not None]

    @property
    def labels(self) -> list[str | None]:
        """Labels of the ``ok`` records, aligned with them."""
        return [r.label for r in self.ok]

    def summary(self) -> dict:
        """Counts for a status line.

        Returns:
            dict: ``count``, ``ok``, ``errors`` (ints), ``labels`` (label -> number of ok
            records, sorted by label), ``unlabelled`` (ok records without a label) and ``splits``
            (split -> number of ok records).

        Example::

            >>> load_samples("faces").summary()["labels"]
            {'face': 100, 'non-face': 100}
        """
        ok = self.ok
        labels = Counter(r.label for r in ok if r.label is not None)
        splits = Counter(r.split for r in ok if r.split is not None)
        return {
            "count": len(self.records),
            "ok": len(ok),
            "errors": len(self.records) - len(ok),
            "labels": dict(sorted(labels.items())),
            "unlabelled": sum(r.label is None for r in ok),
            "splits": dict(sorted(splits.items())),
        }

    def read_bytes(self, record: ImageRecord) -> bytes:
        """The file's bytes.

        Args:
            record: a usable record of this set.

        Returns:
            bytes: exactly the bytes whose SHA-256 is ``record.sha256``.

        Raises:
            ImageError: the record has an error, or its file changed or vanished since the set
                was built.

        Example::

            >>> len(images.read_bytes(images.ok[0])) > 0
            True
        """
        if record.error is not None:
            raise ImageError(record.name, record.error)
        blob = self._blobs.get(record.sha256)
        if blob is not None:
            return blob
        path = self._paths.get(record)
        if path is None:
            raise FeatlibError(f"{record.name}: this record does not belong to this image set")
        data = _read_file(path, record.name, self._limits)
        if hashlib.sha256(data).hexdigest() != record.sha256:
            raise ImageError(record.name, "the file changed since the set was built; rebuild it")
        return data

    def file(self, record: ImageRecord) -> Path | str | None:
        """The file a usable record is read from (a path, or the URI a CSV gave); None for
        in-memory sources (uploads, ZIPs, samples), whose bytes ``read_bytes`` gives.

        Example::

            >>> images = from_folder("data/pets")
            >>> images.file(images.ok[0])
            PosixPath('/.../data/pets/cat/1.jpg')
        """
        return self._paths.get(record)

    def _decode(self, record: ImageRecord, draft: tuple[int, int] | None) -> Image.Image:
        img = _open(self.read_bytes(record), record.name, self._limits)
        _check_pixels(img, record.name, self._limits)
        return _finish(img, record.name, draft)[0]

    def load(
        self,
        record: ImageRecord,
        size: tuple[int, int] | None = None,
        resize_mode: str = "stretch",
    ) -> np.ndarray:
        """Pixels of one image.

        With ``size``, JPEGs decode at the smallest scale that still covers it, then the image is
        resized as ``resize_image`` does; the same record, size and mode always give the same
        pixels.

        Args:
            record: a usable record of this set.
            size: (height, width) to resize to; None keeps the image's own size.
            resize_mode: one of ``RESIZE_MODES``.

        Returns:
            ndarray of shape (height, width, 3), dtype uint8, RGB.

        Example::

            >>> images.load(images.ok[0], size=(224, 224), resize_mode="pad").shape
            (224, 224, 3)
        """
        if size is None:
            return np.array(self._decode(record, None), dtype=np.uint8)
        height, width = _check_size(size)
        _check_mode(resize_mode)
        side = max(height, width)
        return resize_image(self._decode(record, (side, side)), (height, width), resize_mode)

    def load_batch(
        self,
        records: Iterable[ImageRecord],
        size: tuple[int, int],
        resize_mode: str = "stretch",
    ) -> np.ndarray:
        """Pixels of several images, resized to one size.

        Args:
            records: usable records of this set (usually a slice of ``ok``).
            size: (height, width) of every image.
            resize_mode: one of ``RESIZE_MODES``.

        Returns:
            ndarray of shape (n_images, height, width, 3), dtype uint8, filled in place.

        Example::

            >>> images.load_batch(images.ok[:8], (224, 224)).shape
            (8, 224, 224, 3)
        """
        records = list(records)
        height, width = _check_size(size)
        out = np.empty((len(records), height, width, 3), dtype=np.uint8)
        for i, record in enumerate(records):
            out[i] = self.load(record, (height, width), resize_mode)
        return out

    def thumbnail(self, record: ImageRecord, max_side: int = 128) -> Image.Image:
        """A small RGB picture of one image, for galleries.

        Args:
            record: a usable record of this set.
            max_side: the longer side of the result, in pixels.

        Returns:
            PIL.Image.Image: mode ``"RGB"``, aspect ratio kept, longer side at most ``max_side``.

        Example::

            >>> max(images.thumbnail(images.ok[0], 64).size) <= 64
            True
        """
        side, _ = _check_size((max_side, max_side))
        img = self._decode(record, (side, side))
        img.thumbnail((side, side), Image.Resampling.BILINEAR)
        return img


class _Builder:
    """Collects records while a source is read, enforcing ``max_files``. With ``read=False``
    files are listed, not read (see ``open_source``)."""

    def __init__(self, limits: ImageLimits, what: str, read: bool = True):
        self.limits = limits
        self.what = what
        self.read = read
        self.records: list[ImageRecord] = []
        self.blobs: dict[str, bytes] = {}
        self.paths: dict[ImageRecord, Path] = {}

    def _append(self, record: ImageRecord) -> ImageRecord:
        if len(self.records) >= self.limits.max_files:
            raise _too_many(self.what, self.limits)
        self.records.append(record)
        return record

    def error(
        self, name: str, reason: str, label: str | None = None, split: str | None = None
    ) -> ImageRecord:
        return self._append(ImageRecord(name, None, label, split, None, None, None, reason))

    def add_bytes(
        self,
        name: str,
        data: bytes,
        label: str | None = None,
        split: str | None = None,
        keep: bool = True,
    ) -> ImageRecord:
        if len(data) > self.limits.max_file_bytes:  # refused unhashed, as if unread
            return self.error(name, _too_big(len(data), self.limits), label, split)
        sha = hashlib.sha256(data).hexdigest()
        width, height, mode, error = _probe(data, name, self.limits)
        record = self._append(ImageRecord(name, sha, label, split, width, height, mode, error))
        if error is None and keep:
            self.blobs.setdefault(sha, bytes(data))
        return record

    def add_path(
        self, name: str, path: Path | str, label: str | None = None, split: str | None = None
    ) -> None:
        if not self.read:
            self.paths[self._append(ImageRecord(name, None, label, split, *[None] * 4))] = path
            return
        try:
            data = _read_file(path, name, self.limits)
        except ImageError as exc:
            self.error(name, exc.reason, label, split)
            return
        record = self.add_bytes(name, data, label, split, keep=False)
        if record.error is None:  # keep the path, not the bytes
            self.paths[record] = path

    def build(self) -> ImageSet:
        return ImageSet(self.records, self.blobs, self.paths, self.limits)


def _too_many(what: str, limits: ImageLimits) -> SourceError:
    return SourceError(
        f"{what} has more than {limits.max_files:,} files (FEATLIB_MAX_FILES); "
        f"choose a smaller part of it or raise the limit"
    )


def _read_file(path: Path | str, name: str, limits: ImageLimits) -> bytes:
    """Read a regular file (or a URI's, see ``featlib._uri``) of at most ``max_file_bytes``;
    never more than that + 1 bytes."""
    if isinstance(path, str) and is_uri(path):
        return read_uri(path, name, limits.max_file_bytes, lambda n: _too_big(n, limits))
    try:
        with open(path, "rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ImageError(name, "not a regular file")
            if info.st_size > limits.max_file_bytes:
                raise ImageError(name, _too_big(info.st_size, limits))
            data = fh.read(limits.max_file_bytes + 1)  # + 1: a file that grew is caught too
    except FileNotFoundError:
        raise ImageError(name, "file not found") from None
    except IsADirectoryError:
        raise ImageError(name, "a folder, not a file") from None
    except OSError as exc:
        raise ImageError(name, f"cannot be read: {exc.strerror or exc}") from None
    if len(data) > limits.max_file_bytes:
        raise ImageError(name, _too_big(os.path.getsize(path), limits))
    return data


def _resolve(path: Path) -> Path | None:
    """The real path behind any symbolic links; None for a link loop."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # Python 3.11 raises RuntimeError on a loop
        return None


def _layout(parts: Sequence[str]) -> tuple[str | None, str | None]:
    """(label, split) from the folders above a file: [split/]label/.../file."""
    folders = list(parts[:-1])
    split = None
    if folders and folders[0].lower() in _SPLITS:
        split = _SPLITS[folders.pop(0).lower()]
    return (folders[0] if folders else None), split


def _is_text(name: str) -> bool:
    return _suffix(name) in _TEXT_SUFFIXES


def _suffix(name: str) -> str:
    return PurePosixPath(name).suffix.lower()


# --- sources -------------------------------------------------------------------------------------


def from_uploads(files: Iterable[tuple[str, bytes]], limits: ImageLimits | None = None) -> ImageSet:
    """An image set from uploaded files; a ``.zip`` upload is expanded like ``from_zip``.

    Entries of an uploaded ZIP are named ``"<zip name>/<entry>"``; a ZIP refused as a whole
    becomes one error record and the other uploads go on.

    Args:
        files: (name, bytes) pairs, e.g. ``(f.name, f.getvalue())`` for Streamlit uploads.
        limits: size limits; ``ImageLimits.from_env()`` when None.

    Returns:
        ImageSet: one record per file in upload order, unlabelled except inside ZIPs.

    Raises:
        SourceError: more than ``limits.max_files`` files.

    Example::

        >>> from_uploads([("a.png", png_bytes), ("b.txt", b"hello")]).summary()["errors"]
        1
    """
    builder = _Builder(_limits(limits), "the upload")
    for name, data in files:
        if _suffix(name) == ".zip":
            try:
                _add_zip(builder, io.BytesIO(data), prefix=f"{name}/")
            except ArchiveError as exc:
                builder.error(name, str(exc))
        elif _is_text(name):
            builder.error(name, _TEXT_REASON)
        else:
            builder.add_bytes(name, data)
    return builder.build()


def _entry_name(info: zipfile.ZipInfo) -> str:
    """The entry's name; UTF-8 names written without the UTF-8 flag are recovered."""
    name = info.filename
    if not info.flag_bits & 0x800:
        with contextlib.suppress(UnicodeError):  # else a legacy code page: keep cp437
            name = name.encode("cp437").decode("utf-8")
    return name.replace("\\", "/")


def _refused(name: str) -> str | None:
    if name.startswith("/"):
        return "absolute path refused"
    if re.match(r"[A-Za-z]:", name):
        return "path with a drive letter refused"
    if ".." in name.split("/"):
        return "path with '..' refused: it points outside the archive"
    return None


def _declared_entries(fp: BinaryIO) -> int:
    """The entry count in a ZIP's end record (zip64 too); 0 when there is none.

    Read before ``zipfile`` parses the whole central directory, which for millions of entries
    would itself exhaust memory.
    """
    end = fp.seek(0, os.SEEK_END)
    fp.seek(max(0, end - 22 - 0xFFFF))  # the 22-byte end record, then at most a 64 KiB comment
    tail = fp.read()
    pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or len(tail) - pos < 22:
        return 0
    entries = struct.unpack_from("<H", tail, pos + 10)[0]
    locator = pos - 20
    if entries == 0xFFFF and locator >= 0 and tail[locator : locator + 4] == b"PK\x06\x07":
        fp.seek(struct.unpack_from("<Q", tail, locator + 8)[0])
        record = fp.read(40)
        if len(record) == 40 and record[:4] == b"PK\x06\x06":
            entries = struct.unpack_from("<Q", record, 32)[0]
    return entries


def _too_many_entries(count: int, limits: ImageLimits) -> None:
    if count > limits.max_zip_entries:
        raise ArchiveError(
            f"the ZIP has {count:,} entries, above the limit of {limits.max_zip_entries:,} "
            f"(FEATLIB_MAX_ZIP_ENTRIES)"
        )


def _check_archive(infos: list[zipfile.ZipInfo], limits: ImageLimits) -> None:
    _too_many_entries(len(infos), limits)
    unpacked = sum(i.file_size for i in infos)
    if unpacked > limits.max_zip_bytes:
        raise ArchiveError(
            f"the ZIP unpacks to {unpacked / _MIB:,.1f} MiB, above the limit of "
            f"{limits.max_zip_bytes / _MIB:,.1f} MiB (FEATLIB_MAX_ZIP_BYTES)"
        )
    packed = max(1, sum(i.compress_size for i in infos))
    if unpacked / packed > limits.max_zip_ratio:
        raise ArchiveError(
            f"the ZIP's compression ratio is {unpacked / packed:,.0f}:1, above the limit of "
            f"{limits.max_zip_ratio:g}:1 (FEATLIB_MAX_ZIP_RATIO); is it a ZIP bomb?"
        )


def _add_zip(builder: _Builder, fp: BinaryIO, prefix: str = "") -> None:
    """Add a ZIP's entries to ``builder``; raises ArchiveError when it is refused as a whole."""
    limits = builder.limits
    _too_many_entries(_declared_entries(fp), limits)
    try:
        archive = zipfile.ZipFile(fp)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ArchiveError(f"not a readable ZIP archive ({exc})") from None
    with archive:
        infos = archive.infolist()
        _check_archive(infos, limits)
        entries = []  # (parts, info, refusal reason)
        for info in infos:
            name = _entry_name(info)
            reason = _refused(name)
            parts = tuple(p for p in name.split("/") if p not in ("", "."))
            if info.is_dir() or not parts:
                continue
            if reason is None and (parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)):
                continue
            if reason is None and stat.S_ISLNK(info.external_attr >> 16):
                reason = "symbolic link refused"
            entries.append((parts if reason is None else (name,), info, reason))
        if len(entries) > limits.max_files:
            raise ArchiveError(
                f"the ZIP holds {len(entries):,} files, above the limit of "
                f"{limits.max_files:,} (FEATLIB_MAX_FILES)"
            )
        # A ZIP of a folder wraps everything in that folder: layout starts below it. (A README
        # beside the folder does not change the layout.)
        laid_out = [
            parts for parts, _, reason in entries if reason is None and not _is_text(parts[-1])
        ]
        tops = {parts[0] for parts in laid_out}
        strip = (
            len(tops) == 1
            and next(iter(tops)).lower() not in _SPLITS
            and all(len(parts) >= 3 for parts in laid_out)
        )
        seen = set()
        for parts, info, reason in sorted(entries, key=lambda e: e[0]):
            name = prefix + "/".join(parts)
            if reason is None and name in seen:
                reason = "a second entry with the same name: only the first one is used"
            seen.add(name)
            if reason is not None:
                builder.error(name, reason)
                continue
            label, split = _layout(parts[1:] if strip and len(parts) >= 3 else parts)
            if _is_text(name):
                builder.error(name, _TEXT_REASON, label, split)
            elif _suffix(name) in _ARCHIVE_SUFFIXES:
                builder.error(name, "nested archives are not expanded", label, split)
            elif info.flag_bits & 0x1:
                builder.error(
                    name, "encrypted entry: password-protected ZIPs are not supported", label, split
                )
            elif info.file_size > limits.max_file_bytes:
                builder.error(name, _too_big(info.file_size, limits), label, split)
            else:
                try:
                    with archive.open(info) as fh:
                        data = fh.read(info.file_size + 1)
                except Exception as exc:  # zipfile raises BadZipFile, zlib.error, EOFError, ...
                    builder.error(name, f"corrupt ZIP entry ({exc})", label, split)
                    continue
                if len(data) != info.file_size:
                    builder.error(
                        name, "corrupt ZIP entry: its size differs from the directory", label, split
                    )
                else:
                    builder.add_bytes(name, data, label, split)


def from_zip(
    path_or_bytes: str | os.PathLike | bytes, limits: ImageLimits | None = None
) -> ImageSet:
    """An image set from a ZIP archive, read into memory and never extracted to disk.

    Labels and splits come from the folders inside, as in ``from_folder``; when every image sits
    at least two folders deep under one common top folder (a zipped folder), that folder is
    skipped first. Entries with absolute paths, drive letters, ``..`` or symbolic links, nested
    archives and encrypted entries get error records. Names written in UTF-8 without the UTF-8
    flag are recovered; other legacy names are read as code page 437.

    Args:
        path_or_bytes: the ZIP's path, or its bytes.
        limits: size limits; ``ImageLimits.from_env()`` when None.

    Returns:
        ImageSet: records sorted by entry name; bytes of usable images kept in memory.

    Raises:
        ArchiveError: not a ZIP; more than ``max_zip_entries`` entries or ``max_files`` files;
            more than ``max_zip_bytes`` unpacked; a compression ratio above ``max_zip_ratio``.
        SourceError: the path does not exist.

    Example::

        >>> from_zip("pets.zip").summary()["labels"]
        {'cat': 12, 'dog': 9}
    """
    builder = _Builder(_limits(limits), "the ZIP")
    if isinstance(path_or_bytes, bytes | bytearray | memoryview):
        _add_zip(builder, io.BytesIO(path_or_bytes))
        return builder.build()
    path = Path(path_or_bytes)
    if not path.is_file():
        raise SourceError(f"{path}: no such ZIP file")
    try:
        with open(path, "rb") as fh:
            _add_zip(builder, fh)
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read ({exc.strerror})") from None
    return builder.build()


def from_folder(
    path: str | os.PathLike,
    limits: ImageLimits | None = None,
    root: str | os.PathLike | None = None,
    *,
    read: bool = True,
) -> ImageSet:
    """An image set from a folder tree, read recursively in sorted order.

    ``[split/]label/.../file``: a top-level ``train``/``test``/``val`` folder sets the split and
    the next level the label; otherwise the top-level folder is the label. Hidden files and
    folders and text-like files are skipped; other files are decoded. A symbolic link that leads
    outside ``root`` gets an error record and is not followed. Paths are kept, not bytes; a
    file is read again when loaded.

    Args:
        path: the folder.
        limits: size limits; ``ImageLimits.from_env()`` when None.
        root: the folder no symbolic link may lead out of; ``path`` itself when None.
        read: False: list the files without reading them (see ``open_source``).

    Returns:
        ImageSet: records named by their path relative to ``path``, with "/" separators.

    Raises:
        SourceError: ``path`` is not a folder, lies outside ``root``, cannot be listed, or holds
            more than ``limits.max_files`` files.

    Example::

        >>> from_folder("data/pets").labels[:2]
        ['cat', 'cat']
    """
    folder = Path(path)
    if not folder.is_dir():
        raise SourceError(f"{folder}: not a folder")
    top = folder.resolve()
    fence = top if root is None else Path(root).resolve()
    if not top.is_relative_to(fence):
        raise SourceError(f"{folder}: lies outside the allowed root {fence}")
    limits = _limits(limits)
    builder = _Builder(limits, f"the folder {folder}", read)
    found: list[tuple[tuple[str, ...], Path | None, str | None]] = []
    visited = {top}
    pending: list[tuple[Path, tuple[str, ...]]] = [(top, ())]
    while pending:
        directory, prefix = pending.pop()
        try:
            with os.scandir(directory) as listing:
                entries = list(listing)
        except OSError as exc:
            if not prefix:
                raise SourceError(f"{folder}: cannot be listed ({exc.strerror})") from None
            found.append((prefix, None, f"folder cannot be listed: {exc.strerror}"))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            parts = (*prefix, entry.name)
            target = _resolve(Path(entry.path))
            if target is None:
                found.append((parts, None, "symbolic link loop: not followed"))
            elif not target.is_relative_to(fence):
                found.append((parts, None, "symbolic link to outside the folder: not followed"))
            elif target.is_dir():
                # a linked folder inside this one is listed under its own name anyway
                inside = entry.is_symlink() and target.is_relative_to(top)
                if not inside and target not in visited:
                    visited.add(target)
                    pending.append((target, parts))
            elif target.is_file() and _suffix(entry.name) not in _TEXT_SUFFIXES:
                found.append((parts, target, None))
            if len(found) > limits.max_files:  # stop walking a huge tree early
                raise _too_many(builder.what, limits)
    for parts, file, reason in sorted(found, key=lambda f: f[0]):
        name = "/".join(parts)
        label, split = _layout(parts)
        if reason is not None:
            builder.error(name, reason, label, split)
        elif _suffix(name) in _ARCHIVE_SUFFIXES:
            builder.error(name, "nested archives are not expanded", label, split)
        else:
            builder.add_path(name, file, label, split)
    return builder.build()


def from_csv(
    path: str | os.PathLike, limits: ImageLimits | None = None, *, read: bool = True
) -> ImageSet:
    """An image set from a CSV of ``path,label[,split]`` rows.

    A first row starting with ``path`` is a header naming the columns (``path``, ``label``,
    ``split`` in any order); otherwise the columns are positional. Paths are relative to the CSV's
    folder, with "/" or "\\" separators; an absolute path, or one that leads outside that folder
    through ``..`` or a symbolic link, gets an error record. A URI (``s3://bucket/cat/1.jpg``,
    ``gs://...``) is read through pyarrow's file systems, where this pyarrow has the scheme;
    otherwise it gets an error record. Empty labels and splits are None.

    Args:
        path: the CSV file (UTF-8, a byte-order mark allowed).
        limits: size limits; ``ImageLimits.from_env()`` when None.
        read: False: list the files without reading them (see ``open_source``).

    Returns:
        ImageSet: one record per row, in row order, named by the path as written.

    Raises:
        SourceError: the CSV is missing, unreadable, not UTF-8, malformed, or has more than
            ``limits.max_files`` rows.

    Example::

        >>> from_csv("data/labels.csv").summary()["splits"]
        {'test': 20, 'train': 80}
    """
    csv_path = Path(path)
    if not csv_path.is_file():
        raise SourceError(f"{csv_path}: no such CSV file")
    base = csv_path.resolve().parent
    builder = _Builder(_limits(limits), f"the CSV {csv_path}", read)
    columns = {"path": 0, "label": 1, "split": 2}
    first = True
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            for row in reader:
                cells = [c.strip() for c in row]
                if not any(cells):
                    continue
                if first and cells[0].lower() == "path":
                    columns = {c.lower(): i for i, c in enumerate(cells) if c}
                else:
                    _add_csv_row(builder, base, cells, columns, reader.line_num)
                first = False
    except UnicodeDecodeError:
        raise SourceError(f"{csv_path}: not UTF-8 text") from None
    except csv.Error as exc:
        raise SourceError(f"{csv_path}: not a valid CSV ({exc})") from None
    except OSError as exc:
        raise SourceError(f"{csv_path}: cannot be read ({exc.strerror})") from None
    return builder.build()


def _add_csv_row(
    builder: _Builder, base: Path, cells: list[str], columns: dict[str, int], line: int
) -> None:
    def cell(column: str) -> str | None:
        i = columns.get(column)
        if i is None or i >= len(cells):
            return None
        return cells[i] or None

    raw, label, split = cell("path"), cell("label"), cell("split")
    if split is not None:
        split = _SPLITS.get(split.lower(), split)
    if raw is None or "\x00" in raw:
        builder.error(f"row {line}", "no usable path in this row", label, split)
        return
    if is_uri(raw):  # read through pyarrow's file systems (S3, GCS, HDFS...)
        builder.add_path(raw, raw, label, split)
        return
    rel = raw.replace("\\", "/")
    if rel.startswith("/") or re.match(r"[A-Za-z]:", rel):
        builder.error(
            raw, "absolute path refused: write paths relative to the CSV's folder", label, split
        )
        return
    target = _resolve(base / rel)
    if target is None:
        builder.error(raw, "symbolic link loop: not followed", label, split)
        return
    if not target.is_relative_to(base):
        how = "'..'" if ".." in rel.split("/") else "a symbolic link"
        builder.error(
            raw, f"path leads outside the CSV's folder through {how}: refused", label, split
        )
        return
    builder.add_path(raw, target, label, split)


def read_files(
    files: Iterable[tuple[str, Path | str, str | None, str | None]],
    limits: ImageLimits | None = None,
) -> ImageSet:
    """The set of these files, each read, hashed and checked as ``from_folder`` does.

    Args:
        files: ``(name, path or URI, label, split)`` of each file, e.g. what
            ``open_source(..., read=False)`` listed.
        limits: size limits; ``ImageLimits.from_env()`` when None.

    Returns:
        ImageSet: one record per file, in order; a file that cannot be used has its error.
    """
    builder = _Builder(_limits(limits), "the listed files")
    for name, path, label, split in files:
        builder.add_path(name, path, label, split)
    return builder.build()


# --- samples -------------------------------------------------------------------------------------

# scikit-image pictures that ship with the package (no download), and their labels.
_PHOTOS = (
    ("astronaut", "photo"),
    ("camera", "photo"),
    ("chelsea", "photo"),
    ("coffee", "photo"),
    ("coins", "photo"),
    ("hubble_deep_field", "photo"),
    ("rocket", "photo"),
    ("brick", "texture"),
    ("grass", "texture"),
    ("gravel", "texture"),
)
_SAMPLES = {"photos": len(_PHOTOS), "faces": 200, "digits": 300}  # name -> default count


def list_samples() -> list[str]:
    """Names of the bundled sample sets, for ``load_samples``.

    Returns:
        list[str]: ``["photos", "faces", "digits"]``.

    Example::

        >>> list_samples()
        ['photos', 'faces', 'digits']
    """
    return list(_SAMPLES)


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def _pick(total: int, n: int) -> np.ndarray:
    """n indices spread evenly over range(total), so every class is represented."""
    return np.unique(np.linspace(0, total - 1, min(n, total)).round().astype(int))


def load_samples(name: str = "photos", max_images: int | None = None) -> ImageSet:
    """A bundled sample set that needs no download, encoded as PNG bytes in memory.

    - ``"photos"``: 10 scikit-image pictures, labelled ``"photo"`` (7) or ``"texture"`` (3);
    - ``"faces"``: scikit-image's ``lfw_subset``, 25x25 grayscale, ``"face"`` / ``"non-face"``
      (100 each);
    - ``"digits"``: scikit-learn's ``load_digits``, 8x8 upscaled to 32x32, dark ink on white,
      labelled ``"0"`` .. ``"9"``; 300 of the 1,797 by default.

    Args:
        name: one of ``list_samples()``.
        max_images: how many images to take, spread evenly over the set; None for the default
            (all photos and faces, 300 digits).

    Returns:
        ImageSet: records named like ``"chelsea.png"``, ``"face_007.png"``, ``"digit_3_0042.png"``.

    Raises:
        SourceError: an unknown sample name.

    Example::

        >>> load_samples("digits", max_images=50).summary()["ok"]
        50
    """
    if name not in _SAMPLES:
        raise SourceError(f"unknown sample set {name!r}; list_samples() gives {list_samples()}")
    n = _SAMPLES[name] if max_images is None else max_images
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise FeatlibError(f"max_images must be a positive integer; received {max_images!r}")
    builder = _Builder(ImageLimits(), f"the sample set {name!r}")
    if name == "photos":
        import skimage.data

        for i in _pick(len(_PHOTOS), n):
            picture, label = _PHOTOS[i]
            builder.add_bytes(f"{picture}.png", _png(getattr(skimage.data, picture)()), label)
    elif name == "faces":
        import skimage.data

        faces = skimage.data.lfw_subset()  # 100 faces, then 100 non-faces
        if faces.dtype.kind == "f":
            faces = np.rint(faces * 255)
        faces = faces.astype(np.uint8)
        for i in _pick(len(faces), n):
            label = "face" if i < len(faces) // 2 else "non-face"
            builder.add_bytes(f"{label}_{i:03d}.png", _png(faces[i]), label)
    else:
        from sklearn.datasets import load_digits

        digits = load_digits()
        for i in _pick(len(digits.target), n):
            ink = np.rint(digits.images[i] * (255 / 16)).astype(np.uint8)
            picture = Image.fromarray(255 - ink).resize((32, 32), Image.Resampling.NEAREST)
            label = str(digits.target[i])
            builder.add_bytes(f"digit_{label}_{i:04d}.png", _png(np.asarray(picture)), label)
    return builder.build()


def open_source(
    source: str | os.PathLike, limits: ImageLimits | None = None, *, read: bool = True
) -> ImageSet:
    """An image set from a string the user typed: a folder, a ``.zip``, a ``.csv`` or a sample.

    Args:
        source: a folder path, a ``.zip`` or ``.csv`` file path, or ``"sample:NAME"`` with NAME
            from ``list_samples()``.
        limits: size limits; ``ImageLimits.from_env()`` when None.
        read: False: a folder's or CSV's files are listed, not read: their records have no
            SHA-256, size or mode yet and no error from their content (``read_files`` reads
            them, as the Ray engine's workers do). ZIPs and samples are read either way.

    Returns:
        ImageSet: from ``from_folder``, ``from_zip``, ``from_csv`` or ``load_samples``.

    Raises:
        SourceError: the path does not exist or is none of these.

    Example::

        >>> len(open_source("sample:photos"))
        10
    """
    text = os.fspath(source)
    if isinstance(source, str) and text.startswith("sample:"):
        return load_samples(text.removeprefix("sample:"))
    path = Path(text)
    if path.is_dir():
        return from_folder(path, limits, read=read)
    suffix = path.suffix.lower()
    if path.is_file() and suffix == ".zip":
        return from_zip(path, limits)
    if path.is_file() and suffix == ".csv":
        return from_csv(path, limits, read=read)
    if not path.exists():
        raise SourceError(f"{text}: no such file or folder")
    raise SourceError(
        f"{text}: not a folder, .zip or .csv file; use one of those or "
        f"'sample:NAME' with NAME in {list_samples()}"
    )
