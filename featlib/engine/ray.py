"""featlib on Ray Data: the same vectors as ``featlib extract``, on one machine or a cluster.

``Extract`` is a callable class for ``ray.data.Dataset.map_batches``: each actor holds one
model replica and runs ``featlib.extract_set`` on its batches, so decoding, the bad-file policy,
the feature store and the vectors are those of the local engine. ``extract_to`` is the whole
run behind ``featlib extract --engine ray``: the driver lists the images (an ``ImageSet``: names,
SHA-256, labels, per-file errors), the workers read, decode and extract, and write Parquet shards
straight into the output folder; the driver never holds the vectors.

A shard is written under a hidden name and renamed when complete, and records its settings
(``featlib.engine.shards``): a rerun over the same folder skips the rows it holds, and a task
Ray retries after a lost worker leaves no partial file behind.

On a cluster (not run as a doctest: it needs a bucket and GPUs)::

    import ray
    import featlib.engine.ray as fr

    ds = ray.data.read_binary_files("s3://bucket/images/", include_paths=True)
    ds = ds.map_batches(fr.Extract, fn_constructor_kwargs={"backbone": "resnet50",
        "weights": "imagenet", "layers": ["conv5_block3_out"]}, batch_format="pyarrow",
        batch_size=64, concurrency=4, num_gpus=1)
    ds.write_parquet("s3://bucket/features/")
"""

from __future__ import annotations

import dataclasses
import json
import os
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from featlib._files import replaced_atomically
from featlib._uri import is_uri
from featlib.engine.shards import (
    FEATURE_PREFIX,
    SETTINGS_KEY,
    done_rows,
    to_features,
    write_table,
)
from featlib.errors import FeatlibError, OptionError
from featlib.extraction.features import layer_names
from featlib.images.decode import ImageRecord
from featlib.images.imageset import ImageSet
from featlib.images.sources import from_uploads, read_files

try:
    import ray
    import ray.data
    from ray.data.block import BlockAccessor
    from ray.data.datasource import Datasink
except ImportError:
    raise FeatlibError(
        "The Ray engine needs Ray Data: pip install 'featlib[ray]' (or 'ray[data]')."
    ) from None

__all__ = ["Extract", "RayRun", "ShardSink", "connect", "extract_to", "run_settings"]

ROWS_PER_SHARD = 4096  # Ray gathers at least this many rows per written shard


def _is_model_file(backbone: str) -> bool:
    """A user's own ``.keras`` / ``.h5`` model rather than a registry name."""
    return backbone.endswith((".keras", ".h5")) and not backbone.endswith(".weights.h5")


