"""Dataset checks side by side: featlib and cleanvision on one set with planted problems, each
as its user runs it on a folder.

The set: the pictures of ``tests/featlib/analysis/checks/test_hashes.py`` (offline scikit-image
photos, each whole and as four crops), one class folder per photo, written as PNG; then planted
among them: exact copies, edited copies (one per edit of that test: resized, rotated up to 5
degrees, cropped to 80 %, JPEG-30, brightened, darkened, colour-shifted, mirrored), dark,
blurred and mislabelled pictures (put in another photo's folder) and noise images. Every other
picture is clean. Per planted problem, recall is the share of planted images a tool flags for
it; false flags, the share of clean pictures it flags for that kind of problem.

- featlib: ``open_source`` -> ``extract_set`` (VGG16, offline weights, the app's default layer)
  -> ``check_image_set``, all in the timed run (the network is built before the clock starts).
- cleanvision: ``Imagelab(data_path=...).find_issues()`` (its defaults). It does not check labels
  or outliers in feature space.

imagededup is not here: it imports torch and torchvision, and the only torch this machine can
install offline (2.13.0+cpu) does not load torchvision's compiled operators ("operator
torchvision::nms does not exist"). ``benchmarks/near_duplicates.py`` compares with its default
method instead (a whole-image pHash within 10 bits).

    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/checks_vs.py
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import format_table, machine
from PIL import Image, ImageEnhance, ImageFilter

import featlib
from featlib.models.layers import block_outputs, default_layer, list_layers
from tests.featlib.analysis.checks.test_hashes import EDITS, PHOTOS, distinct_pictures

PLANTED = {"exact duplicate": 6, "near duplicate": len(EDITS) * 2, "dark": 3, "blurry": 3,
           "mislabelled": 5, "noise": 2}  # fmt: skip
FEATLIB = {"exact duplicate": ("exact_duplicates",), "near duplicate": ("near_duplicates",),
           "dark": ("dark",), "blurry": ("blurry",), "mislabelled": ("label_issues",),
           "noise": ("outliers", "low_information")}  # fmt: skip
CLEANVISION = {"exact duplicate": ("exact_duplicates",), "near duplicate": ("near_duplicates",),
               "dark": ("dark",), "blurry": ("blurry",),
               "noise": ("odd_size", "low_information")}  # fmt: skip


def planted_set(folder: Path, seed: int = 0) -> dict[str, str | None]:
    """Write the set into ``folder/<class>/<name>.png``; returns path -> planted problem (None
    for a clean picture, ``"original"`` for a picture that has a planted copy)."""
    rng = np.random.default_rng(seed)
    pictures = distinct_pictures(rng)
    classes = [*PHOTOS, "stereo_motorcycle"]
    label = [classes[i // 5] for i in range(len(pictures))]  # a photo, then its four crops
    kinds: dict[str, str | None] = {}

    def write(image: Image.Image, cls: str, name: str, kind: str | None) -> None:
        path = folder / cls / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.convert("RGB").save(path)
        kinds[f"{cls}/{name}.png"] = kind

    order = rng.permutation(len(pictures))
    picks = iter(order.tolist())
    copied = [next(picks) for _ in range(PLANTED["exact duplicate"] + PLANTED["near duplicate"])]
    special = {
        k: [next(picks) for _ in range(PLANTED[k])] for k in ("dark", "blurry", "mislabelled")
    }
    for i, picture in enumerate(pictures):
        if i in special["dark"]:
            write(ImageEnhance.Brightness(picture).enhance(0.12), label[i], f"p{i}", "dark")
        elif i in special["blurry"]:
            write(picture.filter(ImageFilter.GaussianBlur(4)), label[i], f"p{i}", "blurry")
        elif i in special["mislabelled"]:
            wrong = classes[
                (classes.index(label[i]) + 1 + rng.integers(len(classes) - 1)) % len(classes)
            ]
            write(picture, wrong, f"p{i}", "mislabelled")
        else:
            write(picture, label[i], f"p{i}", "original" if i in copied else None)
    for i in copied[: PLANTED["exact duplicate"]]:
        shutil.copy(folder / label[i] / f"p{i}.png", folder / label[i] / f"p{i}_copy.png")
        kinds[f"{label[i]}/p{i}_copy.png"] = "exact duplicate"
    near = copied[PLANTED["exact duplicate"] :]
    for n, i in enumerate(near):
        edit = list(EDITS)[n % len(EDITS)]
        write(EDITS[edit](pictures[i], rng), label[i], f"p{i}_{edit}", "near duplicate")
    for n in range(PLANTED["noise"]):
        noise = rng.integers(0, 256, (160, 160, 3), dtype=np.uint8)
        write(Image.fromarray(noise), classes[n], f"noise{n}", "noise")
    return kinds


def scores(flagged: dict[str, set[str]], kinds: dict, mapping: dict) -> dict[str, tuple]:
    """problem -> (recall, false-flag share of the clean pictures) from issue -> flagged paths."""
    clean = [p for p, k in kinds.items() if k is None]
    out = {}
    for problem, issues in mapping.items():
        hit = set().union(*(flagged.get(i, set()) for i in issues))
        planted = [p for p, k in kinds.items() if k == problem]
        out[problem] = (np.mean([p in hit for p in planted]), np.mean([p in hit for p in clean]))
    return out


def run_featlib(folder: Path) -> tuple[dict, float]:
    bb = featlib.load_backbone("vgg16", weights="offline")
    layer = default_layer(list_layers(bb), block_outputs(bb))
    ex = featlib.Extractor(bb, [layer], pooling="avg", precision="auto")
    start = time.perf_counter()
    images = featlib.open_source(folder)
    feats = featlib.extract_set(bb, images, [layer], extractor=ex)
    report = featlib.check_image_set(images, feats.records, feats.features[layer])
    seconds = time.perf_counter() - start
    names = [r.name for r in feats.records]
    flags = report.image_flags()
    return {i: {names[j] for j in np.flatnonzero(f)} for i, f in flags.items()}, seconds


def run_cleanvision(folder: Path) -> tuple[dict, float]:
    from cleanvision import Imagelab

    start = time.perf_counter()
    lab = Imagelab(data_path=str(folder))
    lab.find_issues(verbose=False)
    seconds = time.perf_counter() - start
    issues = lab.issues
    flagged = {}
    for column in issues.columns:
        if column.startswith("is_") and column.endswith("_issue"):
            name = column.removeprefix("is_").removesuffix("_issue")
            paths = issues.index[issues[column]]
            flagged[name] = {Path(p).relative_to(folder).as_posix() for p in paths}
    return flagged, seconds


def main() -> None:
    print(f"# checks side by side; {machine()}")
    with tempfile.TemporaryDirectory(prefix="featlib-bench-vs-") as tmp:
        folder = Path(tmp) / "set"
        kinds = planted_set(folder)
        n_clean = sum(k is None for k in kinds.values())
        print(f"{len(kinds)} images: {n_clean} clean pictures, "
              + ", ".join(f"{n} {k}" for k, n in PLANTED.items()))  # fmt: skip
        results = {"featlib": (run_featlib(folder), FEATLIB),
                   "cleanvision 0.3.7": (run_cleanvision(folder), CLEANVISION)}  # fmt: skip
    rows = []
    for problem in PLANTED:
        row = [problem]
        for (flagged, _), mapping in results.values():
            if problem in mapping:
                recall, false = scores(flagged, kinds, {problem: mapping[problem]})[problem]
                row.append(f"{recall:.2f} / {false:.1%}")
            else:
                row.append("not checked")
        rows.append(row)
    rows.append(["seconds", *(f"{s:.1f}" for (_, s), _ in results.values())])
    print(format_table(rows, ["planted: recall / clean flagged", *results]))


if __name__ == "__main__":
    main()
