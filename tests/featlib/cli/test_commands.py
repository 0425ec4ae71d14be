"""The command line end to end: outputs checked against the library, resume, exit codes."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from featlib.cli import main
from featlib.extraction.pipeline import extract_set
from featlib.extraction.store import FeatureStore
from featlib.images.sources import from_folder
from featlib.models.backbones import load_model_file


def _png(seed: int, size=(40, 30)) -> bytes:
    pixels = np.random.RandomState(seed).randint(0, 256, (size[1], size[0], 3)).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "images"
    for label, seeds in (("cats", range(0, 5)), ("dogs", range(5, 9))):
        (root / label).mkdir(parents=True)
        for s in seeds:
            (root / label / f"img{s}.png").write_bytes(_png(s))
    (root / "dogs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


def _run(*argv) -> int:
    return main([str(a) for a in argv])


def test_npz_output_matches_the_library(tmp_path, folder, model_file):
    out = tmp_path / "f.npz"
    code = _run(
        "extract",
        folder,
        "--backbone",
        model_file,
        "--layer",
        "conv2",
        "--layer",
        "gap",
        "--out",
        out,
        "--cache-dir",
        tmp_path / "store",
    )
    assert code == 0
    bb, images = load_model_file(model_file), from_folder(folder)
    expected = extract_set(bb, images, ["conv2", "gap"], precision="auto")  # the CLI's default
    with np.load(out, allow_pickle=False) as data:
        assert set(data.files) == {"features/conv2", "features/gap", "paths", "sha256", "labels"}
        np.testing.assert_allclose(data["features/conv2"], expected.features["conv2"], rtol=1e-6)
        np.testing.assert_allclose(data["features/gap"], expected.features["gap"], rtol=1e-6)
        assert list(data["paths"]) == expected.names
        assert list(data["labels"]) == ["cats"] * 5 + ["dogs"] * 4
        assert list(data["sha256"]) == expected.sha256
    with open(str(out) + ".errors.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["file"] for r in rows] == ["dogs/broken.png"]
    assert rows[0]["reason"]


def test_parquet_output_matches_the_library(tmp_path, folder, model_file):
    import pyarrow.parquet as pq

    out = tmp_path / "f.parquet"
    assert (
        _run(
            "extract",
            folder,
            "--backbone",
            model_file,
            "--layer",
            "gap",
            "--pooling",
            "max",
            "--out",
            out,
            "--no-store",
        )
        == 0
    )
    table = pq.read_table(out)
    assert table.column_names == ["path", "sha256", "label", "gap"]
    bb, images = load_model_file(model_file), from_folder(folder)
    expected = extract_set(bb, images, "gap", pooling="max", precision="auto")
    got = np.array(table.column("gap").to_pylist(), np.float32)
    np.testing.assert_allclose(got, expected.features["gap"], rtol=1e-6)
    assert table.column("label").to_pylist() == expected.labels


def test_resume_computes_only_what_the_store_lacks(tmp_path, folder, model_file, capsys):
    store = FeatureStore(tmp_path / "store")
    backbone = load_model_file(model_file)
    images = from_folder(folder)

    finished = []

    def interrupt(done, total):
        if done >= 4:
            finished.append(done)  # every image up to here is in the store
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract_set(
            backbone, images, "gap", store=store, batch_size=2, progress=interrupt,
            precision="auto",
        )  # fmt: skip
    out = tmp_path / "f.npz"
    assert (
        _run(
            "extract",
            folder,
            "--backbone",
            model_file,
            "--layer",
            "gap",
            "--out",
            out,
            "--cache-dir",
            tmp_path / "store",
        )
        == 0
    )
    (stored,) = finished
    assert f"{9 - stored} computed, {stored} from the store" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (
            ["extract", "{folder}", "--backbone", "nope", "--out", "{tmp}/x.npz"],
            2,
            "Unknown backbone",
        ),
        (
            [
                "extract",
                "{folder}",
                "--backbone",
                "{model}",
                "--layer",
                "conv9",
                "--out",
                "{tmp}/x.npz",
            ],
            2,
            "no layer 'conv9'",
        ),
        (
            ["extract", "{folder}", "--backbone", "{model}", "--out", "{tmp}/x.csv"],
            2,
            ".npz or .parquet",
        ),
        (
            ["extract", "{tmp}/missing", "--backbone", "{model}", "--out", "{tmp}/x.npz"],
            2,
            "missing",
        ),
    ],
)
def test_bad_arguments_exit_2(tmp_path, folder, model_file, capsys, argv, code, message):
    argv = [a.format(folder=folder, tmp=tmp_path, model=model_file) for a in argv]
    assert main(argv) == code
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


def test_no_usable_image_exits_1(tmp_path, model_file, capsys):
    root = tmp_path / "bad"
    root.mkdir()
    (root / "a.png").write_bytes(b"nope")
    out = tmp_path / "x.npz"
    assert _run("extract", root, "--backbone", model_file, "--out", out, "--no-store") == 1
    assert not out.exists() and "a.png" in capsys.readouterr().err


def test_tables_and_cache_commands(tmp_path, capsys, model_file):
    assert _run("backbones") == 0
    text = capsys.readouterr().out
    assert "vgg16" in text and "224x224" in text and "random, offline" in text
    assert _run("layers", model_file) == 0
    text = capsys.readouterr().out
    assert "conv2" in text and "16x16x8" in text
    store = FeatureStore(tmp_path / "c")
    store.put("k", np.ones(3, np.float32))
    assert _run("cache", "info", "--cache-dir", tmp_path / "c") == 0
    assert "entries" in capsys.readouterr().out
    assert _run("cache", "clear", "--cache-dir", tmp_path / "c") == 0
    assert FeatureStore(tmp_path / "c").info()["entries"] == 0


@pytest.mark.parametrize("command", ["extract", "check", "backbones", "layers", "cache"])
def test_help_has_an_example(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "example:" in capsys.readouterr().out


@pytest.mark.slow
def test_kill_9_mid_run_then_resume_gives_the_same_file(tmp_path, model_file):
    root = tmp_path / "many"
    root.mkdir()
    for s in range(60):
        (root / f"{s:03d}.png").write_bytes(_png(s, size=(64, 64)))
    env = {**os.environ, "FEATLIB_CACHE_DIR": str(tmp_path / "store")}
    argv = [
        sys.executable,
        "-m",
        "featlib",
        "extract",
        str(root),
        "--backbone",
        str(model_file),
        "--layer",
        "gap",
        "--batch-size",
        "1",
    ]
    out = tmp_path / "resumed.npz"
    child = subprocess.Popen([*argv, "--out", str(out)], env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while FeatureStore(tmp_path / "store").info()["entries"] < 10:
        assert child.poll() is None and time.monotonic() < deadline, "extraction ended too soon"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    done_before = FeatureStore(tmp_path / "store").info()["entries"]
    assert not out.exists()
    resumed = subprocess.run([*argv, "--out", str(out)], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    computed = int(resumed.stdout.split(" computed")[0].rsplit(" ", 1)[1])
    assert computed <= 60 - done_before + 1
    clean = tmp_path / "clean.npz"
    subprocess.run(
        [*argv, "--out", str(clean), "--no-store"], env=env, check=True, capture_output=True
    )
    with np.load(out) as a, np.load(clean) as b:
        np.testing.assert_allclose(a["features"], b["features"], rtol=1e-6)
        assert list(a["paths"]) == list(b["paths"])


FEATLIB = Path(sys.executable).with_name("featlib")  # the installed command

BAD_ARGUMENTS = [
    [],
    ["extract"],
    ["extract", "images", "--out", "x.txt"],
    ["extract", "missing", "--out", "x.npz"],
    ["extract", "bad.csv", "--out", "x.npz"],
    ["extract", "images", "--out", "no/such/folder/x.npz"],
    ["extract", "images", "--out", "x.npz", "--batch-size", "0"],
    ["extract", "images", "--out", "x.npz", "--seed", "-1"],
    ["extract", "images", "--out", "x.npz", "--pooling", "mean"],
    ["extract", "images", "--out", "x.npz", "--precision", "int8"],
    ["extract", "images", "--out", "x.npz", "--backbone", "vgg61"],
    ["extract", "images", "--out", "x.npz", "--weights", "bogus"],
    ["extract", "images", "--out", "x.npz", "--backbone", "tiny.keras", "--layer", "conv9"],
    ["check", "images", "--out", "x.pdf"],
    ["check", "images", "--out", "x.html", "--threshold", "dupes=0.9"],
    ["check", "images", "--out", "x.html", "--threshold", "outliers=high"],
    ["backbones", "extra"],
    ["layers", "nope"],
    ["layers", "vgg16", "--preprocessing", "zscore"],
    ["cache", "drop"],
    ["weights", "fetch", "nope"],
    ["weights", "import", "missing.h5"],
]


def _featlib(cwd: Path, *argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(FEATLIB), *argv], cwd=cwd, capture_output=True, text=True, env=env, timeout=300
    )


def _imported(run: subprocess.CompletedProcess) -> set[str]:
    """Modules a run imported, from its ``PYTHONPROFILEIMPORTTIME`` lines."""
    lines = [ln for ln in run.stderr.splitlines() if ln.startswith("import time:")]
    return {ln.rsplit("|", 1)[1].strip() for ln in lines}


@pytest.mark.parametrize("argv", BAD_ARGUMENTS, ids=" ".join)
def test_bad_arguments_get_one_line_and_exit_2_from_the_installed_command(
    tmp_path, folder, model_file, argv
):
    (tmp_path / "bad.csv").write_bytes(b"\xff\xfe not UTF-8")
    run = _featlib(tmp_path, *argv)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    assert not list(tmp_path.glob("x.*"))


def test_tensorflow_start_up_notices_only_with_verbose(tmp_path, model_file):
    quiet = _featlib(tmp_path, "layers", "tiny.keras")
    loud = _featlib(tmp_path, "--verbose", "layers", "tiny.keras")
    assert quiet.returncode == loud.returncode == 0
    assert "conv2" in quiet.stdout and quiet.stdout == loud.stdout
    notices = ("oneDNN custom operations", "Could not find cuda drivers", "absl::InitializeLog")
    assert any(n in loud.stderr for n in notices)  # this TensorFlow does print them
    assert not [n for n in notices if n in quiet.stderr], quiet.stderr


def test_a_fully_stored_rerun_does_not_import_tensorflow(tmp_path, folder):
    env = {
        **os.environ,
        "FEATLIB_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONPROFILEIMPORTTIME": "1",
    }
    argv = ["extract", "images", "--backbone", "mobilenetv2", "--weights", "random", "--out"]
    first = _featlib(tmp_path, *argv, "first.npz", env=env)
    second = _featlib(tmp_path, *argv, "second.npz", env=env)
    assert first.returncode == second.returncode == 0, first.stderr[-2000:]
    assert "tensorflow" in _imported(first)
    assert not {"tensorflow", "keras"} & _imported(second)
    assert "0 computed, 9 from the store" in second.stdout  # default layer, precision "auto"
    assert (tmp_path / "first.npz").read_bytes() == (tmp_path / "second.npz").read_bytes()
    assert "dogs/broken.png" in (tmp_path / "second.npz.errors.csv").read_text()


def test_python_m_featlib_works_from_any_folder_and_lists_backbones_without_tensorflow(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "featlib", "backbones"], cwd=tmp_path, capture_output=True,
        text=True, env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"},
    )  # fmt: skip
    assert run.returncode == 0 and "mobilenetv2" in run.stdout
    assert "featlib.cli" in _imported(run) and "tensorflow" not in _imported(run)
