"""Files named by a URI (``s3://bucket/cat/1.jpg``, ``gs://...``, ``hdfs://...``), read through
pyarrow's file systems, so that a CSV can list images that every worker of a cluster reads.

Which schemes work depends on how pyarrow was built (the PyPI wheels have S3 and GCS). A local
``file://`` URI is not one of them: a CSV's local paths stay relative to its folder.
"""

from __future__ import annotations

import re

from featlib.errors import ImageError

__all__ = ["is_uri", "read_uri"]

_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")


def is_uri(text: str) -> bool:
    """Whether ``text`` names a file by a URI with a scheme of two or more letters (a Windows
    drive ``C:/`` is not one)."""
    return _URI.match(text) is not None


def scheme(uri: str) -> str:
    """The URI's scheme, lower case (``"s3"``)."""
    match = _URI.match(uri)
    return match.group(1).lower() if match else ""


def filesystem(uri: str):
    """``(pyarrow FileSystem, path inside it)`` for ``uri``; tests replace this function."""
    import pyarrow.fs

    return pyarrow.fs.FileSystem.from_uri(uri)


def read_uri(uri: str, name: str, max_bytes: int, too_big) -> bytes:
    """The bytes of the file at ``uri``, never more than ``max_bytes`` + 1 of them.

    Args:
        uri: the file's URI.
        name: the file as the user wrote it, for errors.
        max_bytes: the size limit.
        too_big: the reason for a file over the limit, from its size in bytes.

    Raises:
        ImageError: naming the file: a local ``file://`` URI, a scheme this pyarrow cannot read,
            a missing or unreadable file, one over the size limit.
    """
    if scheme(uri) == "file":
        raise ImageError(name, "file:// URI refused: write local paths relative to the CSV")
    try:
        fs, path = filesystem(uri)
        with fs.open_input_file(path) as fh:
            size = fh.size()
            if size > max_bytes:
                raise ImageError(name, too_big(size))
            data = fh.read(max_bytes + 1)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(name, "file not found") from None
    except Exception as exc:  # pyarrow raises its own kinds per file system and scheme
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageError(name, f"cannot be read through pyarrow ({reason})") from None
    if len(data) > max_bytes:
        raise ImageError(name, too_big(len(data)))
    return data
