"""One image: the size limits, the record of a file, decoding and resizing.

Only common raster formats are opened, and the pixel count is checked from the header before
decoding (decompression bombs); a file that cannot be used becomes an ``ImageError`` whose
message names the file and the reason.

The ``FEATLIB_MAX_*`` environment variables (``ImageLimits.from_env``) are read once per source,
when a set is built (``featlib.images.sources``, ``ImageSet``) or a new image is embedded
(``featlib.extraction.embed_image``); the per-image functions here use the limits they are given.

Example::

    >>> import io
    >>> from PIL import Image
    >>> buf = io.BytesIO()
    >>> Image.new("RGB", (40, 30), "red").save(buf, format="PNG")
    >>> img = decode_image(buf.getvalue(), "red.png")
    >>> resize_image(img, (16, 16), mode="pad").shape
    (16, 16, 3)
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np
from PIL import ExifTags, Image, ImageCms, ImageOps, UnidentifiedImageError

from featlib.errors import FeatlibError, ImageError

__all__ = [
    "RESIZE_MODES",
    "ImageLimits",
    "ImageRecord",
    "decode_image",
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

SPLITS = {
    "train": "train",
    "test": "test",
    "val": "val",
    "valid": "val",
    "validation": "val",
}
TEXT_SUFFIXES = frozenset(
    {".txt", ".csv", ".tsv", ".json", ".jsonl", ".md", ".rst", ".yaml", ".yml", ".xml", ".html"}
    | {".htm", ".py", ".ipynb", ".log", ".ini", ".cfg", ".toml", ".pdf"}
)
TEXT_REASON = "a text file, not an image: skipped"
ARCHIVE_SUFFIXES = frozenset({".zip", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".7z", ".rar", ".zst"})
_SIXTEEN_BIT = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_SCAN_DRAFT = (64, 64)  # JPEGs are checked at reduced scale: every byte is still decoded
MIB = 1 << 20
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
    max_file_bytes: int = 50 * MIB
    max_files: int = 20_000
    max_zip_bytes: int = 2 * 1024 * MIB
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


def resolve_limits(limits: ImageLimits | None) -> ImageLimits:
    """The limits a source is built with: ``limits``, or the environment's when None. Called
    once per source, never per image."""
    return ImageLimits.from_env() if limits is None else limits


def check_size(size) -> tuple[int, int]:
    ok = (
        isinstance(size, Sequence)
        and len(size) == 2
        and all(isinstance(v, int | np.integer) and not isinstance(v, bool) and v > 0 for v in size)
    )
    if not ok:
        raise FeatlibError(f"size must be (height, width) in positive integers; received {size!r}")
    return int(size[0]), int(size[1])


def check_mode(resize_mode: str) -> None:
    if resize_mode not in RESIZE_MODES:
        raise FeatlibError(f"resize_mode must be one of {RESIZE_MODES}; received {resize_mode!r}")


# --- decoding ------------------------------------------------------------------------------------


def open_image(data: bytes, name: str, limits: ImageLimits) -> Image.Image:
    """Read the header only: size and format checks, nothing decoded yet."""
    if not data:
        raise ImageError(name, "the file is empty")
    if len(data) > limits.max_file_bytes:
        raise ImageError(name, too_big(len(data), limits))
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


def check_pixels(img: Image.Image, name: str, limits: ImageLimits) -> None:
    width, height = img.size
    if width * height > limits.max_pixels:
        raise ImageError(
            name,
            f"too many pixels: {width}x{height} = {width * height:,}, above the limit of "
            f"{limits.max_pixels:,} (FEATLIB_MAX_PIXELS)",
        )


def too_big(n_bytes: int, limits: ImageLimits) -> str:
    return (
        f"the file is too large: {n_bytes / MIB:.1f} MiB, above the limit of "
        f"{limits.max_file_bytes / MIB:.1f} MiB (FEATLIB_MAX_FILE_BYTES)"
    )


def _decode_reason(exc: BaseException) -> str:
    message = str(exc)
    if isinstance(exc, EOFError) or "truncated" in message.lower():
        return "the file is truncated: the image data ends early"
    if isinstance(exc, MemoryError):
        return "not enough memory to decode the image"
    return f"the image data is corrupt ({message or type(exc).__name__})"


def finish_image(
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
        limits: size limits; the defaults, ``ImageLimits()``, when None (the environment is
            read by the sources, once per set: pass ``ImageLimits.from_env()`` for its values).

    Returns:
        PIL.Image.Image: mode ``"RGB"``, the image's full size as displayed.

    Raises:
        ImageError: the bytes are empty, too large, not an image, truncated, corrupt, or claim
            more pixels than ``limits.max_pixels``; ``.reason`` says which.

    Example::

        >>> decode_image(png_bytes, "cat.png").mode
        'RGB'
    """
    limits = ImageLimits() if limits is None else limits
    img = open_image(data, name, limits)
    check_pixels(img, name, limits)
    return finish_image(img, name)[0]


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
    height, width = check_size(size)
    check_mode(mode)
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


def probe_image(data: bytes, name: str, limits: ImageLimits) -> tuple:
    """(width, height, mode, error) of one file, size as displayed; decodes it to be sure."""
    try:
        img = open_image(data, name, limits)
    except ImageError as exc:
        return None, None, None, exc.reason
    width, height = img.size  # from the header; nothing that decodes may run before finish_image
    mode = img.mode
    try:
        check_pixels(img, name, limits)
        _, turned = finish_image(img, name, draft=_SCAN_DRAFT)
    except ImageError as exc:
        return width, height, mode, exc.reason
    return (height, width, mode, None) if turned else (width, height, mode, None)
