"""The Ray Data engine on a local Ray (2 CPUs, no dashboard): the same vectors as the local
engine, the same bad-file policy, resumable shards, and a killed actor retried without
duplicate rows."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import ray
from PIL import Image

import featlib
from featlib.cli import main
from featlib.engine import ray as engine
from featlib.engine.shards import errors_path, shard_files
from featlib.errors import FeatlibError
from featlib.extraction._device import resolve_precision
from tests.fake_s3 import fake_s3

pytestmark = pytest.mark.slow

SIZE = (96, 96)
EXTRACT = {
    "backbone": "mobilenetv2",
    "weights": "random",
    "layers": ["block_6_expand_relu", "out_relu"],
    "precision": "float32",
    "input_size": SIZE,
}


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """One local Ray for the module, offline, its workers on the tests' private caches."""
    root = tmp_path_factory.getbasetemp()
    env = {
        "FEATLIB_OFFLINE": "1",
        "FEATLIB_CACHE_DIR": str(root / "featlib-cache"),
        "KERAS_HOME": str(root / "keras-home"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_USAGE_STATS_ENABLED", "0")  # Ray would report usage over the network
        ray.init(
            num_cpus=2, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False,
            runtime_env={"env_vars": env},
        )  # fmt: skip
        yield
        ray.shutdown()


def _jpegs(folder, names, seed=0):
    """Small JPEGs cut from the bundled photos, in class sub-folders."""
    rng = np.random.RandomState(seed)
    photos = featlib.load_samples("photos")
    for i, name in enumerate(names):
        rec = photos.ok[i % len(photos.ok)]
        pixels = photos.load(rec, size=(120, 120))
        pixels = np.roll(pixels, rng.randint(120), axis=1)
        path = folder / rec.label / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path, quality=90)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "images"
    _jpegs(root, [f"img_{i}.jpg" for i in range(6)])
    (root / "photo" / "broken.jpg").write_bytes(b"not a jpeg at all")
    return root


def _by_name(feats):
    return {r.name: i for i, r in enumerate(feats.records)}


def test_same_vectors_as_the_local_engine_error_rows_and_resume(local_ray, folder, tmp_path):
    image_set = featlib.open_source(folder)
    changed = next(r for r in image_set.ok if r.name.endswith("img_1.jpg"))
    (folder / changed.name).write_bytes((folder / changed.name).read_bytes() + b"\0")
    out = tmp_path / "features.parquet"

    run = engine.extract_to(out, image_set, EXTRACT, batch_size=4)

    got = featlib.read_features(out)
    assert run.written == len(got.records) == len(image_set.ok) - 1
    reasons = {r.name: r.error for r in run.errors}
    assert set(reasons) == {"photo/broken.jpg", changed.name}
    assert "changed since the set was built" in reasons[changed.name]
    table = pq.read_table(shard_files(out)[0])
    assert table.column_names == [
        "path", "sha256", "label", "split", "features/block_6_expand_relu", "features/out_relu"
    ]  # fmt: skip
    column = table.schema.field("features/out_relu").type
    assert (column.list_size, column.value_type) == (1280, pa.float32())

    backbone = featlib.load_backbone("mobilenetv2", "random", input_size=SIZE)
    local = featlib.extract_set(backbone, image_set, EXTRACT["layers"], precision="float32")
    assert {r.name for r in local.errors} == set(reasons)
    rows = _by_name(got)
    order = [rows[r.name] for r in local.records]
    assert [got.records[i].label for i in order] == local.labels
    for layer in EXTRACT["layers"]:
        ours, theirs = got.features[layer][order], local.features[layer]
        rel = np.linalg.norm(ours - theirs, axis=1) / np.linalg.norm(theirs, axis=1)
        assert rel.max() <= 1e-5, layer

    _jpegs(folder / "more", ["new_0.jpg", "new_1.jpg"], seed=1)
    again = engine.extract_to(out, featlib.open_source(folder), EXTRACT, batch_size=4)
    assert (again.written, again.skipped) == (3, 5)  # the changed file is tried again
    names = [r.name for r in featlib.read_features(out).records]
    assert len(names) == len(set(names)) == 8
    with pytest.raises(FeatlibError, match="other settings \\(pooling\\)"):
        engine.extract_to(out, featlib.open_source(folder), {**EXTRACT, "pooling": "max"})


def test_a_csv_of_s3_uris_is_read_by_the_workers(local_ray, folder, tmp_path):
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.jpg"))
    with fake_s3(folder.parent) as uri:
        rows = [f"{uri(f'{folder.name}/{f}')},{f.split('/')[0]}" for f in files]
        (tmp_path / "s3.csv").write_text("\n".join([*rows, f"{uri('nothing/here.jpg')},x"]))
        image_set = featlib.open_source(tmp_path / "s3.csv")
        out = tmp_path / "s3.parquet"
        run = engine.extract_to(out, image_set, EXTRACT, batch_size=4)
    backbone = featlib.load_backbone("mobilenetv2", "random", input_size=SIZE)
    local = featlib.extract_set(backbone, featlib.open_source(folder), ["out_relu"],
                                precision="float32")  # fmt: skip
    (broken,) = local.errors
    reasons = {r.name.split("?")[0]: r.error for r in run.errors}
    assert reasons == {
        f"s3://key:secret@images/{broken.name}": broken.error,
        "s3://key:secret@nothing/here.jpg": "file not found",
    }
    got = featlib.read_features(out)
    theirs = {r.sha256: local.features["out_relu"][i] for i, r in enumerate(local.records)}
    assert len(got.records) == len(theirs) == 6
    for i, r in enumerate(got.records):
        ours = got.features["out_relu"][i]
        assert np.linalg.norm(ours - theirs[r.sha256]) <= 1e-5 * np.linalg.norm(theirs[r.sha256])


def test_shards_record_the_precision_auto_resolved_to(local_ray, folder, tmp_path):
    out = tmp_path / "auto.parquet"
    auto = {**EXTRACT, "layers": ["out_relu"], "precision": "auto"}
    engine.extract_to(out, featlib.open_source(folder), auto, batch_size=8)
    (shard,) = shard_files(out)
    recorded = json.loads(pq.read_schema(shard).metadata[b"featlib"])["precision"]
    assert recorded == resolve_precision("auto")

    again = engine.extract_to(out, featlib.open_source(folder), auto)
    assert (again.written, again.skipped) == (0, 6)
    same = engine.extract_to(out, featlib.open_source(folder), {**auto, "precision": recorded})
    assert (same.written, same.skipped) == (0, 6)
    other = "float32" if recorded != "float32" else "bfloat16"
    with pytest.raises(FeatlibError, match="other settings \\(precision\\)"):
        engine.extract_to(out, featlib.open_source(folder), {**auto, "precision": other})


class KilledOnce(engine.Extract):
    """Reports its process id on its first batch, then waits to be killed; the restarted actor
    finds the report and works normally."""

    report = None

    def __call__(self, batch):
        if not os.path.exists(self.report):
            with open(self.report + ".tmp", "w") as fh:
                fh.write(str(os.getpid()))
            os.replace(self.report + ".tmp", self.report)
            time.sleep(120)
        return super().__call__(batch)


def test_a_killed_actor_is_retried_and_no_row_is_lost_or_doubled(local_ray, tmp_path):
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    root = tmp_path / "images"
    _jpegs(root, [f"img_{i:02d}.jpg" for i in range(12)])
    KilledOnce.report = str(tmp_path / "pid")
    killed = []

    def kill_when_reported():
        while not os.path.exists(KilledOnce.report):
            time.sleep(0.05)
        with open(KilledOnce.report) as fh:
            pid = int(fh.read())
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_when_reported, daemon=True)
    killer.start()
    out = tmp_path / "features.parquet"
    files = sorted(root.rglob("*.jpg"))
    image_set = featlib.from_uploads([(p.name, p.read_bytes()) for p in files])  # bytes rows

    run = engine.extract_to(out, image_set, EXTRACT, batch_size=3, udf=KilledOnce)

    assert killed and killed[0] != os.getpid()
    got = featlib.read_features(out)
    names = [r.name for r in got.records]
    assert run.written == len(names) == len(set(names)) == 12
    assert set(names) == {r.name for r in image_set.ok}


