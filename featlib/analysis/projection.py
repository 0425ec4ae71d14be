"""Projections of feature vectors to 2-D or 3-D: PCA, t-SNE (openTSNE) and UMAP (umap-learn).

One function, :func:`project`, returns the embedding with the parameters actually used and
figures that say how faithful it is. By default rows are L2-normalised first, so distances
in the projection follow cosine similarity, the geometry the rest of featlib uses.

Nothing here imports TensorFlow; umap-learn is imported on first use of UMAP, without its
TensorFlow-based parametric variant.

Example::

    >>> import numpy as np
    >>> from featlib.analysis.projection import project
    >>> x = np.random.default_rng(0).normal(size=(100, 16)).astype(np.float32)
    >>> p = project(x, method="pca", n_components=2)
    >>> p.embedding.shape
    (100, 2)
    >>> sorted(p.quality)
    ['explained_variance_ratio', 'explained_variance_total', 'knn_preservation', 'trustworthiness']
"""

from __future__ import annotations

import math
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness
from sklearn.metrics import pairwise_distances

from featlib._validation import as_features, l2_normalize, row_norms
from featlib.errors import FeatlibError

__all__ = ["METHODS", "Projection", "procrustes_align", "project", "warm_up_umap"]

METHODS = ("pca", "tsne", "umap")

# Quality figures are computed on at most this many points, and with this many neighbours.
_QUALITY_SAMPLE = 2_000
_QUALITY_NEIGHBORS = 10
# Rows of the matrix processed at once on the chunked PCA path (about 64 MB of float32).
_CHUNK_FLOATS = 16_000_000
_UMAP_IMPORT_LOCK = threading.Lock()
# openTSNE's FFT gradient pays off above this many points (openTSNE's own "auto" rule).
_FFT_ABOVE = 10_000
# umap-learn computes all distances below this many points, and runs NN-descent from it on.
_UMAP_EXACT_BELOW = 4_096
# t-SNE iterations between two progress reports.
_TSNE_REPORT_EVERY = 25

Progress = Callable[[int, int, str], object]


@dataclass(frozen=True)
class Projection:
    """A projection and how it was made.

    Attributes:
        embedding: float32 array of shape (n_samples, n_components).
        method: "pca", "tsne" or "umap".
        params: the parameters actually used (after clipping for small sets).
        quality: ``trustworthiness`` and ``knn_preservation`` (both in [0, 1], higher is
            better) for every method; for PCA also ``explained_variance_ratio`` (one value per
            component) and ``explained_variance_total``.
    """

    embedding: np.ndarray
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    quality: dict[str, Any] = field(default_factory=dict)


