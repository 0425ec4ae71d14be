"""The linear probe: how much of the labels a logistic regression reads off the features, out of
fold, with folds that keep identical images together (a copy must never predict its twin). The
layer sweep and the dataset checks both use it, with the same settings.

Example::

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(60, 8))
    >>> labels = ["a", "b"] * 30
    >>> x[1::2, 0] += 4  # label b sits apart along the first feature
    >>> probe_accuracy(x, labels) > 0.9
    True
"""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import silhouette_score
from sklearn.model_selection import PredefinedSplit, StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from featlib._validation import as_features, l2_normalize
from featlib.errors import FeatlibError

__all__ = [
    "MAX_FOLDS",
    "content_groups",
    "cosine_silhouette",
    "out_of_fold_proba",
    "probe_accuracy",
    "probe_folds",
]

MAX_FOLDS = 5
# The logistic regression's inverse regularisation and iteration cap; wider features are first
# reduced to REDUCED_DIMS principal components. Chosen on the bundled faces and digits (see the
# commit that set them): C=0.1 reads as much off VGG16's blocks as C=1 and gives the label-issue
# check its better-ranked probabilities; 200 iterations converge there.
C = 0.1
MAX_ITER = 200
REDUCE_ABOVE = 1024
REDUCED_DIMS = 256
_SILHOUETTE_SAMPLE = 2_000


def content_groups(ids) -> np.ndarray:
    """Per row, the index of the first row with the same id (a SHA-256 of the image's bytes).

    Args:
        ids: one hashable id per row.

    Returns:
        int array of shape (n_rows,).

    Example::

        >>> content_groups(["x", "y", "x"]).tolist()
        [0, 1, 0]
    """
    first: dict = {}
    return np.array([first.setdefault(s, i) for i, s in enumerate(ids)], dtype=np.int64)


def probe_folds(y, groups=None, random_state=0) -> PredefinedSplit:
    """Stratified folds in which all rows of one group fall together: up to :data:`MAX_FOLDS`,
    at most as many as the smallest class has groups.

    Stratified over the first row of each group, which is as good as scikit-learn's
    ``StratifiedGroupKFold`` here and much faster (no per-group loop); with every row its own
    group the folds are ``StratifiedKFold(shuffle=True)``'s.

    Args:
        y: array of shape (n_samples,): the labels.
        groups: one id per row (the SHA-256 of the image's bytes); None: every row is its own
            group.
        random_state: seed of the shuffle.

    Returns:
        a ``PredefinedSplit``.

    Raises:
        FeatlibError: a class with fewer than 2 groups.
    """
    y = np.asarray(y)
    groups = content_groups(range(len(y)) if groups is None else groups)
    firsts, position = np.unique(groups, return_index=True)
    distinct = Counter(y[position].tolist())
    n_folds = min(MAX_FOLDS, min(distinct.values()))
    if n_folds < 2:
        raise FeatlibError(
            "the probe needs at least 2 different images per label (copies of one image count "
            f"once). Received: {dict(sorted(distinct.items()))}"
        )
    skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=random_state)
    fold_of = np.empty(len(firsts), dtype=np.int64)
    for fold, (_, test) in enumerate(skf.split(np.zeros(len(firsts)), y[position])):
        fold_of[test] = fold
    return PredefinedSplit(fold_of[np.searchsorted(firsts, groups)])


def out_of_fold_proba(features, y, groups=None, *, random_state=0) -> np.ndarray:
    """Class probabilities of each row from a probe that saw neither it nor any copy of it.

    The features are L2-normalised and standardised (when wider than :data:`REDUCE_ABOVE`, with
    more rows than :data:`REDUCED_DIMS`, reduced to that many principal components), and a
    logistic regression (:data:`C`, :data:`MAX_ITER`) is fitted on the rest of each fold
    (:func:`probe_folds`).

    Args:
        features: array of shape (n_samples, n_features).
        y: int array of shape (n_samples,): class indices 0..n_classes-1, each class with at
            least 2 groups.
        groups: one id per row (the SHA-256 of the image's bytes): rows with the same id share
            a fold. None: every row is its own image.
        random_state: seed of the folds and the PCA.

    Returns:
        float array of shape (n_samples, n_classes).

    Raises:
        FeatlibError: a class with fewer than 2 groups.
    """
    y = np.asarray(y)
    cv = probe_folds(y, groups, random_state)
    data = l2_normalize(as_features(features, min_samples=2))
    if data.shape[1] > REDUCE_ABOVE and len(data) > REDUCED_DIMS:
        # Standardised and reduced once, unsupervised, so the probe's cost does not grow with
        # the width of the features (2,048 for ResNet50, 25,088 for a flattened VGG16 block).
        # The components keep their variances: standardising them as well would lift the
        # weakest (noise, where the features have lower rank) to the strongest's weight.
        pca = PCA(REDUCED_DIMS, svd_solver="randomized", random_state=random_state)
        data = pca.fit_transform(StandardScaler().fit_transform(data))
        model = LogisticRegression(C=C, max_iter=MAX_ITER)
    else:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=MAX_ITER))
    # One BLAS thread: these products are small, and on a busy 2-core machine threads made the
    # probe 2-10x slower (1,000 x 512: 0.2 s against 1.2-2.9 s).
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        # A probe that has not fully converged still ranks labels well; a class missing from a
        # training fold gets probability 0 there.
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        return cross_val_predict(model, data, y, cv=cv, method="predict_proba")


def probe_accuracy(features, labels, groups=None, *, random_state=0) -> float:
    """The share of rows whose label the probe predicts out of fold (:func:`out_of_fold_proba`).

    Args:
        features: array of shape (n_samples, n_features).
        labels: one label per row; at least 2 classes, each with at least 2 groups.
        groups: one id per row (the SHA-256 of the image's bytes): rows with the same id share
            a fold, so an image and its copy are never on both sides of a split. None: every
            row is its own image.
        random_state: seed of the folds and the PCA.

    Returns:
        accuracy in [0, 1].

    Raises:
        FeatlibError: fewer than 2 classes, or a class with fewer than 2 groups.
    """
    classes, y = np.unique(np.asarray(labels), return_inverse=True)
    if len(classes) < 2:
        raise FeatlibError(f"the probe needs at least 2 labels. Received: {classes.tolist()}")
    proba = out_of_fold_proba(features, y, groups, random_state=random_state)
    return float((proba.argmax(axis=1) == y).mean())


def cosine_silhouette(features, labels, random_state=0) -> float | None:
    """The labels' silhouette score (-1..1) by cosine distance, on at most 2,000 rows.

    Args:
        features: array of shape (n_samples, n_features).
        labels: one label per row.
        random_state: seed of the subsample.

    Returns:
        the score, or None when it is undefined (fewer than 2 labels, or one row per label).
    """
    data, y = np.asarray(features), np.asarray(labels)
    if len(data) > _SILHOUETTE_SAMPLE:
        rng = np.random.default_rng(random_state)
        keep = rng.choice(len(data), _SILHOUETTE_SAMPLE, replace=False)
        data, y = data[keep], y[keep]
    if not 2 <= len(np.unique(y)) <= len(y) - 1:
        return None
    return float(silhouette_score(data, y, metric="cosine"))
