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

_CHUNK = 64  # columns per chunk in nearest_all's top-k search

__all__ = [
    "NeighborIndex",
    "label_mean_similarity",
    "near_pairs",
    "nearest",
    "nearest_all",
    "order_by_label",
    "similarity_matrix",
]


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise FeatlibError(f"k must be a positive integer. Received: k={k!r}")
    return int(k)


def _check_row(index, n: int, name: str) -> int:
    """A row index in -n..n-1 (negative counts from the end), as 0..n-1."""
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise FeatlibError(f"{name} must be an integer row index. Received: {name}={index!r}")
    if not -n <= index < n:
        raise FeatlibError(f"{name} index out of range for {n} samples. Received: {index}")
    return int(index) % n


def _unit_query(query, d: int) -> np.ndarray:
    """A query vector checked against the feature width and scaled to unit length (a zero
    vector stays zero: it is similar to nothing)."""
    q = np.asarray(query, dtype=np.float32)
    if q.shape != (d,):
        raise FeatlibError(
            f"query must be an index or a vector of shape ({d},). Received: shape={q.shape}"
        )
    if not np.isfinite(q).all():
        raise FeatlibError("query contains NaN or infinite values.")
    q_norm = np.linalg.norm(q)
    return q / q_norm if q_norm > 0 else q


