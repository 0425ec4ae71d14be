"""featlib.analysis.checks on a small labelled set with planted problems whose answers are known.

Precision bound used throughout: at the default thresholds at most 5% of the clean images
(those without a planted problem of that kind) are flagged.
"""

import csv
import io

import numpy as np
import pytest
from skimage.color import rgb2gray
from skimage.filters import gaussian, laplace
from skimage.measure import shannon_entropy

from featlib.analysis import checks, probe
from featlib.analysis.checks import dataset, pixels
from featlib.analysis.checks.dataset import check_dataset
from featlib.analysis.checks.issues import DEFAULT_THRESHOLDS, ISSUES
from featlib.analysis.checks.report import CheckReport
from featlib.errors import FeatlibError

MAX_FALSE_FLAG_RATE = 0.05
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16  # only the signature is looked at


def _texture(rng, h, w):
    """A textured colour image: smoothed noise stretched to 28..228."""
    img = gaussian(rng.random((h, w, 3)), sigma=1.0, channel_axis=-1)
    img = (img - img.min()) / (img.max() - img.min())
    return (img * 200 + 28).astype(np.uint8)


def _planted_features():
    """3 classes x 40 Gaussian clusters in 64-d, plus planted problems.

    Returns the pieces for check_dataset and the planted answers, by image index.
    """
    rng = np.random.default_rng(0)
    n_classes, per_class, d = 3, 40, 64
    centers = rng.normal(size=(n_classes, d)) * 1.5
    y = np.repeat(np.arange(n_classes), per_class)
    rows = list(centers[y] + rng.normal(size=(len(y), d)))
    labels = [f"class{c}" for c in y]
    sha256s = [f"sha-{i}" for i in range(len(y))]
    splits = ["train" if i % 4 else "test" for i in range(len(y))]

    def add(vector, label, sha, split):
        rows.append(vector)
        labels.append(label)
        sha256s.append(sha)
        splits.append(split)
        return len(rows) - 1

    # Image 4 is in "test" like its copy; image 50 is in "train", its copy in "test".
    exact = {(i, add(rows[i], labels[i], sha256s[i], "test")) for i in (4, 50)}
    near = {
        (i, add(rows[i] + rng.normal(size=d) * 0.01, labels[i], f"near-{i}", "train"))
        for i in (7, 90)
    }
    flipped = {10: "class1", 55: "class2", 100: "class0"}
    for i, wrong in flipped.items():
        labels[i] = wrong
    outlier = add(rng.normal(size=d) * 10, "class0", "far-away", "train")
    features = np.array(rows, dtype=np.float32)
    return {
        "sha256s": sha256s,
        "labels": labels,
        "features": features,
        "splits": splits,
    }, {"exact": exact, "near": near, "flipped": set(flipped), "outlier": outlier}


def _planted_pixels(n):
    """n textured images of 48-96 px, the last few replaced by planted problems."""
    rng = np.random.default_rng(1)
    images = [_texture(rng, *rng.integers(48, 97, size=2)) for _ in range(n)]
    # A picture of its own for each problem: one picture darkened and blurred would be two
    # copies of it, near duplicates by their hashes.
    dark, blurry, overexposed, grayscale = (_texture(rng, 64, 64) for _ in range(4))
    planted = {
        "dark": (dark * 0.1).astype(np.uint8),
        "blurry": gaussian(blurry, sigma=3, channel_axis=-1, preserve_range=True).astype(np.uint8),
        "tiny": _texture(rng, 16, 16),
        "overexposed": (overexposed * 0.2 + 200).astype(np.uint8),
        "grayscale": np.repeat(grayscale[..., :1], 3, axis=2),
        "odd_aspect": _texture(rng, 32, 160),  # 5:1
        "low_information": np.full((64, 64, 3), (120, 60, 30), np.uint8),
    }
    first = n - len(planted)
    images[first:] = planted.values()
    return images, {issue: first + k for k, issue in enumerate(planted)}


