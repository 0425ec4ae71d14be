"""The layer sweep: its figures are scikit-learn's on the same features, on classes that differ
only in texture the probe separates them at some block, and what it says in words is what its
numbers say."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import silhouette_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import featlib
from featlib.analysis import probe
from featlib.errors import FeatlibError
from featlib.teaching.sweep import (
    Sweep,
    describe_sweep,
    islands,
    layer_sweep,
    sweep_problem,
    sweep_scores,
)


def texture(rng, kind: str, side: int = 64) -> np.ndarray:
    """Stripes or dots at random phase, scale and position, grey, mean 128 and std 40:
    the classes differ in texture only."""
    y, x = np.mgrid[0:side, 0:side].astype(np.float64)
    if kind == "stripes":
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(5, 9)
        field = np.sin(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period)
    else:
        field = np.zeros((side, side))
        for cy, cx in rng.uniform(0, side, (int(rng.integers(12, 20)), 2)):
            field += np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * rng.uniform(1.5, 3) ** 2))
    field = (field - field.mean()) / field.std() * 40 + 128
    gray = np.clip(field, 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def labelled(counts: dict[str, int], seed: int = 0) -> featlib.ImageSet:
    """A ZIP of class folders (``kind/i.png``), read as a labelled image set."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for kind, n in counts.items():
            for i in range(n):
                zf.writestr(f"{kind}/{i}.png", png(texture(rng, kind)))
    return featlib.from_zip(buf.getvalue())


def old_sweep_probe():
    """The sweep's probe before it shared the checks' (folds that split copies)."""
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))


def shared_probe():
    """``featlib.analysis.probe``'s classifier, without its folds."""
    return make_pipeline(StandardScaler(), LogisticRegression(C=probe.C, max_iter=probe.MAX_ITER))


