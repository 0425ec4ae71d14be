"""Feature files as the engines write them, read back: ``.npz``, one ``.parquet`` file, or a
folder of Parquet shards. Needs neither TensorFlow nor Ray.

A shard has the columns ``path``, ``sha256``, ``label``, ``split`` and one fixed-size
``list<float32>`` column per layer named ``features/<layer>`` (a single ``.parquet`` file from
the local engine names that column by the layer alone). Each shard records, in its schema
metadata under ``featlib``, the settings its vectors were made with, so that a rerun over the
same folder skips what is done (``done_rows``) and never mixes settings.

Example::

    >>> np.savez("features.npz", paths=["a.png", "b.png"], sha256=["a1" * 32, "b2" * 32],
    ...          labels=["cat", ""], features=np.ones((2, 1280), np.float32))
    >>> feats = read_features("features.npz")  # or a .parquet file, or a folder of shards
    >>> feats.features["features"].shape
    (2, 1280)
"""

from __future__ import annotations

import concurrent.futures
import csv
import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from featlib.errors import FeatlibError
from featlib.extraction.features import Features
from featlib.images.decode import ImageRecord

__all__ = [
    "FEATURE_PREFIX",
    "SETTINGS_KEY",
    "LazyLayers",
    "done_rows",
    "errors_path",
    "feature_file_kind",
    "open_features",
    "read_features",
    "shard_files",
    "to_features",
    "write_table",
]

FEATURE_PREFIX = "features/"
SETTINGS_KEY = b"featlib"
_ROW_COLUMNS = ("path", "sha256", "label", "split")


def write_table(table: pa.Table, path: str | os.PathLike) -> None:
    """Write a feature table as Parquet, its vectors plain: floats from a network do not
    compress, and plain pages read fastest (100,000 x 512 vectors: 0.4 s instead of 0.8 s
    with Snappy and dictionaries from a warm cache, several times that from disk). The row
    columns keep their dictionaries (labels repeat)."""
    rows = [c for c in _ROW_COLUMNS if c in table.column_names]
    pq.write_table(table, path, compression="none", use_dictionary=rows)


def errors_path(out: str | os.PathLike) -> Path:
    """Where the files that could not be used are listed: ``OUT.errors.csv``."""
    out = Path(out)
    return out.with_name(out.name + ".errors.csv")


def shard_files(folder: str | os.PathLike) -> list[Path]:
    """The finished shards of a folder, sorted; unfinished ones (hidden names) are left out."""
    return sorted(p for p in Path(folder).glob("*.parquet") if not p.name.startswith((".", "_")))


def _same_settings(theirs: dict, settings: dict) -> bool:
    """Whether a shard's settings are the run's. A shard records the precision its worker
    resolved; a run asking for ``"auto"`` takes whatever its workers resolve, so it accepts any."""
    if settings.get("precision") == "auto" and "precision" in theirs:
        theirs = {**theirs, "precision": "auto"}
    return theirs == settings


def done_rows(folder: str | os.PathLike, settings: dict) -> set[tuple[str, str]]:
    """``(path, sha256)`` of every row already in the shards of ``folder``.

    Raises:
        FeatlibError: a shard was made with other settings (a rerun must not mix them).
    """
    done: set[tuple[str, str]] = set()
    for shard in shard_files(folder):
        meta = pq.read_schema(shard).metadata or {}
        theirs = json.loads(meta.get(SETTINGS_KEY, b"{}"))
        if not _same_settings(theirs, settings):
            changed = sorted(k for k in {*theirs, *settings} if theirs.get(k) != settings.get(k))
            raise FeatlibError(
                f"{folder} holds features made with other settings ({', '.join(changed)}): "
                f"choose another --out or remove it. Received: {settings}; the folder has {theirs}"
            )
        table = pq.read_table(shard, columns=["path", "sha256"])
        done.update(zip(table["path"].to_pylist(), table["sha256"].to_pylist(), strict=True))
    return done


def _vector_columns(names) -> list[str]:
    return [c for c in names if c not in _ROW_COLUMNS and c != "error"]


def _records(table: pa.Table) -> list[ImageRecord]:
    column = {c: table[c].to_pylist() if c in table.column_names else None for c in _ROW_COLUMNS}
    return [
        ImageRecord(column["path"][i], column["sha256"][i],
                    column["label"][i] if column["label"] else None,
                    column["split"][i] if column["split"] else None, None, None, None, None)
        for i in range(table.num_rows)
    ]  # fmt: skip


def _vectors(table: pa.Table) -> dict[str, np.ndarray]:
    features = {}
    for name in _vector_columns(table.column_names):
        values = table[name].combine_chunks()
        width = values.type.list_size
        flat = values.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        features[name.removeprefix(FEATURE_PREFIX)] = flat.reshape(table.num_rows, width)
    return features


def to_features(table: pa.Table, errors: list | None = None) -> Features:
    """``Features`` of a table with the shard columns (``split`` and ``label`` optional)."""
    return Features(records=_records(table), features=_vectors(table), errors=errors or [])


class LazyLayers(Mapping):
    """Layer -> vectors of a feature file that are still being read on a background thread:
    the layers and their widths are known at once, the first look at the vectors waits for them.

    Attributes:
        widths: layer -> vector length.
    """

    def __init__(self, widths: dict[str, int], read: Callable[[], dict[str, np.ndarray]]):
        self.widths = dict(widths)
        reader = concurrent.futures.ThreadPoolExecutor(1, "featlib-read")
        self._reading = reader.submit(read)
        reader.shutdown(wait=False)  # its thread ends once the vectors are read

    def __getitem__(self, layer: str) -> np.ndarray:
        if layer not in self.widths:
            raise KeyError(layer)
        return self._reading.result()[layer]

    def __iter__(self) -> Iterator[str]:
        return iter(self.widths)

    def __len__(self) -> int:
        return len(self.widths)