@pytest.fixture(scope="module")
def planted():
    pieces, answers = _planted_features()
    n = len(pieces["labels"])
    pixels, pixel_answers = _planted_pixels(n)
    names = [f"img{i:03d}.png" for i in range(n)]
    report = check_dataset(**pieces, names=names, pixels=pixels)
    return report, answers, pixel_answers, pieces


def _flagged_images(report: CheckReport, issue: str) -> set[int]:
    return set(np.flatnonzero(report.image_flags()[issue]).tolist())


def test_every_issue_is_computed(planted):
    report = planted[0]
    assert tuple(report.tables) == ISSUES
    assert report.skipped == {}
    assert [issue for issue, _, _ in report.summary()] == list(ISSUES)


def test_exact_duplicates_are_found_with_leakage(planted):
    report, answers, _, _ = planted
    rows = report.flagged("exact_duplicates")
    assert {(r["index_a"], r["index_b"]) for r in rows} == answers["exact"]
    assert {r["index_a"]: r["leakage"] for r in rows} == {4: False, 50: True}
    assert all(r["copies"] == 2 for r in rows)


def test_near_duplicates_are_found_and_precise(planted):
    report, answers, _, _ = planted
    rows = report.flagged("near_duplicates")
    assert {(r["index_a"], r["index_b"]) for r in rows} == answers["near"]
    assert all(r["similarity"] > 0.999 for r in rows)
    # Images 7 and 90 and their near copies are all in "train".
    assert not any(r["leakage"] for r in rows)


def test_outliers_recall_and_precision(planted):
    report, answers, _, pieces = planted
    table = report.table("outliers")
    assert table.rows[0][0] == answers["outlier"]
    flagged = _flagged_images(report, "outliers")
    assert answers["outlier"] in flagged
    clean = len(pieces["labels"]) - 1
    assert len(flagged - {answers["outlier"]}) <= MAX_FALSE_FLAG_RATE * clean
    scores = table.column("score")
    median = np.median(scores)  # copies repeat a score; the rule uses distinct contents
    assert table.threshold > median


def test_copies_share_their_outlier_score(planted):
    report, answers, _, _ = planted
    table = report.table("outliers")
    score = dict(zip(table.column("index"), table.column("score"), strict=True))
    for a, b in answers["exact"]:
        assert score[a] == score[b]


def test_label_issues_recall_precision_and_suggestion(planted):
    report, answers, _, pieces = planted
    rows = {r["index"]: r for r in report.flagged("label_issues")}
    assert answers["flipped"] <= set(rows)
    true_labels = {10: "class0", 55: "class1", 100: "class2"}
    for i in answers["flipped"]:
        assert rows[i]["suggested_label"] == true_labels[i]
        assert rows[i]["label_prob"] < DEFAULT_THRESHOLDS["label_issues"]
    others = set(rows) - answers["flipped"] - {answers["outlier"]}
    assert len(others) <= MAX_FALSE_FLAG_RATE * len(pieces["labels"])


def test_separability_figures(planted):
    sep = planted[0].separability
    assert sep.classes == ("class0", "class1", "class2")
    assert sep.class_counts == {"class0": 43, "class1": 41, "class2": 41}
    assert sep.imbalance_ratio == pytest.approx(43 / 41)
    assert sep.n_folds == 5 and sep.excluded_classes == ()
    assert sep.confusion.shape == (3, 3) and sep.confusion.sum() == 125
    assert sep.accuracy > 0.9 and sep.accuracy > sep.chance_accuracy
    assert set(sep.per_class_accuracy) == set(sep.classes)
    assert 0.3 < sep.silhouette <= 1


def test_random_labels_probe_near_chance():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(150, 16)).astype(np.float32)
    labels = [str(v) for v in rng.integers(0, 3, size=150)]
    sep = check_dataset([str(i) for i in range(150)], labels, x).separability
    assert sep.accuracy < 0.55
    assert abs(sep.silhouette) < 0.1


