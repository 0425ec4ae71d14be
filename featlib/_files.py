"""Files written whole or not at all: a temporary file beside the destination, renamed over it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["replaced_atomically"]


@contextlib.contextmanager
def replaced_atomically(dest: Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; rename it over ``dest`` when the body succeeds.

    Whatever happens in the body, no temporary file is left behind, and ``dest`` is either
    untouched or replaced whole (a rename within one folder is atomic).

    Args:
        dest: the file to write; its folder must exist.
        suffix: the temporary file's suffix; default ``dest``'s, so that writers that pick a
            format by suffix (numpy, pyarrow, Keras' ``.h5`` loader) see the right one.
    """
    fd, name = tempfile.mkstemp(
        dir=dest.parent, prefix=f".{dest.name}.", suffix=dest.suffix if suffix is None else suffix
    )
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