def open_features(out: str | os.PathLike) -> Features:
    """:func:`read_features`, with the records at once and, for one ``.parquet`` file, the
    vectors read on a background thread: a page can show the records of 100,000 images while
    their vectors are still coming from disk (``features`` is then a :class:`LazyLayers`).

    Example::

        >>> np.savez("features.npz", paths=["a.png"], sha256=["a1" * 32], labels=["cat"],
        ...          features=np.ones((1, 8), np.float32))
        >>> open_features("features.npz").widths
        {'features': 8}
    """
    path = Path(out)
    if feature_file_kind(path) != "parquet":
        return read_features(path)
    schema = pq.read_schema(path)
    vectors = _vector_columns(schema.names)
    rows = pq.read_table(path, columns=[c for c in _ROW_COLUMNS if c in schema.names])
    widths = {c.removeprefix(FEATURE_PREFIX): schema.field(c).type.list_size for c in vectors}
    layers = LazyLayers(widths, lambda: _vectors(pq.read_table(path, columns=vectors)))
    return Features(records=_records(rows), features=layers, errors=_read_errors(path))


def _read_errors(out: Path) -> list[ImageRecord]:
    path = errors_path(out)
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [ImageRecord(r["file"], None, None, None, None, None, None, r["reason"]) for r in rows]


def _read_npz(path: Path) -> pa.Table:
    with np.load(path, allow_pickle=False) as data:
        columns = {
            "path": pa.array(data["paths"].tolist(), pa.string()),
            "sha256": pa.array(data["sha256"].tolist(), pa.string()),
            "label": pa.array([lab or None for lab in data["labels"].tolist()], pa.string()),
        }
        for key in data.files:
            if key == "features" or key.startswith(FEATURE_PREFIX):
                matrix = data[key].astype(np.float32, copy=False).reshape(len(data[key]), -1)
                name = key if key != "features" else f"{FEATURE_PREFIX}features"
                columns[name] = pa.FixedSizeListArray.from_arrays(
                    pa.array(matrix.reshape(-1), pa.float32()), matrix.shape[1]
                )
    return pa.table(columns)


def _latest_rows(table: pa.Table) -> pa.Table:
    """One row per path: a file that changed between two runs over one folder has a row in
    each run's shards, and the later one is the file as it is now."""
    last = {path: i for i, path in enumerate(table["path"].to_pylist())}
    if len(last) == table.num_rows:
        return table
    return table.take(sorted(last.values()))


def feature_file_kind(path: str | os.PathLike) -> str:
    """What kind of feature file ``path`` is: ``"npz"``, ``"parquet"`` or ``"shards"`` (a
    folder of Parquet shards, named ``*.parquet`` as ``featlib extract --engine ray`` names it).

    Raises:
        FeatlibError: it is none of these, or does not exist.

    Example::

        >>> feature_file_kind("features.npz")
        Traceback (most recent call last):
        featlib.errors.FeatlibError: features.npz: not found; a feature file is an .npz file, ...
    """
    path = Path(path)
    if path.suffix == ".npz" and path.is_file():
        return "npz"
    if path.suffix == ".parquet" and path.is_file():
        return "parquet"
    if path.suffix == ".parquet" and path.is_dir():
        return "shards"
    why = "not found" if not path.exists() else "not a feature file"
    raise FeatlibError(
        f"{path}: {why}; a feature file is an .npz file, a .parquet file or a folder of .parquet "
        "shards, as featlib extract writes them"
    )


def read_features(out: str | os.PathLike) -> Features:
    """Read what ``featlib extract`` wrote, with either engine.

    Args:
        out: an ``.npz`` file, a ``.parquet`` file, or a folder of Parquet shards.

    Returns:
        ``Features``: records with ``name`` (the ``path`` column), ``sha256``, ``label``,
        ``split`` (one per path: for a file that changed between runs over one folder of
        shards, the latest); ``features`` maps each layer to float32 of shape
        (n_images, n_features);
        ``errors`` lists the files of ``OUT.errors.csv`` with their reasons. An ``.npz`` of one
        layer keeps its vectors under ``"features"``.

    Raises:
        FeatlibError: ``out`` does not exist or is not a feature file.

    Example::

        >>> np.savez("features.npz", paths=["a.png", "b.png"], sha256=["a1" * 32, "b2" * 32],
        ...          labels=["cat", ""], features=np.ones((2, 1280), np.float32))
        >>> feats = featlib.read_features("features.npz")
        >>> len(feats.records), list(feats.features)
        (2, ['features'])
    """
    path = Path(out)
    kind = feature_file_kind(path)
    if kind == "npz":
        table = _read_npz(path)
    elif kind == "shards":
        shards = shard_files(path)
        if not shards:
            raise FeatlibError(f"{path}: a folder without Parquet shards. Received: {out}")
        shards.sort(key=lambda s: s.stat().st_mtime_ns)  # oldest first: newer rows win below
        table = _latest_rows(
            pa.concat_tables([pq.read_table(s).replace_schema_metadata(None) for s in shards])
        )
    else:
        table = pq.read_table(path)
    return to_features(table, _read_errors(path))