@pytest.mark.parametrize(
    "issue",
    ["dark", "overexposed", "blurry", "low_information", "grayscale", "tiny", "odd_aspect"],
)
def test_image_quality_recall_and_precision(planted, issue):
    report, _, pixel_answers, _ = planted
    flagged = _flagged_images(report, issue)
    assert pixel_answers[issue] in flagged
    clean = set(range(len(report.names))) - set(pixel_answers.values())
    assert len(flagged & clean) <= MAX_FALSE_FLAG_RATE * len(clean)


def test_odd_size_flags_the_tiny_image_only(planted):
    report, _, pixel_answers, _ = planted
    assert _flagged_images(report, "odd_size") <= {pixel_answers["tiny"]}
    row = next(r for r in report.table("tiny").as_dicts() if r["index"] == pixel_answers["tiny"])
    assert (row["width"], row["height"], row["score"]) == (16, 16, 16.0)


def test_entropy_is_skimage_shannon_entropy():
    img = _texture(np.random.default_rng(5), 40, 50)
    stats, sizes, _ = pixels.pixel_stats([img], ["x"])
    expected = shannon_entropy(np.round(rgb2gray(img) * 255).astype(np.uint8))
    assert stats[0, 2] == pytest.approx(expected, rel=1e-2)
    assert sizes == [(40, 50)]


def test_blur_score_is_variance_of_skimage_laplace():
    img = _texture(np.random.default_rng(7), 60, 70)
    stats, _, _ = pixels.pixel_stats([img], ["x"])
    gray = (img.astype(np.float32) @ pixels._GRAY_WEIGHTS) / 255
    np.testing.assert_allclose(gray, rgb2gray(img), atol=1e-5)
    assert stats[0, 1] == pytest.approx(laplace(gray).var() * 255**2, rel=1e-5)


def test_blur_score_does_not_depend_on_resolution():
    img = _texture(np.random.default_rng(6), 256, 256)
    big = np.repeat(np.repeat(img, 4, axis=0), 4, axis=1)  # 1024 px, same content
    stats, _, _ = pixels.pixel_stats([img, big], ["small", "big"])
    assert stats[1, 1] == pytest.approx(stats[0, 1], rel=1e-4)


def test_thresholds_change_flags_without_recomputing(planted, monkeypatch):
    report = planted[0]

    def fail(*args, **kwargs):
        raise AssertionError("recomputed")

    for module, name in (
        (dataset, "nearest_all"),
        (probe, "cross_val_predict"),
        (dataset, "pixel_stats"),
        (pixels, "convolve"),
    ):
        monkeypatch.setattr(module, name, fail)
    before = report.summary()
    strict = report.with_thresholds(near_duplicates=0.99999999, blurry=1e9, outliers=0.0)
    after = dict((issue, n) for issue, n, _ in strict.summary())
    assert after["near_duplicates"] == 0
    assert after["blurry"] == len(report.names)
    copies = {i for pair in planted[1]["exact"] for i in pair}
    assert after["outliers"] == len(report.names) - len(copies)  # a copied image is no outlier
    assert strict.table("blurry").rows is report.table("blurry").rows
    assert report.summary() == before  # the original is unchanged
    assert len(report.flagged("near_duplicates", threshold=0.9999999)) < 2
    assert strict.thresholds["blurry"] == 1e9


@pytest.mark.parametrize(
    ("thresholds", "match"),
    [
        ({"near_duplicates": 0.5}, "at least 0.9"),
        ({"exact_duplicates": 0.5}, "no threshold"),
        ({"blurry": float("nan")}, "finite"),
        ({"blurry": "high"}, "number"),
        ({"shiny": 1.0}, "unknown issue"),
    ],
)
def test_bad_thresholds_raise(planted, thresholds, match):
    with pytest.raises(FeatlibError, match=match):
        planted[0].with_thresholds(**thresholds)


def test_initial_thresholds_apply():
    pieces, _ = _planted_features()
    report = check_dataset(**pieces, thresholds={"near_duplicates": 0.999999999})
    assert report.thresholds["near_duplicates"] == 0.999999999
    with pytest.raises(FeatlibError, match="unknown issue"):
        check_dataset(**pieces, thresholds={"fuzzy": 1.0})


