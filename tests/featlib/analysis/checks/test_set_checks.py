"""Checks of a set as a whole (featlib.analysis.checks.set_checks): rare classes, labels that image
properties predict (shortcuts), duplicates across splits, alone and through
check_dataset's report."""

import csv
import io

import numpy as np
import pytest
from skimage.filters import gaussian

from featlib.analysis.checks.dataset import check_dataset
from featlib.analysis.checks.set_checks import (
    find_shortcut,
    leaked_images,
    property_vectors,
    rare_classes,
)


def _texture(rng, h, w, scale=1.0):
    img = gaussian(rng.random((h, w, 3)), sigma=1.0, channel_axis=-1)
    img = (img - img.min()) / (img.max() - img.min())
    return ((img * 200 + 28) * scale).astype(np.uint8)


def _pieces(n_per_class=30, dark_class=None, seed=0):
    """Two classes of textured pictures with features that separate them; ``dark_class``'s
    pictures are darkened to a third."""
    rng = np.random.default_rng(seed)
    labels = ["cat"] * n_per_class + ["dog"] * n_per_class
    pixels = [
        _texture(rng, *rng.integers(48, 97, size=2), 0.3 if label == dark_class else 1.0)
        for label in labels
    ]
    centres = rng.normal(size=(2, 32)) * 2
    y = np.array([label == "dog" for label in labels], dtype=int)
    features = (centres[y] + rng.normal(size=(len(y), 32))).astype(np.float32)
    return [f"s{i}" for i in range(len(labels))], labels, features, pixels


def test_a_much_rarer_class_is_named():
    rare = rare_classes(["cat"] * 40 + ["dog"] * 38 + ["fox"] * 3 + [None] * 9)
    assert [(r.label, r.count, r.typical) for r in rare] == [("fox", 3, 38.0)]
    assert rare[0].sentence() == (
        "class 'fox' has 3 images, 7.9\N{NO-BREAK SPACE}% of a typical class (38): a model will "
        "tend to ignore it"
    )


@pytest.mark.parametrize(
    "labels", [["a"] * 10 + ["b"] * 6, ["a"] * 10, [None] * 5, ["a"] * 50 + ["b"] * 11]
)
def test_no_rare_class_without_one_much_rarer(labels):
    assert rare_classes(labels) == ()


def test_a_dark_class_is_a_shortcut_named_by_its_property():
    sha256s, labels, features, pixels = _pieces(dark_class="cat")
    report = check_dataset(sha256s, labels, features, pixels=pixels)
    shortcut = report.shortcut
    assert shortcut is not None
    assert shortcut.property == "brightness" and shortcut.label in ("cat", "dog")
    assert shortcut.balanced_accuracy > 0.9 and shortcut.chance == 0.5
    word = "dark" if shortcut.label == "cat" else "bright"
    assert f"'{shortcut.label}' images are {word}" in shortcut.sentence()
    assert shortcut.sentence() in report.warnings
    assert "a shortcut a model could learn" in report.to_html()


def test_properties_that_do_not_follow_the_labels_are_no_shortcut():
    sha256s, labels, features, pixels = _pieces()
    report = check_dataset(sha256s, labels, features, pixels=pixels)
    assert report.shortcut is None and report.rare_classes == () and report.warnings == ()


def test_a_shortcut_in_the_size_alone_is_found_without_pixels():
    rng = np.random.default_rng(4)
    labels = ["a"] * 20 + ["b"] * 20
    sizes = [(int(w), int(w)) for w in rng.integers(30, 60, 20)] + [
        (int(w), int(w * 2)) for w in rng.integers(30, 60, 20)
    ]
    names, values = property_vectors(None, sizes)
    assert names == ("pixel count", "aspect ratio")
    shortcut = find_shortcut(names, values, labels, list(range(40)))
    assert shortcut is not None and shortcut.property == "aspect ratio"
    assert "images are tall" in shortcut.sentence() or "images are wide" in shortcut.sentence()


def test_copies_count_once_for_a_shortcut():
    """Forty copies of two pictures, one per class: each content counts once, so no class has
    the 2 distinct images a cross-validated fit needs, however well the copies 'predict'."""
    names, values = ("brightness",), np.array([[0.1]] * 20 + [[0.9]] * 20)
    groups = [0] * 20 + [20] * 20
    assert find_shortcut(names, values, ["a"] * 20 + ["b"] * 20, groups) is None


def test_leaked_images_pass_on_to_copies():
    rows = [
        {"index_a": 0, "index_b": 3, "leakage": True},
        {"index_a": 1, "index_b": 2, "leakage": False},
    ]
    assert leaked_images(rows, [0, 1, 2, 3, 0]).tolist() == [True, False, False, True, True]


def test_leakage_is_counted_per_split_and_follows_the_threshold():
    sha256s, labels, features, pixels = _pieces()
    splits = ["train" if i % 3 else "test" for i in range(len(labels))]
    features[1] = features[0] + 0.001  # 0 is in "test", 1 in "train": a near duplicate
    pixels[1] = pixels[0]
    sha256s[5] = sha256s[4]  # 4 and 5 are both in "train": a copy, no leak
    report = check_dataset(sha256s, labels, features, pixels=pixels, splits=splits)
    assert report.leakage() == {"test": 1, "train": 1}
    assert any("2 images have an exact or near duplicate in another split" in w
               for w in report.warnings)  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert [int(r["leakage"]) for r in rows[:6]] == [1, 1, 0, 0, 0, 0]
    summary = {row["issue"]: row for row in report.summary_rows()}
    assert summary["Leakage across splits"]["images"] == "2"
    assert "(test 1, train 1)" in summary["Leakage across splits"]["meaning"]


def test_the_csv_marks_images_of_a_rare_class():
    sha256s, labels, features, _ = _pieces()
    labels[:27] = ["dog"] * 27  # 3 cats (27-29), 57 dogs
    report = check_dataset(sha256s, labels, features)
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert [i for i, r in enumerate(rows) if r["rare_class"] == "1"] == [27, 28, 29]
    assert "leakage" not in rows[0]
    assert report.warnings[0].startswith("class 'cat' has 3 images")
