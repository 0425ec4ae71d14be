"""Image sets from what a person hands over: uploads, a folder, a CSV of paths, or a string
that names one of these (``open_source``).

Layout: a top-level ``train/``, ``test/`` or ``val/`` folder sets ``split``; the next folder level
is the ``label``. Folders and CSVs follow no symbolic link out of their root, nor any link loop.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import re
from collections.abc import Iterable
from pathlib import Path

from featlib._uri import is_uri
from featlib.errors import ArchiveError, SourceError
from featlib.images.decode import (
    ARCHIVE_SUFFIXES,
    SPLITS,
    TEXT_REASON,
    TEXT_SUFFIXES,
    ImageLimits,
    ImageRecord,
    resolve_limits,
)
from featlib.images.imageset import (
    Builder,
    ImageSet,
    is_text,
    layout,
    resolve_path,
    suffix_of,
    too_many,
)
from featlib.images.samples import list_samples, load_samples
from featlib.images.zip import add_zip, from_zip

__all__ = [
    "PICTURES_MISSING",
    "from_csv",
    "from_folder",
    "from_uploads",
    "open_source",
    "pictures_for",
    "read_files",
]

PICTURES_MISSING = "no picture: not found under the images folder or ZIP"


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
    builder = Builder(resolve_limits(limits), "the upload")
    for name, data in files:
        if suffix_of(name) == ".zip":
            try:
                add_zip(builder, io.BytesIO(data), prefix=f"{name}/")
            except ArchiveError as exc:
                builder.error(name, str(exc))
        elif is_text(name):
            builder.error(name, TEXT_REASON)
        else:
            builder.add_bytes(name, data)
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

        >>> for name in ["cat/1.png", "cat/2.png", "dog/1.png"]:
        ...     Path("pets", name).parent.mkdir(parents=True, exist_ok=True)
        ...     _ = Path("pets", name).write_bytes(png_bytes)
        >>> from_folder("pets").labels[:2]
        ['cat', 'cat']
    """
    folder = Path(path)
    if not folder.is_dir():
        raise SourceError(f"{folder}: not a folder")
    top = folder.resolve()
    fence = top if root is None else Path(root).resolve()
    if not top.is_relative_to(fence):
        raise SourceError(f"{folder}: lies outside the allowed root {fence}")
    limits = resolve_limits(limits)
    builder = Builder(limits, f"the folder {folder}", read)
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
            target = resolve_path(Path(entry.path))
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
            elif target.is_file() and suffix_of(entry.name) not in TEXT_SUFFIXES:
                found.append((parts, target, None))
            if len(found) > limits.max_files:  # stop walking a huge tree early
                raise too_many(builder.what, limits)
    for parts, file, reason in sorted(found, key=lambda f: f[0]):
        name = "/".join(parts)
        label, split = layout(parts)
        if reason is not None:
            builder.error(name, reason, label, split)
        elif suffix_of(name) in ARCHIVE_SUFFIXES:
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

        >>> for i in range(5):
        ...     _ = Path(f"{i}.png").write_bytes(png_bytes)
        >>> rows = [f"{i}.png,cat,{'test' if i == 0 else 'train'}" for i in range(5)]
        >>> _ = Path("labels.csv").write_text("\\n".join(["path,label,split", *rows]))
        >>> from_csv("labels.csv").summary()["splits"]
        {'test': 1, 'train': 4}
    """
    csv_path = Path(path)
    if not csv_path.is_file():
        raise SourceError(f"{csv_path}: no such CSV file")
    base = csv_path.resolve().parent
    builder = Builder(resolve_limits(limits), f"the CSV {csv_path}", read)
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
    builder: Builder, base: Path, cells: list[str], columns: dict[str, int], line: int
) -> None:
    def cell(column: str) -> str | None:
        i = columns.get(column)
        if i is None or i >= len(cells):
            return None
        return cells[i] or None

    raw, label, split = cell("path"), cell("label"), cell("split")
    if split is not None:
        split = SPLITS.get(split.lower(), split)
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
    target = resolve_path(base / rel)
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
    builder = Builder(resolve_limits(limits), "the listed files")
    for name, path, label, split in files:
        builder.add_path(name, path, label, split)
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


def pictures_for(
    records: Iterable[ImageRecord], root: str | os.PathLike, limits: ImageLimits | None = None
) -> ImageSet:
    """The records of a feature file (``featlib extract``'s ``path`` and ``sha256``) with their
    pictures from where they were extracted, without reading them now.

    A folder is matched by path: ``root/<path>``, each file read (and its SHA-256 checked) only
    when shown. A ZIP is read as ``from_zip`` reads it and matched by content (SHA-256), so a
    zipped copy of the folder serves whatever its top folder is called.

    Args:
        records: the feature file's records; their ``name`` is a path relative to the folder
            that was extracted.
        root: that folder, or a ZIP of it.
        limits: size limits; ``ImageLimits.from_env()`` when None.

    Returns:
        ImageSet: the records in order; one without a picture under ``root`` (or whose path
        leads out of it) gets the error ``PICTURES_MISSING`` and keeps its place.

    Raises:
        SourceError: ``root`` is neither a folder nor a ``.zip`` file.
        ArchiveError: the ZIP cannot be read (see ``from_zip``).

    Example::

        >>> for name in ["cat/1.png", "dog/1.png"]:
        ...     Path("pets", name).parent.mkdir(parents=True, exist_ok=True)
        ...     _ = Path("pets", name).write_bytes(png_bytes)
        >>> records = from_folder("pets").records
        >>> gone = ImageRecord("cat/9.png", "00" * 32, "cat", None, None, None, None, None)
        >>> [r.error for r in pictures_for([*records, gone], "pets").records]
        [None, None, 'no picture: not found under the images folder or ZIP']
    """
    where = Path(root)
    limits = resolve_limits(limits)
    records = list(records)
    if where.is_file() and where.suffix.lower() == ".zip":
        archive = from_zip(where, limits)
        blobs = {r.sha256: archive.read_bytes(r) for r in archive.ok}
        found = [r.sha256 in blobs for r in records]
        paths = {}
    elif where.is_dir():
        top = str(where.resolve())
        present = _files_below(top)  # one walk: faster than a stat per record at 100,000
        found = [r.name in present for r in records]
        blobs = {}
        paths = {r: os.path.join(top, r.name) for r, ok in zip(records, found, strict=True) if ok}
    else:
        raise SourceError(f"{root}: the pictures must be a folder or a .zip file")
    records = [
        r if ok else dataclasses.replace(r, error=PICTURES_MISSING)
        for r, ok in zip(records, found, strict=True)
    ]
    return ImageSet(records, blobs, paths, limits)


def _files_below(top: str) -> set[str]:
    """Paths, relative to ``top`` with "/" separators, of the files below it (links to files
    included, as ``open`` follows them; link loops and unreadable folders skipped)."""
    present = set()
    for folder, _, files in os.walk(top):
        relative = os.path.relpath(folder, top).replace(os.sep, "/")
        prefix = "" if relative == "." else relative + "/"
        present.update(prefix + name for name in files)
    return present
