"""The on-disk feature store: content-addressed, checked on every read, bounded in size.

Built on diskcache (SQLite index, one file per large value): its transactions make each write
appear whole or not at all, several processes may read and write at once, and it evicts the
least recently used entries above a size cap. On top of it featlib adds:

- keys from content: image SHA-256 + backbone + weights id + layer + input size + resize mode +
  pooling + precision, so a changed parameter can never return a stale vector;
- values that are never unpickled: a magic tag, a SHA-256 of the payload, then the payload: a
  JSON header (numeric dtype and shape) and the raw array bytes; a truncated or garbled entry
  fails its check, is dropped, and is computed again by the caller;
- ``batch()``: many small reads or writes in one SQLite transaction (faster: see
  ``benchmarks/RESULTS.md``);
- graceful failure: an unwritable folder or a full disk turns the store off with one warning, and
  extraction goes on without it.

Example::

    >>> store = FeatureStore("featlib-cache")
    >>> k = store.key("ab12...", "vgg16|random:0|top=0", "block5_pool", (224, 224), "stretch",
    ...               "avg", "float32")
    >>> store.put(k, np.ones(512, np.float32)); store.get(k).shape
    (512,)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import sys
from pathlib import Path

import diskcache
import numpy as np

from featlib._files import replaced_atomically
from featlib.errors import StoreError

__all__ = ["DEFAULT_SIZE_LIMIT", "FeatureStore", "default_cache_dir", "read_json", "update_json"]

log = logging.getLogger(__name__)

DEFAULT_SIZE_LIMIT = 4 * 1024**3
_MAGIC = b"FLS2"  # FLS1 entries (.npy payloads) fail the check and are computed again


def default_cache_dir() -> Path:
    """``$FEATLIB_CACHE_DIR``, else ``$XDG_CACHE_HOME/featlib``, else ``~/.cache/featlib``."""
    if os.environ.get("FEATLIB_CACHE_DIR"):
        return Path(os.environ["FEATLIB_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "featlib"


def read_json(name: str) -> dict:
    """The JSON object featlib keeps as ``name`` in ``default_cache_dir()`` (what "auto" chose,
    the default layers), or ``{}`` when it is absent or not a JSON object."""
    try:
        data = json.loads((default_cache_dir() / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def update_json(name: str, key: str, value) -> None:
    """Set ``key`` in that object, written whole or not at all; where the folder cannot be
    written, nothing is kept (the caller still has its value)."""
    data = read_json(name)
    data[key] = value
    path = default_cache_dir() / name
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replaced_atomically(path) as tmp:
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    except OSError:
        log.debug("could not write %s", path, exc_info=True)


class _NoPickleDisk(diskcache.Disk):
    """diskcache's storage with unpickling refused: featlib stores bytes only."""

    def fetch(self, mode, filename, value, read):
        if mode == diskcache.core.MODE_PICKLE:
            raise StoreError("the feature store holds a pickled entry, which featlib never loads")
        return super().fetch(mode, filename, value, read)


_DTYPE_KINDS = "biuf"  # plain numbers only: no objects, no structured dtypes


def _encode(array: np.ndarray) -> bytes:
    array = np.ascontiguousarray(array)
    if array.dtype.kind not in _DTYPE_KINDS:
        raise StoreError(f"the feature store keeps numeric arrays. Received: dtype={array.dtype}")
    header = json.dumps([array.dtype.str, list(array.shape)]).encode()
    payload = len(header).to_bytes(2, "little") + header + array.tobytes()
    return _MAGIC + hashlib.sha256(payload).digest() + payload


def _decode(blob) -> np.ndarray | None:
    """The array of a stored value, or None for anything that is not one, whole and intact."""
    if not isinstance(blob, bytes) or len(blob) < 38 or blob[:4] != _MAGIC:
        return None
    payload = blob[36:]
    if hashlib.sha256(payload).digest() != blob[4:36]:
        return None
    size = int.from_bytes(payload[:2], "little")
    try:
        dtype_str, shape = json.loads(payload[2 : 2 + size])
        dtype = np.dtype(dtype_str)
        if dtype.kind not in _DTYPE_KINDS:
            return None
        return np.frombuffer(payload, dtype, offset=2 + size).reshape(shape).copy()
    except (ValueError, TypeError):
        return None