def test_csv_has_one_row_per_image(planted):
    report = planted[0]
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert len(rows) == len(report.names)
    assert [r["name"] for r in rows] == list(report.names)
    for issue in ISSUES:
        assert f"{issue}_score" in rows[0] and f"{issue}_flag" in rows[0]
    flags = report.image_flags()
    for issue in ISSUES:
        assert [int(r[f"{issue}_flag"]) for r in rows] == flags[issue].astype(int).tolist()
    assert rows[10]["suggested_label"] == "class0"
    # A suggestion only where the probe prefers another label; empty where it agrees.
    disagrees = {
        r["index"] for r in report.table("label_issues").as_dicts() if r["other_more_likely"]
    }
    assert {int(r["index"]) for r in rows if r["suggested_label"]} == disagrees
    assert len(disagrees) < 0.1 * len(rows)
    table_csv = list(csv.reader(io.StringIO(report.table("outliers").to_csv())))
    assert table_csv[0] == ["index", "name", "nearest_similarity", "score", "flagged"]
    assert len(table_csv) == len(report.names) + 1


def test_html_embeds_thumbnails_and_escapes_names():
    pieces, answers = _planted_features()
    names = [f"img{i}" for i in range(len(pieces["labels"]))]
    names[answers["outlier"]] = "<script>alert(1)</script>.png"
    report = check_dataset(**pieces, names=names)
    page = report.to_html(thumbnails={answers["outlier"]: PNG})
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.png" in page
    assert "data:image/png;base64," in page
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>")
    with pytest.raises(FeatlibError, match="neither PNG nor JPEG"):
        report.to_html(thumbnails={0: b"GIF89a"})


def test_missing_pieces_are_skipped_with_reasons():
    pieces, _ = _planted_features()
    n = len(pieces["labels"])
    sizes = [(48, 64)] * (n - 1) + [(100, 640)]
    report = check_dataset(pieces["sha256s"], [None] * n, pieces["features"], sizes=sizes)
    assert report.separability is None
    assert "no image has a label" in report.skipped["label_issues"]
    assert "no pixels" in report.skipped["blurry"]
    assert _flagged_images(report, "odd_aspect") == {n - 1}
    with pytest.raises(FeatlibError, match="not checked: no pixels"):
        report.table("dark")


def test_sizes_are_height_then_width_as_everywhere_in_featlib():
    pieces, _ = _planted_features()
    n = len(pieces["labels"])
    sizes = [(48, 64)] * (n - 1) + [(100, 640)]
    report = check_dataset(pieces["sha256s"], [None] * n, pieces["features"], sizes=sizes)
    row = next(r for r in report.table("odd_aspect").as_dicts() if r["index"] == n - 1)
    assert (row["width"], row["height"]) == (640, 100)
    same = check_dataset(pieces["sha256s"], [None] * n, pieces["features"], sizes=[(30, 40)] * n)
    assert "every image is 40×30 px" in same.facts


def test_singleton_classes_are_left_out_of_the_probe():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(31, 8)).astype(np.float32)
    labels = ["a", "b"] * 15 + ["lonely"]
    report = check_dataset([str(i) for i in range(31)], labels, x)
    assert report.separability.excluded_classes == ("lonely",)
    assert report.separability.class_counts["lonely"] == 1
    assert 30 not in report.table("label_issues").column("index")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"features": np.ones((2, 4), np.float32)}, "at least 3 samples"),
        ({"labels": ["a"] * 5}, "labels must have one entry per image"),
        ({"sha256s": [None] * 125}, "sha256s must be strings"),
        ({"labels": [1] * 125}, "labels must be strings or None"),
        ({"splits": ["train"] * 3}, "splits must have one entry"),
        ({"pixels": [np.zeros((8, 8, 3), np.float32)] * 125}, "uint8"),
        ({"pixels": [np.zeros((8, 8, 2), np.uint8)] * 125}, "uint8 array"),
        ({"pixels": [np.zeros((8, 8, 3), np.uint8)] * 3}, "one image per row"),
        ({"sizes": [(0, 5)] * 125}, "positive"),
        ({"near_duplicate_floor": 0.0}, "near_duplicate_floor"),
        ({"n_neighbors": 0}, "n_neighbors"),
    ],
)
def test_bad_inputs_raise(change, match):
    pieces, _ = _planted_features()
    with pytest.raises(FeatlibError, match=match):
        check_dataset(**{**pieces, **change})