class Extract:
    """Pooled features of a batch of images, for ``ray.data.Dataset.map_batches``.

    Each instance (one per Ray actor) loads the backbone once and reuses one ``Extractor``.

    Args:
        backbone: a registry name (``featlib.list_backbones()``) or a ``.keras`` / ``.h5`` model.
        weights: as for ``featlib.load_backbone``; a file must be readable by every worker.
        layers: layer names (``featlib.list_layers``); None: the last block's output.
        pooling: ``"avg"``, ``"max"`` or ``"flatten"``.
        resize_mode: ``"stretch"``, ``"center-crop"`` or ``"pad"``.
        precision: ``"float32"``, ``"bfloat16"``, ``"mixed_float16"`` or ``"auto"`` (the
            worker's fast precision: mixed float16 on a GPU with tensor cores).
        batch_size: images per forward pass; default from ``featlib.extraction``.
        seed: for ``weights="random"``.
        input_size: ``(height, width)``; None: the backbone's own.
        preprocessing: for a model file (see ``featlib.load_model_file``).
        store: also read and write a feature store on each worker: False (no), True (the
            worker's default cache folder) or a folder.
        cpu_threads: threads TensorFlow may use in a Ray actor; None: all its CPUs. Ray sets
            ``OMP_NUM_THREADS`` to an actor's reserved CPUs (1 here), which halved MobileNetV2's
            speed on 2 cores; give cores / actors when several actors share a machine.

    Batches are ``pyarrow.Table`` (``batch_format="pyarrow"``) with either ``path`` and
    ``bytes`` (what ``ray.data.read_binary_files(..., include_paths=True)`` gives), or the rows
    ``extract_to`` makes: ``path``, ``sha256``, ``label``, ``split``, ``width``, ``height``,
    ``mode`` and the image as ``file`` (a path or a URI every worker can read) or ``bytes``;
    a row of a listed, unread file (``open_source(..., read=False)``) has a null ``sha256``,
    and the worker reads, hashes and checks the file. With a ``done_sha256`` column (what a
    resumed run already holds for that path), a file whose SHA-256 equals it is not extracted
    again: its row comes back with ``skipped`` true and null vectors.

    Returns (per batch) a ``pyarrow.Table`` with ``path``, ``sha256``, ``label``, ``split``,
    one fixed-size ``list<float32>`` column ``features/<layer>`` per layer, ``error``: null
    for a usable image, else why it could not be used (its vectors are then null), and
    ``precision``: the precision the vectors were computed in (``"auto"`` resolved on the
    worker's own hardware).

    Example::

        >>> ex = Extract("mobilenetv2", "random", ["out_relu"], input_size=(96, 96))
        >>> column = ex(pa.table({"path": ["a.png"], "bytes": [png_bytes]}))["features/out_relu"]
        >>> column.type.list_size, column.type.value_type
        (1280, DataType(float))
    """

    def __init__(
        self,
        backbone: str = "vgg16",
        weights: str = "auto",
        layers=None,
        *,
        pooling: str = "avg",
        resize_mode: str = "stretch",
        precision: str = "auto",
        batch_size: int | None = None,
        seed: int = 0,
        input_size: tuple[int, int] | None = None,
        preprocessing: str = "scale",
        store: bool | str | os.PathLike = False,
        cpu_threads: int | None = None,
    ):
        if ray.is_initialized() and ray.get_runtime_context().get_actor_id():
            # read when TensorFlow loads, just below; an actor's process is its model's alone
            os.environ["OMP_NUM_THREADS"] = str(cpu_threads or os.cpu_count() or 1)
        from featlib.extraction.extractor import Extractor
        from featlib.extraction.features import check_choice
        from featlib.extraction.store import FeatureStore
        from featlib.images.decode import RESIZE_MODES
        from featlib.models.backbones import load_backbone, load_model_file
        from featlib.models.layers import block_outputs

        self.failure: FeatlibError | None = None
        try:
            check_choice("resize_mode", resize_mode, RESIZE_MODES)
            if _is_model_file(backbone):
                bb = load_model_file(backbone, preprocessing, input_size=input_size)
            else:
                bb = load_backbone(backbone, weights, seed=seed, input_size=input_size)
            names = layer_names(layers) if layers else [block_outputs(bb)[-1].name]
            self.extractor = Extractor(bb, names, pooling, precision, batch_size)
        except FeatlibError as exc:
            # raised with the first batch: Ray keeps only the text of an actor that cannot
            # start, and the driver should get the error itself (an unknown layer, say)
            self.failure = exc
        self.resize_mode = resize_mode
        self.store = None if store is False else FeatureStore(None if store is True else store)

    def __call__(self, batch: pa.Table) -> pa.Table:
        from featlib.extraction.pipeline import extract_set

        if self.failure is not None:
            raise self.failure
        ex = self.extractor
        image_set, skipped = _image_set(batch)
        feats = extract_set(
            ex.backbone, image_set, ex.layers, pooling=ex.pooling, resize_mode=self.resize_mode,
            store=self.store, extractor=ex,
        )  # fmt: skip
        rows = feats.records + feats.errors + skipped
        n_ok = len(feats.records)
        failed = np.arange(len(rows)) >= n_ok
        columns = {
            "path": pa.array([r.name for r in rows], pa.string()),
            "sha256": pa.array([r.sha256 for r in rows], pa.string()),
            "label": pa.array([r.label for r in rows], pa.string()),
            "split": pa.array([r.split for r in rows], pa.string()),
        }
        for name in ex.layers:
            (width,) = ex.output_shapes[name]
            matrix = np.zeros((len(rows), width), np.float32)
            matrix[:n_ok] = feats.features[name]
            columns[FEATURE_PREFIX + name] = pa.FixedSizeListArray.from_arrays(
                pa.array(matrix.reshape(-1)), width, mask=pa.array(failed)
            )
        columns["error"] = pa.array([r.error for r in rows], pa.string())
        columns["precision"] = pa.array([ex.precision] * len(rows), pa.string())
        if "done_sha256" in batch.column_names:
            columns["skipped"] = pa.array(np.arange(len(rows)) >= len(rows) - len(skipped))
        return pa.table(columns)


