"""Cluster feature vectors, for colouring a projection by groups the network itself finds.

Example::

    >>> import numpy as np
    >>> x = np.r_[np.zeros((5, 4)), np.ones((5, 4))].astype(np.float32)
    >>> kmeans_labels(x, n_clusters=2).tolist()
    [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans

from featlib._validation import as_features, l2_normalize
from featlib.errors import FeatlibError

__all__ = ["kmeans_labels"]


def kmeans_labels(features, n_clusters: int = 8, random_state: int = 0) -> np.ndarray:
    """k-means cluster of each row, on L2-normalised rows (so it follows cosine similarity).

    Clusters are numbered by first appearance, so the numbering does not depend on k-means'
    internal order and a row's number is stable when nothing changes.

    Args:
        features: array of shape (n_samples, n_features).
        n_clusters: number of clusters, from 1 to n_samples.
        random_state: seed of the initialisation.

    Returns:
        int64 array of shape (n_samples,), values in 0 .. n_clusters - 1.

    Raises:
        FeatlibError: n_clusters out of range, or features that are not a finite 2-D array.

    Example::

        >>> int(kmeans_labels(np.random.default_rng(0).normal(size=(50, 8)), n_clusters=3).max())
        2
    """
    x = as_features(features)
    if isinstance(n_clusters, bool) or not 1 <= int(n_clusters) <= len(x):
        raise FeatlibError(
            f"n_clusters must be between 1 and the number of samples ({len(x)}). "
            f"Received: n_clusters={n_clusters!r}"
        )
    raw = KMeans(n_clusters=int(n_clusters), n_init=4, random_state=random_state).fit_predict(
        l2_normalize(x)
    )
    _, first = np.unique(raw, return_index=True)
    renumber = np.empty(int(raw.max()) + 1, np.int64)
    renumber[raw[np.sort(first)]] = np.arange(len(first))
    return renumber[raw]
