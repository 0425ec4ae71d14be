"""Image sets from ZIP archives, read into memory and never extracted.

Entries with absolute paths, drive letters, ``..`` or symbolic links are refused one by one; too
many entries, too many bytes unpacked or too high a compression ratio refuse the whole archive,
decided from the central directory and enforced again while reading.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat
import struct
import zipfile
from pathlib import Path
from typing import BinaryIO

from featlib.errors import ArchiveError, SourceError
from featlib.images.decode import (
    ARCHIVE_SUFFIXES,
    MIB,
    SPLITS,
    TEXT_REASON,
    ImageLimits,
    resolve_limits,
    too_big,
)
from featlib.images.imageset import Builder, ImageSet, is_text, layout, suffix_of

__all__ = [
    "from_zip",
]


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
            f"the ZIP unpacks to {unpacked / MIB:,.1f} MiB, above the limit of "
            f"{limits.max_zip_bytes / MIB:,.1f} MiB (FEATLIB_MAX_ZIP_BYTES)"
        )
    packed = max(1, sum(i.compress_size for i in infos))
    if unpacked / packed > limits.max_zip_ratio:
        raise ArchiveError(
            f"the ZIP's compression ratio is {unpacked / packed:,.0f}:1, above the limit of "
            f"{limits.max_zip_ratio:g}:1 (FEATLIB_MAX_ZIP_RATIO); is it a ZIP bomb?"
        )


def add_zip(builder: Builder, fp: BinaryIO, prefix: str = "") -> None:
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
            parts for parts, _, reason in entries if reason is None and not is_text(parts[-1])
        ]
        tops = {parts[0] for parts in laid_out}
        strip = (
            len(tops) == 1
            and next(iter(tops)).lower() not in SPLITS
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
            label, split = layout(parts[1:] if strip and len(parts) >= 3 else parts)
            if is_text(name):
                builder.error(name, TEXT_REASON, label, split)
            elif suffix_of(name) in ARCHIVE_SUFFIXES:
                builder.error(name, "nested archives are not expanded", label, split)
            elif info.flag_bits & 0x1:
                builder.error(
                    name, "encrypted entry: password-protected ZIPs are not supported", label, split
                )
            elif info.file_size > limits.max_file_bytes:
                builder.error(name, too_big(info.file_size, limits), label, split)
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

        >>> import zipfile
        >>> with zipfile.ZipFile("pets.zip", "w") as archive:
        ...     for name in ["cat/1.png", "cat/2.png", "dog/1.png"]:
        ...         archive.writestr(name, png_bytes)
        >>> from_zip("pets.zip").summary()["labels"]
        {'cat': 2, 'dog': 1}
    """
    builder = Builder(resolve_limits(limits), "the ZIP")
    if isinstance(path_or_bytes, bytes | bytearray | memoryview):
        add_zip(builder, io.BytesIO(path_or_bytes))
        return builder.build()
    path = Path(path_or_bytes)
    if not path.is_file():
        raise SourceError(f"{path}: no such ZIP file")
    try:
        with open(path, "rb") as fh:
            add_zip(builder, fh)
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read ({exc.strerror})") from None
    return builder.build()