def project(
    features,
    method: str = "pca",
    n_components: int = 2,
    *,
    random_state: int = 0,
    perplexity: float = 30.0,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    normalize: bool = True,
    max_dense_size: int = 100_000_000,
    pca_dims: int | None = 50,
    progress: Progress | None = None,
) -> Projection:
    """Project feature vectors to 2 or 3 dimensions.

    Args:
        features: array of shape (n_samples, n_features), at least 3 samples, all finite.
        method: "pca", "tsne" (openTSNE) or "umap" (umap-learn).
        n_components: 2 or 3.
        random_state: seed for every random step (solvers, initialisation, subsampling).
        perplexity: t-SNE only; clipped to (n_samples - 1) / 3 for small sets.
        n_neighbors: UMAP only; clipped to n_samples - 1 for small sets.
        min_dist: UMAP only.
        normalize: scale each row to unit length first, so that Euclidean distance follows
            cosine similarity. Turn off to project the raw vectors.
        max_dense_size: PCA only; above this many values (n_samples * n_features) PCA runs
            in row chunks with a randomized solver, so memory stays near the input's own
            size (20,000 x 25,088 works). The same rule picks the solver for ``pca_dims``.
        pca_dims: t-SNE and UMAP only: first reduce the (normalised) vectors to this many
            dimensions with PCA, when they have more dimensions and more rows than that. The
            usual practice (openTSNE's and UMAP's documentation): it keeps the structure and
            removes most of the neighbour search's time. None projects the vectors as they are.
        progress: called as ``progress(done, total, stage)`` while the projection runs, with
            ``done`` never decreasing and the last call ``(total, total, "done")``; ``stage``
            is "start", "pca", "neighbours" (the neighbour graph is built), "exaggeration" and
            "optimisation" (t-SNE, every 25 iterations; a step per iteration) or "done".
            UMAP reports its neighbour graph separately from 4,096 points on (below, umap-learn
            builds it inside its fit, which is then one step); it has no iteration callback.
            Called on the caller's thread, so a page can draw a progress bar from it.

    Returns:
        :class:`Projection` with ``embedding`` of shape (n_samples, n_components).

    Raises:
        FeatlibError: an unknown method, n_components not 2 or 3, fewer than 3 samples,
            features that are not 2-D or not finite, pca_dims not None or an integer of at
            least n_components, progress not callable.

    Example::

        >>> x = np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32)
        >>> project(x, "tsne", perplexity=50).params["perplexity"]
        19.666666666666668
    """
    if method not in METHODS:
        raise FeatlibError(f"method must be one of {METHODS}. Received: method={method!r}")
    if isinstance(n_components, bool) or n_components not in (2, 3):
        raise FeatlibError(f"n_components must be 2 or 3. Received: n_components={n_components!r}")
    if not _is_number(perplexity) or perplexity <= 0:
        raise FeatlibError(f"perplexity must be a positive number. Received: {perplexity!r}")
    if not _is_number(min_dist) or min_dist < 0:
        raise FeatlibError(f"min_dist must be a number >= 0. Received: {min_dist!r}")
    if not isinstance(n_neighbors, (int, np.integer)) or isinstance(n_neighbors, bool):
        raise FeatlibError(f"n_neighbors must be an integer. Received: {n_neighbors!r}")
    if n_neighbors < 2:
        raise FeatlibError(f"n_neighbors must be at least 2. Received: {n_neighbors}")
    if pca_dims is not None and (
        isinstance(pca_dims, bool)
        or not isinstance(pca_dims, (int, np.integer))
        or pca_dims < n_components
    ):
        raise FeatlibError(
            f"pca_dims must be None or an integer of at least n_components={n_components}. "
            f"Received: pca_dims={pca_dims!r}"
        )
    if progress is not None and not callable(progress):
        raise FeatlibError(f"progress must be a callable or None. Received: {progress!r}")
    x = as_features(features, min_samples=3)
    n, d = x.shape
    params: dict[str, Any] = {
        "n_components": n_components,
        "random_state": random_state,
        "normalize": normalize,
    }
    quality: dict[str, Any] = {}
    report = _Reporter(progress)
    if method == "pca":
        if d < n_components:
            raise FeatlibError(
                f"PCA to {n_components} components needs at least {n_components} features. "
                f"Received: n_features={d}"
            )
        report.total = 1
        report(0, "start")
        embedding, ratio, params["svd_solver"] = _pca(
            x, n_components, normalize, random_state, max_dense_size
        )
        quality["explained_variance_ratio"] = [float(r) for r in ratio]
        quality["explained_variance_total"] = float(np.sum(ratio))
    else:
        reduce = pca_dims is not None and d > pca_dims and n > pca_dims
        params["pca_dims"] = int(pca_dims) if reduce else None
        report.total = int(reduce) + (
            _tsne_steps() if method == "tsne" else 1 + int(n >= _UMAP_EXACT_BELOW)
        )
        report(0, "start")
        if reduce:
            data, _, _ = _pca(x, int(pca_dims), normalize, random_state, max_dense_size)
            report(1, "pca")
        else:
            data = l2_normalize(x) if normalize else x
        # C order: openTSNE's result for the same seed changes with the memory layout.
        data = np.ascontiguousarray(data, dtype=np.float32)
        if method == "tsne":
            embedding = _tsne(data, n_components, perplexity, random_state, params, report)
        else:
            embedding = _umap(
                data, n_components, n_neighbors, min_dist, random_state, params, report
            )
    embedding = np.ascontiguousarray(embedding, dtype=np.float32)
    quality.update(_quality(x, embedding, normalize, random_state))
    report(report.total, "done")
    return Projection(embedding=embedding, method=method, params=params, quality=quality)