def test_extract_in_a_users_pipeline_takes_path_and_bytes_rows(folder):
    files = sorted(folder.rglob("*.jpg"))
    batch = pa.table({"path": [p.name for p in files], "bytes": [p.read_bytes() for p in files]})
    out = engine.Extract(**EXTRACT)(batch)
    failed = out.filter(pc.is_valid(out["error"]))
    assert failed["path"].to_pylist() == ["broken.jpg"]
    assert failed["features/out_relu"].null_count == 1
    assert out["features/out_relu"].null_count == 1 and out.num_rows == len(files)


def _cli(*argv):
    """The exit code of ``featlib ARGV`` (argparse's own errors exit through SystemExit)."""
    try:
        return main([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code


def test_the_command_end_to_end(local_ray, folder, tmp_path, capsys):
    out = tmp_path / "cli.parquet"
    argv = ["extract", folder, "--engine", "ray", "--backbone", "mobilenetv2", "--weights",
            "random", "--layer", "out_relu", "--precision", "float32", "--out", out]  # fmt: skip

    assert _cli(*argv) == 0
    said = capsys.readouterr()
    assert f"Wrote {out}: 6 images" in said.out
    assert "photo/broken.jpg" in said.err
    assert "photo/broken.jpg" in errors_path(out).read_text()
    assert featlib.read_features(out).features["out_relu"].shape == (6, 1280)

    assert _cli(*argv) == 0
    assert "6 already in its shards" in capsys.readouterr().out
    changed = sorted(folder.rglob("img_2.jpg"))[0]
    changed.write_bytes(changed.read_bytes() + b"\0")  # same path, new SHA-256: extracted again
    assert _cli(*argv) == 0
    assert "(1 extracted on Ray, 5 already in its shards)" in capsys.readouterr().out
    got = featlib.read_features(out)
    (now,) = [r.sha256 for r in got.records if r.name == changed.relative_to(folder).as_posix()]
    assert len(got.records) == 6 and now == hashlib.sha256(changed.read_bytes()).hexdigest()

    npz = tmp_path / "cli.npz"
    assert _cli(*argv[:-1], npz, "--actors", "1") == 0
    got, shards = featlib.read_features(npz), featlib.read_features(out)
    rows = _by_name(shards)
    order = [rows[r.name] for r in got.records]
    np.testing.assert_allclose(got.features["features"], shards.features["out_relu"][order])


def test_a_worker_error_ends_the_command_with_its_one_line(local_ray, folder, tmp_path, capsys):
    argv = ["extract", folder, "--engine", "ray", "--backbone", "mobilenetv2", "--weights",
            "random", "--layer", "nope", "--out", tmp_path / "x.parquet"]  # fmt: skip
    assert _cli(*argv) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "has no layer 'nope'" in last


def test_no_usable_image_exits_1_and_writes_no_shard(local_ray, tmp_path, capsys):
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    out = tmp_path / "x.parquet"
    argv = ["--backbone", "mobilenetv2", "--weights", "random", "--layer", "out_relu"]
    assert _cli("extract", tmp_path, "--engine", "ray", *argv, "--out", out) == 1
    assert "No image could be used" in capsys.readouterr().err
    assert not out.exists()
    assert "bad.jpg" in errors_path(out).read_text()  # read and refused by a worker


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--engine", "ray", "--actors", "0"], "--actors: must be an integer of at least 1"),
        (["--engine", "ray", "--gpus-per-actor", "-1"], "--gpus-per-actor"),
        (["--actors", "2"], "--actors needs --engine ray"),
        (["--ray-address", "auto"], "--ray-address needs --engine ray"),
    ],
)
def test_bad_engine_arguments_exit_2_with_one_line(folder, tmp_path, capsys, extra, message):
    assert _cli("extract", folder, "--out", tmp_path / "x.parquet", *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_a_local_engine_file_is_not_taken_for_a_shard_folder(local_ray, folder, tmp_path, capsys):
    out = tmp_path / "local.parquet"
    out.write_bytes(b"PAR1")
    argv = ["extract", folder, "--engine", "ray", "--backbone", "mobilenetv2", "--out", out]
    assert _cli(*argv) == 2
    assert "a single file (the local engine's)" in capsys.readouterr().err