def _top_k(scores: np.ndarray, k: int, exclude: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The k best of ``scores`` (a fresh array, changed in place), best first, ties in index
    order, leaving out row ``exclude``.

    A partition finds the k-th best score in O(n); only the rows at least that good are sorted,
    so the answer is that of a stable full sort at a fraction of its cost (100,000 rows).
    """
    n = scores.size
    if exclude is not None:
        k = min(k, n - 1)
        scores[exclude] = -np.inf
    k = min(k, n)
    if k == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    neg = -scores
    bound = np.partition(neg, k - 1)[k - 1]
    candidates = np.flatnonzero(neg <= bound)
    order = candidates[np.lexsort((candidates, neg[candidates]))][:k]
    return order.astype(np.int64), scores[order].astype(np.float32)


class NeighborIndex:
    """An exact cosine nearest-neighbour index: the rows scaled to unit length once, then every
    query is one matrix-vector product and a partial sort.

    Exact brute force on purpose: over 100,000 x 512 floats a query is about 50 million
    multiply-adds, milliseconds with numpy's BLAS, so an approximate index (faiss, not a
    dependency; Annoy; HNSW) would buy nothing at this size and cost exactness and a build.
    scikit-learn's ``NearestNeighbors(metric="cosine", algorithm="brute")`` normalises the
    whole matrix again on every query; here that is done once, at build time.

    The unit rows are kept as one C-contiguous float32 array, :attr:`vectors`, which a caller
    can store and hand to :meth:`from_normalized` to rebuild the index without normalising.
    Rows of zero length stay zero: their similarity to anything is 0.

    Args:
        features: array of shape (n_samples, n_features), all finite.

    Attributes:
        vectors: float32 array of shape (n_samples, n_features), C-contiguous, unit rows
            (zero rows stay zero).

    Example::

        >>> x = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.5, 0.5]], dtype=np.float32)
        >>> index = NeighborIndex(x)
        >>> index.query_row(0, k=2)
        (array([1, 3]), array([0.9938837 , 0.70710677], dtype=float32))
        >>> same = NeighborIndex.from_normalized(index.vectors)
        >>> same.query(np.array([0, 2.0]), k=1)
        (array([2]), array([1.], dtype=float32))
    """

    def __init__(self, features) -> None:
        self.vectors = np.ascontiguousarray(l2_normalize(as_features(features)))

    @classmethod
    def from_normalized(cls, vectors) -> NeighborIndex:
        """An index over rows already scaled to unit length (for example :attr:`vectors` of
        another index, saved and loaded again); they are checked, not normalised again.

        Args:
            vectors: array of shape (n_samples, n_features), each row of length 1 or 0.

        Returns:
            A :class:`NeighborIndex` that answers as the one that made ``vectors`` did.

        Raises:
            FeatlibError: ``vectors`` is not 2-D, not finite, or has a row whose length is
                neither 0 nor 1.
        """
        x = as_features(vectors, name="vectors")
        norms = row_norms(x)
        bad = np.flatnonzero((norms > 0) & (np.abs(norms - 1) > 1e-3))
        if bad.size:
            raise FeatlibError(
                "vectors must have rows of length 1 (or 0); use NeighborIndex(features) to "
                f"normalise. Received: row {bad[0]} of length {norms[bad[0]]:.4g}"
            )
        index = cls.__new__(cls)
        index.vectors = np.ascontiguousarray(x)
        return index

    def __len__(self) -> int:
        return self.vectors.shape[0]

    def query(
        self, vector, k: int = 5, exclude: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k rows most similar to ``vector`` by cosine similarity.

        Args:
            vector: array of shape (n_features,); its length does not matter.
            k: how many neighbours to return; fewer when there are not that many rows.
            exclude: a row index to leave out of the answer, for a query that is itself a
                member of the set; None keeps every row.

        Returns:
            ``(indices, scores)``: int64 array of shape (min(k, available),) and the float32
            cosine similarities, most similar first (ties in index order).

        Raises:
            FeatlibError: ``vector`` of the wrong shape or not finite, ``k`` not a positive
                integer, ``exclude`` not a row index.
        """
        k = _check_k(k)
        n, d = self.vectors.shape
        skip = None if exclude is None else _check_row(exclude, n, "exclude")
        return _top_k(self.vectors @ _unit_query(vector, d), k, skip)

    def query_row(self, row: int, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """The k other rows most similar to row ``row``: :meth:`query` with that row's vector,
        the row itself left out (an identical copy at another index is kept).

        Args:
            row: index of the query row; negative counts from the end.
            k: how many neighbours to return, clipped to n_samples - 1.

        Returns:
            ``(indices, scores)`` as :meth:`query`.
        """
        row = _check_row(row, len(self), "row")
        return self.query(self.vectors[row], k, exclude=row)


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
        self_index = _check_row(query, n, "query")
        q = _unit_query(x[self_index], d)
    else:
        q = _unit_query(query, d)
    # One query needs no index: dividing the dot products by the row lengths avoids the
    # normalised copy of a possibly large matrix that NeighborIndex keeps for many queries.
    norms = row_norms(x)
    scores = np.divide(x @ q, norms, out=np.zeros(n, dtype=np.float32), where=norms > 0)
    return _top_k(scores, k, self_index if exclude_self else None)


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
    chunks = -(-n // _CHUNK)
    step = max(1, BLOCK_FLOATS // (chunks * _CHUNK))
    sims = np.full((min(step, n), chunks * _CHUNK), -np.inf, dtype=np.float32)
    for start in range(0, n, step):
        stop = min(n, start + step)
        block = sims[: stop - start]
        np.matmul(x[start:stop], x.T, out=block[:, :n])
        rows = np.arange(stop - start)
        block[rows, rows + start] = -np.inf
        top, top_sims = _top_k_rows(block, k, chunks)
        by_score = np.lexsort((top, -top_sims), axis=1)
        indices[start:stop] = np.take_along_axis(top, by_score, axis=1)
        scores[start:stop] = np.take_along_axis(top_sims, by_score, axis=1)
    return indices, scores


def _top_k_rows(sims: np.ndarray, k: int, chunks: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best columns of every row of ``sims`` (shape (b, chunks * _CHUNK)), unordered.

    A row's k best lie in the k chunks of ``_CHUNK`` columns with the highest maxima (a chunk
    holding one of them has a maximum at least that good), so the partition runs over the
    chunks' maxima and then over k chunks, not over every column: at 100,000 columns that is
    most of the time ``nearest_all`` spent beside the matrix product.
    """
    if chunks <= k:
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        return top, np.take_along_axis(sims, top, axis=1)
    tiles = sims.reshape(sims.shape[0], chunks, _CHUNK)
    best_chunks = np.argpartition(-tiles.max(axis=2), k - 1, axis=1)[:, :k]
    candidates = np.take_along_axis(tiles, best_chunks[:, :, None], axis=1).reshape(-1, k * _CHUNK)
    columns = (best_chunks[:, :, None] * _CHUNK + np.arange(_CHUNK)).reshape(-1, k * _CHUNK)
    pick = np.argpartition(-candidates, k - 1, axis=1)[:, :k]
    return np.take_along_axis(columns, pick, axis=1), np.take_along_axis(candidates, pick, axis=1)


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


def near_pairs(
    features, threshold: float, block: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of rows whose cosine similarity is at least ``threshold``.

    Exact, and never the (n, n) matrix: rows are compared in blocks against the rows from the
    block on (the upper triangle only), a block holding about 4 million similarities.

    Args:
        features: array of shape (n_samples, n_features).
        threshold: the least cosine similarity of a pair kept, in [-1, 1].
        block: rows compared at once; None picks about 4 million floats' worth.

    Returns:
        ``(pairs, similarities)``: int64 array of shape (m, 2) with ``i < j`` in each row, and
        their float32 cosine similarities of shape (m,); most similar first, ties by ``i``
        then ``j``. Empty arrays of those shapes when no pair is that similar.

    Raises:
        FeatlibError: ``threshold`` not a number in [-1, 1], ``block`` not a positive integer.

    Example::

        >>> x = np.array([[1, 0], [0, 1], [1, 0.05], [0.02, 1]], dtype=np.float32)
        >>> pairs, sims = near_pairs(x, 0.99)
        >>> pairs
        array([[1, 3],
               [0, 2]])
        >>> sims.round(4)
        array([0.9998, 0.9988], dtype=float32)
    """
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float, np.integer, np.floating))
        or not -1 <= threshold <= 1
    ):
        raise FeatlibError(
            f"threshold must be a number in [-1, 1]. Received: threshold={threshold!r}"
        )
    x = l2_normalize(as_features(features))
    n = x.shape[0]
    if block is None:
        step = max(1, BLOCK_FLOATS // n)
    elif isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1:
        raise FeatlibError(f"block must be a positive integer or None. Received: block={block!r}")
    else:
        step = int(block)
    found_i, found_j, found_s = [], [], []
    for start in range(0, n, step):
        stop = min(n, start + step)
        sims = x[start:stop] @ x[start:].T
        np.clip(sims, -1.0, 1.0, out=sims)
        rows, cols = np.nonzero(sims >= threshold)
        upper = cols > rows  # columns start at row `start`: j > i
        rows, cols = rows[upper], cols[upper]
        found_s.append(sims[rows, cols])
        found_i.append(rows + start)
        found_j.append(cols + start)
    i = np.concatenate(found_i).astype(np.int64)
    j = np.concatenate(found_j).astype(np.int64)
    s = np.concatenate(found_s).astype(np.float32)
    order = np.lexsort((j, i, -s))
    return np.stack([i[order], j[order]], axis=1), s[order]


def label_mean_similarity(
    features, labels: Sequence[str | None]
) -> tuple[list[str | None], np.ndarray]:
    """Mean cosine similarity between the images of every two labels, without the (n, n)
    matrix.

    With unit rows the mean over all pairs of labels a and b is ``s_a . s_b / (n_a n_b)``,
    ``s_a`` the sum of label a's unit rows; within a label, the mean over distinct pairs is
    ``(|s_a|^2 - z_a) / (n_a (n_a - 1))``, where ``z_a`` takes out the pairs of a row with
    itself: 1 for each row of non-zero length (its self-similarity), 0 for a zero row. A zero
    row counts as a pair member with similarity 0 to everything, as in
    :func:`similarity_matrix`.

    Args:
        features: array of shape (n_samples, n_features).
        labels: one label (a string, or None for unlabelled) per row.

    Returns:
        ``(names, means)``: the distinct labels in :func:`order_by_label` order (None last),
        and a float32 array of shape (len(names), len(names)), symmetric; NaN on the diagonal
        of a label with one image (it has no pair).

    Raises:
        FeatlibError: ``labels`` of another length than ``features``, or not strings or None.

    Example::

        >>> x = np.array([[1, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float32)
        >>> names, means = label_mean_similarity(x, ["a", "a", "b", None])
        >>> names
        ['a', 'b', None]
        >>> means.round(3)
        array([[1.   , 0.   , 0.707],
               [0.   ,   nan, 0.707],
               [0.707, 0.707,   nan]], dtype=float32)
    """
    x = as_features(features)
    labels = list(labels)
    if len(labels) != x.shape[0]:
        raise FeatlibError(
            f"labels must have one entry per row: {x.shape[0]} rows. Received: {len(labels)} labels"
        )
    order = order_by_label(labels)  # also checks that labels are strings or None
    names: list[str | None] = []
    for i in order.tolist():
        if not names or labels[i] != names[-1]:
            names.append(labels[i])
    code = {name: c for c, name in enumerate(names)}
    codes = np.fromiter((code[lab] for lab in labels), dtype=np.int64, count=len(labels))
    counts = np.bincount(codes, minlength=len(names)).astype(np.float64)
    sums = np.zeros((len(names), x.shape[1]))
    self_sq = np.zeros(len(names))
    # float64 sums, in row blocks: one normalised copy of at most BLOCK_FLOATS values at once.
    step = max(1, BLOCK_FLOATS // x.shape[1])
    for start in range(0, x.shape[0], step):
        unit = l2_normalize(x[start : start + step]).astype(np.float64)
        block_codes = codes[start : start + step]
        np.add.at(sums, block_codes, unit)
        self_sq += np.bincount(block_codes, np.einsum("ij,ij->i", unit, unit), len(names))
    dots = sums @ sums.T
    with np.errstate(invalid="ignore", divide="ignore"):
        means = dots / np.outer(counts, counts)
        np.fill_diagonal(means, (np.diag(dots) - self_sq) / (counts * (counts - 1)))
    return names, np.clip(means, -1.0, 1.0).astype(np.float32)