def _image_set(batch: pa.Table) -> tuple[ImageSet, list[ImageRecord]]:
    """The batch's images as an ``ImageSet``, read and checked as ``featlib`` reads any set,
    and the records of the files a resumed run already holds (left out of the set)."""
    column = {c: batch[c].to_pylist() for c in batch.column_names}
    if "path" not in column or not {"bytes", "file"} & set(column):
        raise OptionError(
            "Extract needs batches with a 'path' column and a 'bytes' or 'file' column. "
            f"Received: columns {batch.column_names}"
        )
    n = batch.num_rows
    data = column.get("bytes", [None] * n)
    if "sha256" not in column:  # raw bytes from a user's pipeline: hash and probe them here
        return from_uploads(zip(column["path"], data, strict=True)), []
    files = [f if f is None or is_uri(f) else Path(f) for f in column.get("file", [None] * n)]
    listed = iter(
        read_files(
            (column[f][i] for f in ("path", "file", "label", "split"))
            for i in range(n) if column["sha256"][i] is None
        ).records
    )  # fmt: skip
    records = [
        next(listed) if column["sha256"][i] is None else
        ImageRecord(*(column[f][i] for f in ("path", "sha256", "label", "split", "width",
                                             "height", "mode")), None)
        for i in range(n)
    ]  # fmt: skip
    done = column.get("done_sha256", [None] * n)
    skipped = [r for r, sha in zip(records, done, strict=True) if sha and r.sha256 == sha]
    blobs = {r.sha256: b for r, b in zip(records, data, strict=True) if b is not None}
    paths = {r: f for r, f in zip(records, files, strict=True) if f is not None and r.error is None}
    keep = [r for r in records if r not in skipped]
    return ImageSet(keep, blobs=blobs, paths=paths), skipped


def _error_records(failed: pa.Table) -> list[ImageRecord]:
    """Records of the failed rows of an ``Extract`` output, each with its ``error``."""
    return [
        ImageRecord(path, sha, label, split, None, None, None, error)
        for path, sha, label, split, error in zip(
            *(failed[c].to_pylist() for c in ("path", "sha256", "label", "split", "error")),
            strict=True,
        )
    ]


