"""Similarity search over feature vectors, by cosine similarity.

Everything here works on plain arrays of shape (n_samples, n_features); nothing imports
TensorFlow. Rows with zero length have no direction: their cosine similarity to anything is 0.

Example::

    >>> import numpy as np
    >>> from featlib.analysis.neighbors import nearest
    >>> x = np.array([[1, 0], [0.9, 0.1], [0, 1]], dtype=np.float32)
    >>> nearest(x, 0, k=1)[0]
    array([1])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from featlib._validation import BLOCK_FLOATS, as_features, l2_normalize, row_norms
from featlib.errors import FeatlibError

__all__ = ["nearest", "nearest_all", "order_by_label", "similarity_matrix"]

# Rows of a similarity block computed at once: a block holds about this many floats, so
# nearest_all over 20,000 images needs tens of MB, not the 1.6 GB of the full matrix.


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise FeatlibError(f"k must be a positive integer. Received: k={k!r}")
    return int(k)


def nearest(
    features, query, k: int = 5, exclude_self: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The k rows of ``features`` most similar to ``query`` by cosine similarity.

    Args:
        features: array of shape (n_samples, n_features).
        query: an index into ``features`` or a vector of shape (n_features,).
        k: how many neighbours to return; fewer when there are not that many rows.
        exclude_self: when ``query`` is an index, leave that row out of the answer.
            Ignored for a vector query.

    Returns:
        ``(indices, scores)``: int64 array of shape (min(k, available),) and the float32
        cosine similarities, most similar first (ties in index order).

    Example::

        >>> x = np.eye(3, dtype=np.float32)
        >>> nearest(x, np.array([1, 0.5, 0]), k=2)
        (array([0, 1]), array([0.8944272, 0.4472136], dtype=float32))
    """
    x = as_features(features)
    k = _check_k(k)
    n, d = x.shape
    self_index = None
    if isinstance(query, (int, np.integer)) and not isinstance(query, bool):
        if not -n <= query < n:
            raise FeatlibError(f"query index out of range for {n} samples. Received: {query}")
        self_index = int(query) % n
        q = x[self_index]
    else:
        q = np.asarray(query, dtype=np.float32)
        if q.shape != (d,):
            raise FeatlibError(
                f"query must be an index or a vector of shape ({d},). Received: shape={q.shape}"
            )
        if not np.isfinite(q).all():
            raise FeatlibError("query contains NaN or infinite values.")
    q_norm = np.linalg.norm(q)
    q = q / q_norm if q_norm > 0 else q
    # Dot products divided by row norms: no normalised copy of a possibly large matrix.
    norms = row_norms(x)
    scores = np.divide(x @ q, norms, out=np.zeros(n, dtype=np.float32), where=norms > 0)
    order = np.argsort(-scores, kind="stable")
    if exclude_self and self_index is not None:
        order = order[order != self_index]
    order = order[:k]
    return order.astype(np.int64), scores[order].astype(np.float32)


def nearest_all(features, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """The k most similar other rows for every row, by cosine similarity.

    Computed in blocks of rows, so memory stays near ``n_samples * block`` floats instead of
    the full (n, n) matrix. A row is never its own neighbour; an identical copy at another
    index is (with similarity 1).

    Args:
        features: array of shape (n_samples, n_features).
        k: neighbours per row; clipped to n_samples - 1.

    Returns:
        ``(indices, scores)``: int64 array of shape (n_samples, min(k, n_samples - 1)) and the
        float32 cosine similarities, most similar first in each row.

    Example::

        >>> x = np.array([[1, 0], [1, 0.1], [0, 1]], dtype=np.float32)
        >>> nearest_all(x, k=1)[0].ravel()
        array([1, 0, 1])
    """
    x = l2_normalize(as_features(features, min_samples=2))
    k = min(_check_k(k), x.shape[0] - 1)
    n = x.shape[0]
    indices = np.empty((n, k), dtype=np.int64)
    scores = np.empty((n, k), dtype=np.float32)
    step = max(1, BLOCK_FLOATS // n)
    for start in range(0, n, step):
        stop = min(n, start + step)
        sims = x[start:stop] @ x.T
        rows = np.arange(stop - start)
        sims[rows, rows + start] = -np.inf
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top_sims = np.take_along_axis(sims, top, axis=1)
        by_score = np.argsort(-top_sims, axis=1, kind="stable")
        indices[start:stop] = np.take_along_axis(top, by_score, axis=1)
        scores[start:stop] = np.take_along_axis(top_sims, by_score, axis=1)
    return indices, scores


def similarity_matrix(features, order: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Cosine similarity of every pair of rows.

    Needs n_samples**2 float32 values (1.6 GB for 20,000 rows): take a subset for big sets.

    Args:
        features: array of shape (n_samples, n_features).
        order: optional row indices (for example from :func:`order_by_label`); the matrix is
            computed for ``features[order]``, rows and columns in that order.

    Returns:
        float32 array of shape (m, m), m = len(order) or n_samples, values in [-1, 1].

    Example::

        >>> similarity_matrix(np.array([[1, 0], [1, 1]], dtype=np.float32)).round(3)
        array([[1.   , 0.707],
               [0.707, 1.   ]], dtype=float32)
    """
    x = as_features(features)
    if order is not None:
        idx = np.asarray(order)
        if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
            raise FeatlibError(
                f"order must be a 1-D sequence of row indices. Received: {np.asarray(order)!r}"
            )
        if idx.size and (idx.min() < 0 or idx.max() >= x.shape[0]):
            raise FeatlibError(
                f"order holds indices outside 0..{x.shape[0] - 1}. "
                f"Received: min={idx.min()}, max={idx.max()}"
            )
        x = x[idx]
    xn = l2_normalize(x)
    sims = xn @ xn.T
    np.clip(sims, -1.0, 1.0, out=sims)
    return sims.astype(np.float32, copy=False)


def order_by_label(labels: Sequence[str | None]) -> np.ndarray:
    """Row order that groups rows by label: labels sorted, unlabelled (None) last.

    Stable: rows with the same label keep their original order.

    Args:
        labels: one label (or None) per row.

    Returns:
        int64 array of shape (len(labels),), a permutation of the row indices.

    Example::

        >>> order_by_label(["b", None, "a", "b"])
        array([2, 0, 3, 1])
    """
    labels = list(labels)
    bad = [lab for lab in labels if lab is not None and not isinstance(lab, str)]
    if bad:
        raise FeatlibError(f"labels must be strings or None. Received: {bad[0]!r}")
    keyed = sorted(range(len(labels)), key=lambda i: (labels[i] is None, labels[i] or ""))
    return np.asarray(keyed, dtype=np.int64)