class _Reporter:
    """Calls ``progress(done, total, stage)`` when there is a ``progress``, and remembers the
    last ``done`` so that each stage can count on from it."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.total = 1
        self.done = 0

    def __call__(self, done: int, stage: str) -> None:
        self.done = done
        if self.progress is not None:
            self.progress(done, self.total, stage)


def _pca(x, n_components, normalize, random_state, max_dense_size):
    """PCA to ``n_components``: ``(embedding, explained variance ratio, solver name)``; in row
    chunks above ``max_dense_size`` values, else scikit-learn's PCA on the (normalised) copy."""
    n, d = x.shape
    if n * d > max_dense_size:
        embedding, ratio = _pca_chunked(x, n_components, normalize, random_state)
        return embedding, ratio, "chunked-randomized"
    pca = PCA(n_components=n_components, random_state=random_state)
    embedding = pca.fit_transform(l2_normalize(x) if normalize else x)
    return embedding, pca.explained_variance_ratio_, "auto"


def _is_number(value) -> bool:
    return (
        isinstance(value, (int, float, np.number))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _pca_chunked(x: np.ndarray, n_components: int, normalize: bool, random_state: int):
    """PCA of a matrix too large to copy: Halko et al.'s randomized SVD (Algorithm 4.4, the
    method of scikit-learn's ``svd_solver="randomized"``) with every product taken over row
    chunks of the original array; centring and normalising are folded into the products, so
    no chunk is ever copied.

    Returns the (n, k) embedding and the explained variance ratio of each component.
    """
    n, d = x.shape
    step = max(1, _CHUNK_FLOATS // d)
    chunks = [slice(start, start + step) for start in range(0, n, step)]
    norms = row_norms(x).astype(np.float64)
    # Row weights: 1/|x_i| when normalising (0 for zero rows), else 1.
    weights = np.divide(1.0, norms, out=np.zeros(n), where=norms > 0) if normalize else np.ones(n)
    mean = np.zeros(d)
    for rows in chunks:
        mean += weights[rows].astype(np.float32) @ x[rows]
    mean /= n
    total_var = (float(((norms * weights) ** 2).sum()) - n * float(mean @ mean)) / (n - 1)

    def times(m: np.ndarray) -> np.ndarray:  # (W X - mean) @ m, shape (n, l)
        m32 = m.astype(np.float32)
        out = np.empty((n, m.shape[1]))
        for rows in chunks:
            out[rows] = x[rows] @ m32
        return out * weights[:, None] - mean @ m

    def transposed_times(m: np.ndarray) -> np.ndarray:  # (W X - mean).T @ m, shape (d, l)
        wm = (m * weights[:, None]).astype(np.float32)
        out = np.zeros((d, m.shape[1]))
        for rows in chunks:
            out += x[rows].T @ wm[rows]
        return out - np.outer(mean, m.sum(axis=0))

    size = min(n_components + 20, n, d)
    rng = np.random.default_rng(random_state)
    q, _ = np.linalg.qr(times(rng.standard_normal((d, size))))
    for _ in range(4):  # each iteration reads the matrix twice
        q, _ = np.linalg.qr(transposed_times(q))
        q, _ = np.linalg.qr(times(q))
    _, s, vt = np.linalg.svd(transposed_times(q).T, full_matrices=False)
    components = vt[:n_components]
    # scikit-learn's sign convention: the largest entry of each component is positive.
    signs = np.sign(components[np.arange(n_components), np.abs(components).argmax(axis=1)])
    components *= signs[:, None]
    ratio = (s[:n_components] ** 2 / (n - 1)) / total_var
    return times(components.T), ratio


def _tsne_phases() -> list[tuple[str, int]]:
    """openTSNE's two optimisation phases and their iterations, as ``TSNE.fit`` runs them."""
    import openTSNE

    defaults = openTSNE.TSNE()
    return [("exaggeration", defaults.early_exaggeration_iter), ("optimisation", defaults.n_iter)]


def _tsne_steps() -> int:
    """Progress steps of a t-SNE run: the neighbour graph, then one per iteration."""
    return 1 + sum(iterations for _, iterations in _tsne_phases())


class _TSNEProgress:
    """openTSNE callback: ``optimization_about_to_start`` opens each of the two phases (the
    first one once the affinities and the initial layout exist), ``__call__`` runs every
    ``_TSNE_REPORT_EVERY`` iterations. Returning False lets the optimisation go on."""

    def __init__(self, report: _Reporter, phases: list[tuple[str, int]]) -> None:
        self.report = report
        self.phases = phases
        self.phase = -1
        self.start = report.done

    def optimization_about_to_start(self) -> None:
        if self.phase < 0:
            self.start += 1
            self.report(self.start, "neighbours")
        else:
            self.start += self.phases[self.phase][1]
        self.phase += 1

    def __call__(self, iteration: int, error: float, embedding) -> bool:
        self.report(self.start + iteration, self.phases[self.phase][0])
        return False


def _tsne(x, n_components, perplexity, random_state, params, report):
    import openTSNE

    n = x.shape[0]
    effective = min(float(perplexity), (n - 1) / 3)
    # openTSNE's "auto" rule, made explicit so that params say which ran; its FFT gradient
    # (linear in n) exists for 1-D and 2-D only, Barnes-Hut (n log n) is quicker below 10,000.
    gradient = "fft" if n > _FFT_ABOVE and n_components <= 2 else "bh"
    params.update(perplexity=effective, negative_gradient_method=gradient)
    # A list, not a bare callable: openTSNE calls optimization_about_to_start only then. No
    # callback without a progress: openTSNE then skips computing the KL divergence.
    callbacks = [_TSNEProgress(report, _tsne_phases())] if report.progress is not None else None
    tsne = openTSNE.TSNE(
        n_components=n_components,
        perplexity=effective,
        negative_gradient_method=gradient,
        # openTSNE's "auto": exact neighbours below 1,000 points, Annoy (seeded) above.
        neighbors="auto",
        callbacks=callbacks,
        callbacks_every_iters=_TSNE_REPORT_EVERY,
        random_state=random_state,
        n_jobs=-1,
    )
    return np.asarray(tsne.fit(x))


def _umap_class():
    """umap.UMAP, imported without TensorFlow.

    ``import umap`` also imports its parametric variant, which loads TensorFlow when it is
    installed (seconds and hundreds of MB). Plain UMAP does not use it, so unless TensorFlow is
    loaded anyway, that one optional import is made to fail and umap falls back to a stub.
    """
    with _UMAP_IMPORT_LOCK:  # app sessions run in threads; sys.modules is shared
        if "umap" not in sys.modules and "tensorflow" not in sys.modules:
            sys.modules["umap.parametric_umap"] = None  # makes that import raise ImportError
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    import umap
            finally:
                del sys.modules["umap.parametric_umap"]
        import umap

    return umap.UMAP


def _umap(x, n_components, n_neighbors, min_dist, random_state, params, report=None):
    n = x.shape[0]
    effective = max(2, min(int(n_neighbors), n - 1))
    # UMAP's spectral initialisation needs more points than dimensions + 1.
    init = "spectral" if n > n_components + 1 else "random"
    params.update(n_neighbors=effective, min_dist=float(min_dist), init=init)
    umap_class = _umap_class()
    knn = (None, None, None)
    if n >= _UMAP_EXACT_BELOW:
        # The neighbour graph as umap-learn would build it (NN-descent, seeded, one thread),
        # through its documented precomputed_knn, so that progress can report it done.
        from sklearn.utils import check_random_state
        from umap.umap_ import nearest_neighbors

        knn = nearest_neighbors(
            x, effective, "euclidean", {}, False, check_random_state(random_state), n_jobs=1
        )
        if report is not None:
            report(report.done + 1, "neighbours")
    model = umap_class(
        n_components=n_components,
        n_neighbors=effective,
        min_dist=min_dist,
        init=init,
        random_state=random_state,
        precomputed_knn=knn,
    )
    with warnings.catch_warnings():
        # "n_jobs value 1 overridden to 1 by setting random_state": expected, seeded runs
        # are single-threaded.
        warnings.simplefilter("ignore", UserWarning)
        return model.fit_transform(x)


def warm_up_umap() -> None:
    """Fit UMAP on 30 and on 4,200 random points, so that numba's compilation (tens of seconds:
    for the exact-neighbour path that umap-learn takes below 4,096 points and for its NN-descent
    path above) is paid now rather than on the user's projections. Call it once per process, for
    example on a background thread when an app starts (not run as a doctest: it takes that long)::

        threading.Thread(target=featlib.warm_up_umap, daemon=True).start()
    """
    rng = np.random.default_rng(0)
    for n in (30, 4_200):
        _umap(rng.normal(size=(n, 8)).astype(np.float32), 2, 15, 0.1, 0, {})


def _quality(x, embedding, normalize, random_state) -> dict[str, float]:
    """Trustworthiness and k-NN preservation on a seeded subsample of at most 2,000 points,
    distances in the geometry the projection used (cosine when ``normalize``)."""
    n = x.shape[0]
    if n > _QUALITY_SAMPLE:
        rng = np.random.default_rng(random_state)
        idx = np.sort(rng.choice(n, _QUALITY_SAMPLE, replace=False))
    else:
        idx = np.arange(n)
    high = x[idx]
    high = l2_normalize(high) if normalize else high
    # One float32 product for the feature-space distances, shared by both figures.
    sq = row_norms(high) ** 2
    high_dist = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * (high @ high.T), 0))
    np.fill_diagonal(high_dist, 0)
    low = embedding[idx]
    k = min(_QUALITY_NEIGHBORS, (len(idx) - 1) // 2)
    trust = trustworthiness(high_dist, low, n_neighbors=k, metric="precomputed")
    kept = 0
    neighbors = []
    for dist in (high_dist, pairwise_distances(low)):
        np.fill_diagonal(dist, np.inf)
        neighbors.append(np.argpartition(dist, k - 1, axis=1)[:, :k])
    for a, b in zip(*neighbors, strict=True):
        kept += np.intersect1d(a, b, assume_unique=True).size
    return {
        "trustworthiness": float(trust),
        "knn_preservation": kept / (len(idx) * k),
    }


def procrustes_align(reference, moving, scale: bool = True) -> np.ndarray:
    """Rotate (and reflect), shift and optionally scale ``moving`` to best match
    ``reference`` in the least-squares sense; for example to keep a projection steady while
    stepping through layers.

    Args:
        reference: array of shape (n_samples, n_components).
        moving: array of the same shape, the same points in the same order.
        scale: also fit one uniform scale factor.

    Returns:
        float32 array of shape (n_samples, n_components): ``moving`` aligned to
        ``reference``.

    Example::

        >>> ref = np.array([[0, 0], [1, 0], [0, 2]], dtype=np.float32)
        >>> turned = ref @ np.array([[0, 1], [-1, 0]]) * 3 + 5
        >>> np.allclose(procrustes_align(ref, turned), ref, atol=1e-5)
        True
    """
    ref = np.asarray(reference, dtype=np.float64)
    mov = np.asarray(moving, dtype=np.float64)
    if ref.ndim != 2 or ref.shape != mov.shape:
        raise FeatlibError(
            "reference and moving must be 2-D arrays of the same shape. "
            f"Received: {ref.shape} and {mov.shape}"
        )
    if not (np.isfinite(ref).all() and np.isfinite(mov).all()):
        raise FeatlibError("reference and moving must not contain NaN or infinite values.")
    ref_mean, mov_mean = ref.mean(axis=0), mov.mean(axis=0)
    ref_c, mov_c = ref - ref_mean, mov - mov_mean
    rotation, singular_sum = scipy.linalg.orthogonal_procrustes(mov_c, ref_c)
    norm_sq = float((mov_c**2).sum())
    factor = singular_sum / norm_sq if scale and norm_sq > 0 else 1.0
    return (factor * mov_c @ rotation + ref_mean).astype(np.float32)