class ShardSink(Datasink):
    """Writes the usable rows of each write task as one Parquet shard in ``folder`` (one per
    precision the workers resolved: a cluster of mixed hardware may resolve ``"auto"``
    differently) and hands the failed rows back to the driver (``errors``), where they are few,
    with the number of rows the shards already held (``skipped``).

    Args:
        folder: the output folder (created).
        settings: recorded in each shard's schema metadata (see ``featlib.engine.shards``),
            with ``precision`` as the workers resolved it.
    """

    def __init__(self, folder: str | os.PathLike, settings: dict):
        self.folder = Path(folder)
        self.settings = settings
        self.rows = 0
        self.skipped = 0
        self.errors: list[ImageRecord] = []

    @property
    def min_rows_per_write(self) -> int:
        return ROWS_PER_SHARD

    def write(self, blocks, ctx) -> tuple[int, list[ImageRecord], int]:
        tables = [BlockAccessor.for_block(b).to_arrow() for b in blocks]
        tables = [t for t in tables if t.num_rows]
        if not tables:
            return 0, [], 0
        table = pa.concat_tables(tables)
        skipped = 0
        if "skipped" in table.column_names:
            skipped = pc.sum(table["skipped"]).as_py() or 0
            table = table.filter(pc.invert(table["skipped"])).drop_columns(["skipped"])
        failed = pc.is_valid(table["error"])
        errors = _error_records(table.filter(failed))
        ok = table.filter(pc.invert(failed)).drop_columns(["error"])
        if ok.num_rows:  # made here: a run without a usable image leaves no folder behind
            self.folder.mkdir(exist_ok=True)
        for precision in pc.unique(ok["precision"]).to_pylist():
            part = ok.filter(pc.equal(ok["precision"], precision)).drop_columns(["precision"])
            settings = {**self.settings, "precision": precision}
            meta = {SETTINGS_KEY: json.dumps(settings, sort_keys=True).encode()}
            with replaced_atomically(self.folder / f"part-{uuid.uuid4().hex}.parquet") as tmp:
                write_table(part.replace_schema_metadata(meta), tmp)
        return ok.num_rows, errors, skipped

    def on_write_complete(self, write_result) -> None:
        for rows, errors, skipped in write_result.write_returns:
            self.rows += rows
            self.errors += errors
            self.skipped += skipped


def run_settings(
    backbone: str,
    weights: str = "auto",
    layers=None,
    *,
    seed: int = 0,
    input_size: tuple[int, int] | None = None,
    pooling: str = "avg",
    resize_mode: str = "stretch",
    precision: str = "auto",
) -> dict:
    """The settings that make two runs' vectors comparable, as shards record them. Needs no
    TensorFlow: the backbone is named by ``featlib.weights_key`` (or its file's SHA-256)."""
    from featlib.models.registry import get_spec
    from featlib.models.weights import file_sha256, weights_key

    if _is_model_file(backbone):
        model = f"file:{file_sha256(backbone)}"
    else:
        model = weights_key(backbone, weights, seed=seed) or f"{get_spec(backbone).name}|{weights}"
    return {
        "backbone": model,
        "layers": layer_names(layers) if layers else "default",
        "input_size": list(input_size) if input_size else "default",
        "pooling": pooling,
        "resize_mode": resize_mode,
        "precision": precision,
    }