def copied_noise(n_distinct: int = 40, copies: int = 3, seed: int = 0):
    """Random features and random labels, each distinct row ``copies`` times under one label:
    nothing is learnable. Returns features, labels and the rows' content ids."""
    rng = np.random.default_rng(seed)
    x = np.repeat(rng.normal(size=(n_distinct, 64)), copies, axis=0)
    labels = np.repeat(rng.permutation(["a", "b"] * (n_distinct // 2)), copies)
    ids = np.repeat([f"sha-{i}" for i in range(n_distinct)], copies)
    return x, labels, ids


slow = pytest.mark.slow


@pytest.fixture(scope="module")
def textures() -> featlib.ImageSet:
    return labelled({"stripes": 12, "dots": 12})


@pytest.fixture(scope="module")
def vgg():
    return featlib.load_backbone("vgg16", weights="offline", input_size=(64, 64))


@slow
def test_figures_are_scikit_learns_on_the_same_features(vgg, textures):
    """Distinct images and at most 512 features: the probe's folds are StratifiedKFold's and
    no PCA runs, so scikit-learn alone gives the same accuracy."""
    sweep = layer_sweep(vgg, textures)
    feats = featlib.extract_set(vgg, textures, list(sweep.layers))
    y = np.array(feats.labels)
    for i, layer in enumerate(sweep.layers):
        x = feats.features[layer]
        unit = x / np.linalg.norm(x, axis=1, keepdims=True)
        cv = StratifiedKFold(5, shuffle=True, random_state=0)
        predicted = cross_val_predict(shared_probe(), unit, y, cv=cv)
        assert sweep.accuracy[i] == pytest.approx((predicted == y).mean())
        assert sweep.silhouette[i] == pytest.approx(silhouette_score(x, y, metric="cosine"))
        assert sweep.embeddings[i].shape == (24, 2)
    assert sweep.chance == 0.5


def test_copies_of_one_image_no_longer_inflate_the_accuracy():
    """Folds that split the copies let a probe recognise a picture it was trained on (near
    100 % on noise); the sweep's folds keep them together and it stays near chance."""
    x, labels, ids = copied_noise()
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    assert cross_val_score(old_sweep_probe(), x, labels, cv=cv).mean() > 0.95
    assert cross_val_score(shared_probe(), x, labels, cv=cv).mean() > 0.95
    accuracy, _ = sweep_scores(x, labels, groups=ids)
    assert abs(accuracy - 0.5) < 0.2
    assert sweep_scores(x, labels)[0] > 0.95  # without the ids the copies look distinct


@slow
def test_the_sweep_keeps_copied_files_in_one_fold(vgg):
    """The same through layer_sweep: a labelled ZIP whose pictures are random noise, each file
    stored three times under one random label; the sweep reads the files' SHA-256s itself."""
    rng = np.random.default_rng(1)
    labels = rng.permutation(["a", "b"] * 12)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i, label in enumerate(labels):
            noise = png(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
            for copy in range(3):
                zf.writestr(f"{label}/{i}_{copy}.png", noise)
    images = featlib.from_zip(buf.getvalue())
    sweep = layer_sweep(vgg, images)
    feats = featlib.extract_set(vgg, images, list(sweep.layers))
    y = np.array(feats.labels)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    for i, layer in enumerate(sweep.layers):
        x = feats.features[layer]
        assert cross_val_score(old_sweep_probe(), x, y, cv=cv).mean() > 0.9
        assert abs(sweep.accuracy[i] - 0.5) < 0.25


def test_a_label_whose_images_are_all_copies_is_refused():
    x, labels, ids = copied_noise(n_distinct=4)
    ids[labels == "a"] = "one picture"
    with pytest.raises(FeatlibError, match="2 different images per label"):
        sweep_scores(x, labels, groups=ids)
    problem = sweep_problem(labels.tolist(), groups=ids.tolist())
    assert "2 labels with 2 different images each; copies of one image count once" in problem
    assert "'a': 1" in problem and "'b': 2" in problem


@slow
def test_the_probe_separates_textures_at_some_block(vgg, textures):
    sweep = layer_sweep(vgg, textures)
    assert sweep.layers == tuple(i.name for i in featlib.block_outputs(vgg))
    assert sweep.accuracy.max() >= 0.95


@slow
def test_consecutive_projections_are_aligned(vgg, textures):
    sweep = layer_sweep(vgg, textures)
    for a, b in zip(sweep.embeddings, sweep.embeddings[1:], strict=False):
        aligned = featlib.procrustes_align(a, b)
        np.testing.assert_allclose(aligned, b, atol=1e-3 * np.abs(b).max())


@slow
def test_unlabelled_or_tiny_classes_are_refused(vgg):
    rng = np.random.default_rng(0)
    unlabelled = featlib.from_uploads([(f"{i}.png", png(texture(rng, "dots"))) for i in range(4)])
    with pytest.raises(FeatlibError, match="none of the 4 images has a label"):
        layer_sweep(vgg, unlabelled)
    with pytest.raises(FeatlibError, match="2 labels with 2 images"):
        layer_sweep(vgg, labelled({"stripes": 4, "dots": 1}))


def sweep_of(accuracy, silhouette, weights="trained", chance=0.5) -> Sweep:
    n = len(accuracy)
    return Sweep(
        layers=tuple(f"block{i}" for i in range(1, n + 1)), accuracy=np.array(accuracy),
        silhouette=np.array(silhouette), chance=chance, embeddings=(), labels=(), names=(),
        weights=weights,
    )  # fmt: skip


def read_out(*sweeps) -> list[str]:
    """``describe_sweep``'s sentences with plain spaces, to compare with text."""
    return [line.replace("\N{NO-BREAK SPACE}", " ") for line in describe_sweep(*sweeps)]


def test_a_rising_curve_is_read_out_with_its_numbers():
    trained = sweep_of([0.62, 0.80, 0.97, 0.90], [0.1, 0.2, 0.5, 0.4])
    random = sweep_of([0.70, 0.71, 0.69, 0.70], [0.1, 0.1, 0.1, 0.1], weights="random")
    lines = read_out(trained, random)
    assert lines[0] == (
        "With trained the probe accuracy rises from 62 % at block1 to 97 % at block3, then falls "
        "to 90 % at block4; the silhouette rises from 0.10 at block1 to 0.50 at block3, then "
        "falls to 0.40 at block4."
    )
    assert lines[1] == (
        "With random the probe accuracy stays near 70 % at every block (69 % to 71 %); the "
        "silhouette is 0.10 at every block."
    )
    assert lines[2] == (
        "Training adds most to the probe accuracy at block3: 97 % against 69 % (trained ahead at "
        "3 of 4 blocks)."
    )
    assert lines[-1] == "Chance, always answering the largest label, is 50 %."


def test_an_easy_set_is_called_easy_and_equal_weights_equal():
    flat = sweep_of([0.99, 0.995, 1.0], [0.4, 0.7, 0.75])
    same = sweep_of([0.995, 0.99, 0.98], [0.41, 0.69, 0.75], weights="random")
    lines = read_out(flat, same)
    assert "stays near" in lines[0] and "too easy" in lines[1]
    assert lines[-3].startswith("Trained and random weights give the same probe accuracy")
    assert lines[-2].startswith("Trained and random weights give the same silhouette")
    falling = read_out(sweep_of([0.9, 0.7, 0.6, 0.8], [0.3, 0.2, 0.1, 0.0]))
    assert "falls from 90 % at block1 to 60 % at block3, then rises to 80 % at block4" in falling[0]
    assert "falls from 0.30 at block1 to 0.00 at block4;" not in falling[0]
    assert "falls from 0.30 at block1 to 0.00 at block4." in falling[0]
    behind = read_out(
        sweep_of([0.89, 0.6, 0.5], [0.1, 0.1, 0.1]),
        sweep_of([0.89, 0.7, 1.0], [0.1, 0.1, 0.1], weights="random"),
    )
    assert behind[2] == (
        "Training adds nothing to the probe accuracy here: random weights are ahead at 2 of 3 "
        "blocks, most at block3: 100 % against 50 %."
    )
    with pytest.raises(ValueError, match="different layers"):
        describe_sweep(flat, sweep_of([0.5, 0.5], [0.0, 0.0]))


def test_sweep_problem_says_what_is_missing():
    assert sweep_problem(["a", "a", "b", "b"]) is None
    assert "1 of the 3 images has no label" in sweep_problem(["a", "b", None])
    assert "2 of the 3 images have no label" in sweep_problem(["a", None, None])
    assert "the set has one image, without a label" in sweep_problem([None])
    assert "Received: {'a': 3}" in sweep_problem(["a", "a", "a"])
    assert "Received: {'a': 2, 'b': 1}" in sweep_problem(["a", "a", "b"])


def test_islands_are_the_labels_that_keep_to_themselves():
    rng = np.random.default_rng(0)
    apart = rng.normal(0, 0.1, (20, 2)) + np.array([10.0, 10.0])
    mixed = rng.normal(0, 1, (40, 2))
    labels = ["far"] * 20 + ["x", "y"] * 20
    assert islands(np.concatenate([apart, mixed]), labels) == ["far"]


def test_many_blocks_wrap_into_rows_and_the_animation_controls_stay_apart():
    from featlib import render

    rng = np.random.default_rng(0)
    n = 16  # MobileNetV2's blocks
    sweep = Sweep(
        layers=tuple(f"block_{i}_project_BN" for i in range(1, n + 1)), accuracy=np.ones(n),
        silhouette=np.zeros(n), chance=0.5,
        embeddings=tuple(rng.normal(size=(6, 2)).astype(np.float32) for _ in range(n)),
        labels=("a", "b") * 3, names=tuple("uvwxyz"), weights="random",
    )  # fmt: skip
    titles = render.sweep_projections(sweep).layout.annotations
    assert [t.text for t in titles] == list(sweep.layers)
    rows = {}
    for t in titles:
        rows.setdefault(round(t.y, 3), []).append(t.x)
    assert len(rows) == 3 and all(len(xs) <= 6 for xs in rows.values())
    assert min(np.diff(sorted(next(iter(rows.values()))))) >= 1 / 6 - 0.01
    layout = render.sweep_animation(sweep).layout
    menu, slider = layout.updatemenus[0], layout.sliders[0]
    assert menu.y >= 1 and menu.yanchor == "bottom"  # the buttons above the plot
    assert slider.y <= 0 and slider.x + slider.len <= 1  # the slider below, inside the width


def test_the_sweep_runs_small_images_at_their_own_size():
    from types import SimpleNamespace

    from featlib.teaching.sweep import sweep_input_size

    def net(name="vgg16", family="vgg", size=224):
        return SimpleNamespace(name=name, family=family, input_size=(size, size))

    faces, digits = featlib.load_samples("faces"), featlib.load_samples("digits")
    photos = featlib.load_samples("photos")
    assert sweep_input_size(net(), faces) == (64, 64)
    assert sweep_input_size(net(), digits) == (64, 64)  # 32 x 32, but never below 64
    assert sweep_input_size(net(), photos) == (224, 224)  # larger than the input: as it is
    assert sweep_input_size(net("inceptionv3", "inception", 299), faces) == (75, 75)  # its least
    assert sweep_input_size(net("mine.keras", "custom"), faces) == (224, 224)
    odd = featlib.from_uploads([("a.png", png(np.zeros((70, 100, 3), np.uint8)))])
    assert sweep_input_size(net(), odd) == (128, 128)  # the longer side, to a multiple of 32
