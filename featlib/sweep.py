"""The layer sweep: how well each block's features separate the labels, from edges to objects.

For every block output, pooled features of a labelled set are scored with a cross-validated
linear probe (logistic regression, the standard test of what a representation makes linearly
available) and a cosine silhouette score; a small PCA per block, each aligned to the one before
(Procrustes), lets points move smoothly from block to block. Run it for trained and for random
weights to see that training is what makes deep features meaningful.

Example::

    >>> bb = featlib.load_backbone("vgg16", weights="offline")
    >>> sweep = layer_sweep(bb, featlib.load_samples("faces"))
    >>> sweep.layers, sweep.accuracy.round(2)
    (('block1_pool', ..., 'block5_pool'), array([0.86, ..., 0.99]))
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import silhouette_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from featlib.errors import FeatlibError
from featlib.neighbors import _l2_normalize
from featlib.projection import procrustes_align

__all__ = ["Sweep", "layer_sweep", "sweep_scores"]

_MAX_FOLDS = 5


@dataclass(frozen=True)
class Sweep:
    """Per-layer scores of one backbone on one labelled set.

    Attributes:
        layers: the layers, shallow to deep.
        accuracy: float array of shape (n_layers,): cross-validated linear-probe accuracy.
        silhouette: float array of shape (n_layers,): cosine silhouette of the labels.
        chance: accuracy of always answering the largest class.
        embeddings: per layer, float32 array of shape (n_images, 2): PCA of the L2-normalised
            features, each aligned to the previous layer's.
        labels: the images' labels.
        names: the images' names.
        weights: the backbone's weights label, for legends.
    """

    layers: tuple[str, ...]
    accuracy: np.ndarray
    silhouette: np.ndarray
    chance: float
    embeddings: tuple[np.ndarray, ...]
    labels: tuple[str, ...]
    names: tuple[str, ...]
    weights: str


def _probe():
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))


def sweep_scores(features, labels, random_state: int = 0) -> tuple[float, float]:
    """Cross-validated linear-probe accuracy and cosine silhouette of one layer's features.

    Args:
        features: array of shape (n_samples, n_features).
        labels: one label per row; at least 2 classes, each with at least 2 samples.
        random_state: seed of the stratified folds.

    Returns:
        ``(accuracy, silhouette)``.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    folds = min(_MAX_FOLDS, min(Counter(y.tolist()).values()))
    cv = StratifiedKFold(folds, shuffle=True, random_state=random_state)
    accuracy = float(cross_val_score(_probe(), x, y, cv=cv).mean())
    return accuracy, float(silhouette_score(x, y, metric="cosine"))


def layer_sweep(
    backbone, image_set, layers=None, *, store=None, resize_mode="stretch", random_state=0,
    progress=None,
) -> Sweep:  # fmt: skip
    """Score every block of a backbone on a labelled image set.

    Args:
        backbone: a ``featlib.Backbone``.
        image_set: a ``featlib.ImageSet`` with labels (at least 2 classes of 2 images).
        layers: layer names; default every block output (``featlib.block_outputs``).
        store: a ``featlib.FeatureStore`` for the pooled features, or None.
        resize_mode: see ``featlib.extract_set``.
        random_state: seed of the folds and the PCA.
        progress: called as ``progress(done, total)`` while features are extracted.

    Returns:
        :class:`Sweep`.

    Raises:
        FeatlibError: unlabelled images, or classes too small to cross-validate.
    """
    from featlib.extraction import extract_set
    from featlib.layers import block_outputs

    names = list(layers) if layers is not None else [i.name for i in block_outputs(backbone)]
    feats = extract_set(
        backbone, image_set, names, pooling="avg", resize_mode=resize_mode, store=store,
        progress=progress,
    )  # fmt: skip
    labels = feats.labels
    counts = Counter(labels)
    if None in counts:
        raise FeatlibError(
            f"The layer sweep needs every image labelled; {counts[None]} are not. Use a folder "
            "with one sub-folder per class, or a labelled sample set."
        )
    if len(counts) < 2 or min(counts.values()) < 2:
        raise FeatlibError(
            f"The layer sweep needs at least 2 classes with 2 images each. Received: {dict(counts)}"
        )
    accuracy, silhouette, embeddings = [], [], []
    for name in names:
        x = feats.features[name]
        a, s = sweep_scores(x, labels, random_state)
        accuracy.append(a)
        silhouette.append(s)
        flat = PCA(n_components=2, random_state=random_state).fit_transform(_l2_normalize(x))
        embeddings.append(procrustes_align(embeddings[-1], flat) if embeddings else flat)
    return Sweep(
        layers=tuple(names),
        accuracy=np.array(accuracy),
        silhouette=np.array(silhouette),
        chance=max(counts.values()) / len(labels),
        embeddings=tuple(np.asarray(e, np.float32) for e in embeddings),
        labels=tuple(labels),
        names=tuple(feats.names),
        weights=backbone.weights_label,
    )