def _featlib_cause(exc: BaseException) -> FeatlibError | None:
    """The ``FeatlibError`` a worker raised (a bad option, an unknown layer, weights it cannot
    have), found among the exceptions Ray raises in the driver for it."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        remote = isinstance(current, ray.exceptions.RayTaskError)  # its .cause is the original
        if isinstance(current, FeatlibError) and not remote:
            return current
        pending += [current.__cause__, current.__context__, getattr(current, "cause", None)]
    return None


def connect(address: str | None = None) -> None:
    """Join the Ray cluster at ``address`` (or ``$RAY_ADDRESS``), else start Ray on this
    machine without its dashboard; nothing when Ray is already initialised in this process."""
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    quiet = {"ignore_reinit_error": True, "log_to_driver": False}
    if address:
        ray.init(address=address, **quiet)
    else:
        ray.init(include_dashboard=False, **quiet)


@dataclasses.dataclass
class RayRun:
    """What ``extract_to`` did.

    Attributes:
        written: rows written by this run.
        skipped: usable images already in the output's shards (not computed again).
        errors: records of the files that could not be used, each with its ``error``.
        features: for an ``.npz`` output, the ``Features`` to write; else None.
    """

    written: int
    skipped: int
    errors: list
    features: object = None


def _rows(image_set: ImageSet, records: list, done: dict[str, str]) -> list[dict]:
    """The input rows of ``Extract``: a file's path for the workers to read, or, for in-memory
    sources, its bytes; for a listed, unread file, the SHA-256 the output already holds for
    its path (``done``), which the worker compares once it has read the file."""
    rows = []
    for r in records:
        file = image_set.file(r)
        rows.append({
            "path": r.name, "sha256": r.sha256, "label": r.label, "split": r.split,
            "width": r.width, "height": r.height, "mode": r.mode,
            "file": None if file is None else str(file),
            "bytes": image_set.read_bytes(r) if file is None else None,
            "done_sha256": done.get(r.name) if r.sha256 is None else None,
        })  # fmt: skip
    return rows


def extract_to(
    out: str | os.PathLike,
    image_set: ImageSet,
    extract: dict,
    *,
    actors: int = 1,
    gpus_per_actor: float = 0.0,
    address: str | None = None,
    batch_size: int | None = None,
    udf: type = Extract,
) -> RayRun:
    """Extract a set on Ray: Parquet shards into the folder ``out`` (``.parquet``), or the
    ``Features`` for an ``.npz``.

    Args:
        out: a ``.parquet`` path (a folder of shards; a rerun skips what it holds) or ``.npz``.
        image_set: the images, as ``featlib.open_source`` lists them; with ``read=False``
            the workers read, hash and check the files (the driver only lists them).
        extract: keyword arguments of ``Extract`` (``backbone``, ``weights``, ``layers``...).
        actors: model replicas (Ray actors); one per GPU on a GPU cluster.
        gpus_per_actor: GPUs each actor reserves (0: CPU only).
        address: a Ray cluster to join; None: ``$RAY_ADDRESS``, else Ray on this machine.
        batch_size: also the rows per Ray batch (default 64).
        udf: ``Extract`` or a subclass of it that adds a step.

    Returns:
        ``RayRun``: rows written, rows skipped (found in the shards by path and SHA-256), the
        failed files (the driver's listing and the workers' together).

    Raises:
        FeatlibError: ``out`` is a file from the local engine, or holds shards with other
            settings.
    """
    out = Path(out)
    settings = run_settings(
        extract.get("backbone", "vgg16"), extract.get("weights", "auto"), extract.get("layers"),
        seed=extract.get("seed", 0), input_size=extract.get("input_size"),
        pooling=extract.get("pooling", "avg"), resize_mode=extract.get("resize_mode", "stretch"),
        precision=extract.get("precision", "auto"),
    )  # fmt: skip
    shards = out.suffix == ".parquet"
    if shards and out.is_file():
        raise FeatlibError(
            f"--out {out} is a single file (the local engine's); the Ray engine writes a folder "
            f"of shards: choose another path or remove it"
        )
    done = done_rows(out, settings) if shards and out.is_dir() else set()
    todo = [r for r in image_set.ok if (r.name, r.sha256) not in done]
    skipped = len(image_set.ok) - len(todo)
    errors = list(image_set.errors)
    if not todo:
        return RayRun(0, skipped, errors)
    connect(address)
    ds = ray.data.from_items(_rows(image_set, todo, dict(done))).map_batches(
        udf,
        fn_constructor_kwargs={**extract, "batch_size": batch_size},
        batch_format="pyarrow",
        batch_size=batch_size or 64,
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=1,
        num_gpus=gpus_per_actor or None,
    )  # Ray Data restarts a lost actor and runs its batch again (max_restarts=-1 for pools)
    ds.context.raise_original_map_exception = True  # a FeatlibError, not UserCodeException
    try:
        if shards:
            sink = ShardSink(out, settings)
            ds.write_datasink(sink)
            return RayRun(sink.rows, skipped + sink.skipped, errors + sink.errors)
        table = pa.concat_tables(list(ds.iter_batches(batch_format="pyarrow", batch_size=None)))
    except Exception as exc:
        cause = _featlib_cause(exc)
        if cause is None:
            raise
        raise cause from exc
    failed = pc.is_valid(table["error"])
    position = {r.name: i for i, r in enumerate(image_set.records)}
    ok = table.filter(pc.invert(failed)).drop_columns(["error", "precision", "skipped"])
    ok = ok.take(np.argsort([position[p] for p in ok["path"].to_pylist()], kind="stable"))
    feats = to_features(ok, errors + _error_records(table.filter(failed)))
    return RayRun(len(feats.records), skipped, feats.errors, feats)
