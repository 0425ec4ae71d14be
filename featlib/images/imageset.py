"""``ImageSet``: one ``ImageRecord`` per file, identified by the SHA-256 of its bytes, and the
builder the sources fill it with."""

from __future__ import annotations

import hashlib
import os
import stat
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from featlib._uri import is_uri, read_uri
from featlib.errors import FeatlibError, ImageError, SourceError
from featlib.images.decode import (
    SPLITS,
    TEXT_SUFFIXES,
    ImageLimits,
    ImageRecord,
    check_mode,
    check_pixels,
    check_size,
    finish_image,
    open_image,
    probe_image,
    resize_image,
    resolve_limits,
    too_big,
)

__all__ = [
    "ImageSet",
]


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
        self._limits = resolve_limits(limits)

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

            >>> Path("pets/cat").mkdir(parents=True)
            >>> _ = Path("pets/cat/1.png").write_bytes(png_bytes)
            >>> images = from_folder("pets")
            >>> images.file(images.ok[0])
            PosixPath('/.../pets/cat/1.png')
        """
        return self._paths.get(record)

    def _decode(self, record: ImageRecord, draft: tuple[int, int] | None) -> Image.Image:
        img = open_image(self.read_bytes(record), record.name, self._limits)
        check_pixels(img, record.name, self._limits)
        return finish_image(img, record.name, draft)[0]

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
        height, width = check_size(size)
        check_mode(resize_mode)
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
        height, width = check_size(size)
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
        side, _ = check_size((max_side, max_side))
        img = self._decode(record, (side, side))
        img.thumbnail((side, side), Image.Resampling.BILINEAR)
        return img


class Builder:
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
            raise too_many(self.what, self.limits)
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
            return self.error(name, too_big(len(data), self.limits), label, split)
        sha = hashlib.sha256(data).hexdigest()
        width, height, mode, error = probe_image(data, name, self.limits)
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


def too_many(what: str, limits: ImageLimits) -> SourceError:
    return SourceError(
        f"{what} has more than {limits.max_files:,} files (FEATLIB_MAX_FILES); "
        f"choose a smaller part of it or raise the limit"
    )


def _read_file(path: Path | str, name: str, limits: ImageLimits) -> bytes:
    """Read a regular file (or a URI's, see ``featlib._uri``) of at most ``max_file_bytes``;
    never more than that + 1 bytes."""
    if isinstance(path, str) and is_uri(path):
        return read_uri(path, name, limits.max_file_bytes, lambda n: too_big(n, limits))
    try:
        with open(path, "rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ImageError(name, "not a regular file")
            if info.st_size > limits.max_file_bytes:
                raise ImageError(name, too_big(info.st_size, limits))
            data = fh.read(limits.max_file_bytes + 1)  # + 1: a file that grew is caught too
    except FileNotFoundError:
        raise ImageError(name, "file not found") from None
    except IsADirectoryError:
        raise ImageError(name, "a folder, not a file") from None
    except OSError as exc:
        raise ImageError(name, f"cannot be read: {exc.strerror or exc}") from None
    if len(data) > limits.max_file_bytes:
        raise ImageError(name, too_big(os.path.getsize(path), limits))
    return data


def resolve_path(path: Path) -> Path | None:
    """The real path behind any symbolic links; None for a link loop."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # Python 3.11 raises RuntimeError on a loop
        return None


def layout(parts: Sequence[str]) -> tuple[str | None, str | None]:
    """(label, split) from the folders above a file: [split/]label/.../file."""
    folders = list(parts[:-1])
    split = None
    if folders and folders[0].lower() in SPLITS:
        split = SPLITS[folders.pop(0).lower()]
    return (folders[0] if folders else None), split


def is_text(name: str) -> bool:
    return suffix_of(name) in TEXT_SUFFIXES


def suffix_of(name: str) -> str:
    return PurePosixPath(name).suffix.lower()
