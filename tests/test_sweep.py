"""The layer sweep: its figures are scikit-learn's on the same features, and on classes that
differ only in texture the probe separates them at some block."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import silhouette_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import featlib
from featlib.errors import FeatlibError
from featlib.sweep import layer_sweep

pytestmark = pytest.mark.slow


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
    grey = np.clip(field, 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


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


@pytest.fixture(scope="module")
def textures() -> featlib.ImageSet:
    return labelled({"stripes": 12, "dots": 12})


@pytest.fixture(scope="module")
def vgg():
    return featlib.load_backbone("vgg16", weights="offline", input_size=(64, 64))


def test_figures_are_scikit_learns_on_the_same_features(vgg, textures):
    sweep = layer_sweep(vgg, textures)
    feats = featlib.extract_set(vgg, textures, list(sweep.layers))
    y = np.array(feats.labels)
    for i, layer in enumerate(sweep.layers):
        x = feats.features[layer].astype(np.float64)
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        cv = StratifiedKFold(5, shuffle=True, random_state=0)
        assert sweep.accuracy[i] == pytest.approx(cross_val_score(probe, x, y, cv=cv).mean())
        assert sweep.silhouette[i] == pytest.approx(silhouette_score(x, y, metric="cosine"))
        assert sweep.embeddings[i].shape == (24, 2)
    assert sweep.chance == 0.5


def test_the_probe_separates_textures_at_some_block(vgg, textures):
    sweep = layer_sweep(vgg, textures)
    assert sweep.layers == tuple(i.name for i in featlib.block_outputs(vgg))
    assert sweep.accuracy.max() >= 0.95


def test_consecutive_projections_are_aligned(vgg, textures):
    sweep = layer_sweep(vgg, textures)
    for a, b in zip(sweep.embeddings, sweep.embeddings[1:], strict=False):
        aligned = featlib.procrustes_align(a, b)
        np.testing.assert_allclose(aligned, b, atol=1e-3 * np.abs(b).max())


def test_unlabelled_or_tiny_classes_are_refused(vgg):
    rng = np.random.default_rng(0)
    unlabelled = featlib.from_uploads([(f"{i}.png", png(texture(rng, "dots"))) for i in range(4)])
    with pytest.raises(FeatlibError, match="4 of the 4 images have no label"):
        layer_sweep(vgg, unlabelled)
    with pytest.raises(FeatlibError, match="2 labels with 2 images"):
        layer_sweep(vgg, labelled({"stripes": 4, "dots": 1}))