def _clean_set(seed=4):
    """3 well-separated classes x 60 in 64-d, with textured colour pixels of varied sizes."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, 64)) * 3
    y = np.repeat(np.arange(3), 60)
    features = (centers[y] + rng.normal(size=(len(y), 64))).astype(np.float32)
    pixels = [_texture(rng, *rng.integers(48, 97, size=2)) for _ in y]
    return [f"c{i}" for i in range(len(y))], [f"class{c}" for c in y], features, pixels


def test_a_clean_set_flags_at_most_5_percent_per_issue():
    sha256s, labels, features, pixels = _clean_set()
    report = check_dataset(sha256s, labels, features, pixels=pixels)
    for issue, flags in report.image_flags().items():
        assert flags.sum() <= MAX_FALSE_FLAG_RATE * len(labels), issue
    assert report.facts == ()


@pytest.mark.slow
def test_bundled_faces_with_random_weights_pass_and_their_shared_traits_are_facts():
    """200 faces of 25x25 grey pixels: every one is tiny and grayscale, which is a fact about
    the set, not 200 issues; no issue flags more than 5 %."""
    import featlib

    faces = featlib.load_samples("faces")
    bb = featlib.load_backbone("mobilenetv2", "random")
    feats = featlib.extract_set(bb, faces, ["block_13_expand_relu"])
    report = checks.check_image_set(faces, feats.records, feats.features["block_13_expand_relu"])
    for issue, flags in report.image_flags().items():
        assert flags.sum() <= MAX_FALSE_FLAG_RATE * 200, issue
    assert report.facts[:2] == ("every image is 25×25 px", "every image is grayscale")
    assert sum("25×25" in fact for fact in report.facts) == 1  # said once, not per trait
    assert report.table("grayscale").n_flagged == report.table("tiny").n_flagged == 0
    sep = report.separability
    assert sep.accuracy_text() == f"{checks.percent(sep.accuracy)} ({sep.n_correct} of 200)"


def test_set_facts_name_what_many_images_share():
    sha256s, labels, features, _ = _clean_set()
    rng = np.random.default_rng(8)
    gray = [np.repeat(_texture(rng, 20, 20)[..., :1], 3, axis=2) for _ in labels]
    gray[:60] = [(g * 0.1).astype(np.uint8) for g in gray[:60]]  # a third of the set is dark
    report = check_dataset(sha256s, labels, features, pixels=gray)
    assert report.facts == (
        "every image is 20×20 px",
        "every image is grayscale",
        "60 of 180 images are dark (mean brightness below 0.15)",
        "60 of 180 images are soft (variance of the Laplacian below 50)",  # dim: less contrast
    )
    assert report.table("dark").n_flagged == 0
    assert report.table("grayscale").n_flagged == 0 and report.table("tiny").n_flagged == 0
    assert "About the set" in report.to_html() and "every image is grayscale" in report.to_html()


def test_a_rare_problem_is_flagged_at_the_absolute_bound():
    sha256s, labels, features, pixels = _clean_set()
    pixels[5] = np.repeat(pixels[5][..., :1], 3, axis=2)
    report = check_dataset(sha256s, labels, features, pixels=pixels)
    assert report.thresholds["grayscale"] == DEFAULT_THRESHOLDS["grayscale"]
    assert _flagged_images(report, "grayscale") == {5}
    assert report.facts == ()


def test_an_image_with_a_near_duplicate_is_not_an_outlier():
    """Three crops of one photo, far from the rest: near duplicates of each other, so none of
    them is an outlier; at a near-duplicate threshold above their similarity they are."""
    sha256s, labels, features, _ = _clean_set()
    rng = np.random.default_rng(9)
    far = rng.normal(size=64) * 12
    crops = np.array([far + rng.normal(size=64) * 0.05 for _ in range(3)], np.float32)
    features = np.vstack([features, crops])
    report = check_dataset([*sha256s, "x", "y", "z"], [*labels, "class0"] * 1 + ["class0"] * 2,
                           features)  # fmt: skip
    crops_at = {180, 181, 182}
    assert crops_at <= _flagged_images(report, "near_duplicates")
    assert not crops_at & _flagged_images(report, "outliers")
    similarity = report.table("near_duplicates").column("similarity").max()
    strict = report.with_thresholds(near_duplicates=float(similarity) + 1e-6)
    assert strict.table("outliers").exclude_at == strict.thresholds["near_duplicates"]
    assert crops_at <= _flagged_images(strict, "outliers")


def test_thresholds_are_relative_to_the_set():
    """The same absolute outlier distance is ordinary in a spread-out set and unusual in a
    tight one: each set draws its own line."""
    rng = np.random.default_rng(10)
    tight = rng.normal(size=(100, 32)) * 0.1 + 5
    spread = rng.normal(size=(100, 32))
    names = [str(i) for i in range(100)]
    a = check_dataset(names, [None] * 100, tight.astype(np.float32))
    b = check_dataset(names, [None] * 100, spread.astype(np.float32))
    assert a.thresholds["outliers"] != b.thresholds["outliers"]
    for report in (a, b):
        assert report.table("outliers").n_flagged <= MAX_FALSE_FLAG_RATE * 100


def test_accuracy_text_counts_the_errors(planted):
    sep = planted[0].separability
    n, right = sep.confusion.sum(), np.trace(sep.confusion)
    assert (sep.n_images, sep.n_correct) == (n, right) and right < n
    assert sep.accuracy_text() == f"{checks.percent(right / n)} ({right} of {n})"
    assert sep.accuracy_text().split()[0] != "100"


def test_summary_rows_titles_and_pairs(planted):
    report = planted[0]
    rows = {row["issue"]: row for row in report.summary_rows()}
    assert list(rows) == [*(checks.TITLES[i] for i in ISSUES), "Leakage across splits"]
    # image 50 is in "train", its copy in "test"
    assert rows["Leakage across splits"]["images"] == "2"
    assert rows["Leakage across splits"]["meaning"].endswith("(test 1, train 1)")
    assert (
        rows["Exact duplicates"]["pairs"] == "2" and rows["Exact duplicates"]["threshold"] == "none"
    )
    assert rows["Dark"]["pairs"] == ""
    assert [t.pairwise for t in report.tables.values()][:3] == [True, True, False]
    page = report.to_html()
    assert "<h2>Exact duplicates (2 pairs)</h2>" in page and "exact_duplicates (" not in page
    skipped = check_dataset(*_clean_set()[:3]).summary_rows()
    assert {"issue": "Dark", "images": "", "pairs": "", "threshold": ""}.items() <= next(
        r for r in skipped if r["issue"] == "Dark"
    ).items()


def test_an_issue_table_with_no_rows_offers_no_threshold_range():
    features = np.random.default_rng(11).normal(size=(30, 64)).astype(np.float32)
    report = check_dataset([str(i) for i in range(30)], ["a", "b", "c"] * 10, features)
    table = report.table("near_duplicates")
    assert table.rows == () and table.score_range() is None
    assert report.table("outliers").score_range() is not None


def test_too_few_contents_to_call_one_an_outlier():
    """Three images, two of them one file: two contents are no basis for an outlier."""
    x = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32)
    report = check_dataset(["a", "a", "b"], [None] * 3, x)
    assert report.table("outliers").threshold is not None
    assert report.table("outliers").n_flagged == 0
    assert report.table("exact_duplicates").n_flagged == 1