class FeatureStore:
    """Feature vectors on disk, keyed by content and parameters.

    Args:
        directory: the folder; default ``default_cache_dir()``.
        size_limit: bytes kept at most; least recently used entries go first.

    Attributes:
        directory: the folder in use.
        disabled: ``None`` while the store works; else why it was turned off.
    """

    def __init__(
        self, directory: str | os.PathLike | None = None, size_limit: int = DEFAULT_SIZE_LIMIT
    ):
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.size_limit = int(size_limit)
        self.disabled: str | None = None
        self._cache = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._cache = diskcache.Cache(
                str(self.directory),
                size_limit=self.size_limit,
                eviction_policy="least-recently-used",
                disk=_NoPickleDisk,
                timeout=30,
            )
        except Exception as exc:
            self._disable(f"cannot open the feature store at {self.directory}: {exc}")

    def _disable(self, reason: str) -> None:
        if self.disabled is None:
            self.disabled = reason
            log.warning("%s. Going on without it: features will be computed every time.", reason)

    @staticmethod
    def key(
        sha256: str,
        backbone_key: str,
        layer: str,
        input_size: tuple[int, int],
        resize_mode: str,
        pooling: str | None,
        precision: str,
    ) -> str:
        """The key of one image's features for one layer and every parameter that shapes them."""
        return json.dumps(
            [sha256, backbone_key, layer, list(input_size), resize_mode, pooling, precision],
            separators=(",", ":"),
        )

    def get(self, key: str) -> np.ndarray | None:
        """The stored array, or ``None`` when absent, damaged (then it is dropped) or off."""
        if self._cache is None:
            return None
        try:
            blob = self._cache.get(key, default=None, retry=True)
        except Exception as exc:
            log.warning("feature store entry unreadable (%s); dropping it", exc)
            blob = b""
        if blob is None:
            return None
        array = _decode(blob)
        if array is None:
            self._delete(key)
        return array

    def _delete(self, key: str) -> None:
        try:
            self._cache.delete(key, retry=True)
        except Exception as exc:
            self._disable(f"cannot write to the feature store at {self.directory}: {exc}")

    def put(self, key: str, array: np.ndarray) -> None:
        """Store ``array`` under ``key``; on a full disk or unwritable folder, turn it off."""
        if self._cache is None or self.disabled:
            return
        blob = _encode(array)
        try:
            self._cache.set(key, blob, retry=True)
        except Exception as exc:
            self._disable(f"cannot write to the feature store at {self.directory}: {exc}")

    def get_many(self, keys: dict[str, str]) -> dict[str, np.ndarray] | None:
        """All arrays for ``{name: key}``, or ``None`` when any one is missing."""
        out = {}
        for name, key in keys.items():
            array = self.get(key)
            if array is None:
                return None
            out[name] = array
        return out

    def get_set(self, keys: dict[str, dict[str, str]]) -> dict[str, dict[str, np.ndarray]]:
        """For ``{item: {name: key}}``, every item whose arrays are all stored, read in one
        transaction: ``{item: {name: array}}``."""
        with self.batch():
            found = {item: self.get_many(item_keys) for item, item_keys in keys.items()}
        return {item: arrays for item, arrays in found.items() if arrays is not None}

    def put_many(self, keys: dict[str, str], arrays: dict[str, np.ndarray]) -> None:
        """Store ``arrays[name]`` under ``keys[name]`` for every name."""
        for name, key in keys.items():
            self.put(key, arrays[name])

    @contextlib.contextmanager
    def batch(self):
        """Run the reads and writes inside as one SQLite transaction: much faster for many small
        entries, and written whole or not at all. A failure of the transaction itself (a full
        disk, say) turns the store off, as a failed write does; what the body raises goes on.

        Example::

            >>> store = FeatureStore("featlib-cache")
            >>> keys = [store.key(f"{i:064x}", "vgg16|random:0|top=0", "block5_pool", (224, 224),
            ...                   "stretch", "avg", "float32") for i in range(3)]
            >>> with store.batch():
            ...     found = [store.get(k) for k in keys]
            >>> found
            [None, None, None]
        """
        if self._cache is None or self.disabled:
            yield
            return
        transaction = contextlib.ExitStack()
        try:
            transaction.enter_context(self._cache.transact(retry=True))
        except (sqlite3.Error, OSError) as exc:
            self._disable(f"cannot write to the feature store at {self.directory}: {exc}")
        try:
            yield
        except BaseException:
            transaction.__exit__(*sys.exc_info())  # rolled back; the body's exception goes on
            raise
        try:
            transaction.close()
        except (sqlite3.Error, OSError) as exc:
            self._disable(f"cannot write to the feature store at {self.directory}: {exc}")

    def info(self) -> dict:
        """Folder, number of entries, bytes used and the cap."""
        if self._cache is None:
            return {"directory": str(self.directory), "entries": 0, "bytes": 0,
                    "size_limit": self.size_limit, "disabled": self.disabled}  # fmt: skip
        return {
            "directory": str(self.directory),
            "entries": len(self._cache),
            "bytes": int(self._cache.volume()),
            "size_limit": self.size_limit,
            "disabled": self.disabled,
        }

    def clear(self) -> int:
        """Remove every entry; return how many there were."""
        return int(self._cache.clear(retry=True)) if self._cache is not None else 0

    def close(self) -> None:
        """Close the SQLite connection (a store is reopened by creating a new one)."""
        if self._cache is not None:
            self._cache.close()

    def __repr__(self) -> str:
        state = f", disabled={self.disabled!r}" if self.disabled else ""
        return f"FeatureStore({str(self.directory)!r}{state})"
