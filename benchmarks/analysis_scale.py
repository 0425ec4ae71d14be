"""Analysis at 100,000 images: the neighbour index, projections, near pairs and label means.

Made-up 512-d float32 vectors, as pooled features of a labelled set: a seeded Gaussian mixture
of 20 clusters (labels "c00".."c19", 5 % unlabelled) with 1 % of the rows planted as near copies
of others, so that projections have structure and near pairs exist. Everything is timed once,
in one process, in this order: NeighborIndex build and 100 queries against 100 calls of the old
one-shot ``nearest``; PCA to 2-D; t-SNE and UMAP with ``pca_dims=50`` (UMAP's first call
includes numba's compilation, as an app's first projection does unless ``warm_up_umap`` ran);
``near_pairs`` at 0.95; ``label_mean_similarity``; ``nearest_all`` (every row's neighbours, as the
checks use them) against scikit-learn's brute-force cosine search on 20,000 rows, then on all of
them; the peak resident memory of the process.
``--quick`` (10,000 points) adds t-SNE and UMAP without the PCA step, for the ratio; UMAP is then
warm, and is timed again with the PCA step so that both sides are warm.

    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/analysis_scale.py          # 100,000 points
    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/analysis_scale.py --quick  # 10,000 points
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
from _common import format_table, machine, timed
from sklearn.neighbors import NearestNeighbors

from featlib.analysis.neighbors import (
    NeighborIndex,
    label_mean_similarity,
    near_pairs,
    nearest,
    nearest_all,
)
from featlib.analysis.projection import project

D = 512
CLUSTERS = 20


def mixture(n: int, seed: int = 0) -> tuple[np.ndarray, list[str | None]]:
    """``n`` vectors in ``CLUSTERS`` clusters with their labels; 1 % are near copies."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CLUSTERS, D), dtype=np.float32) * 1.5
    cluster = rng.integers(0, CLUSTERS, n)
    x = rng.standard_normal((n, D), dtype=np.float32)
    x += centres[cluster]
    copies = rng.choice(n, size=(n // 100, 2), replace=False)
    x[copies[:, 1]] = x[copies[:, 0]] + 0.1 * rng.standard_normal((len(copies), D), np.float32)
    cluster[copies[:, 1]] = cluster[copies[:, 0]]
    labels = [f"c{c:02d}" for c in cluster.tolist()]
    for i in rng.choice(n, n // 20, replace=False).tolist():
        labels[i] = None
    return x, labels


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def projected(x: np.ndarray, method: str, pca_dims: int | None) -> tuple[float, float, str]:
    """Seconds, trustworthiness, and where the time went (seconds to each stage's first report)."""
    start = time.perf_counter()
    seen: dict[str, float] = {}

    def progress(done: int, total: int, stage: str) -> None:
        seen.setdefault(stage, time.perf_counter() - start)

    p = project(x, method, pca_dims=pca_dims, progress=progress)
    seconds = time.perf_counter() - start
    split = ", ".join(f"{s} {seen[s]:.1f}" for s in ("pca", "neighbours") if s in seen)
    return seconds, p.quality["trustworthiness"], split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 points, and without PCA")
    args = parser.parse_args()
    n = 10_000 if args.quick else 100_000
    x, labels = mixture(n)
    rows = []

    result = {}
    build = timed(lambda: result.setdefault("index", NeighborIndex(x)))
    index = result["index"]
    queries = np.random.default_rng(1).choice(n, 100, replace=False).tolist()
    start = time.perf_counter()
    answers = [index.query_row(i, 10) for i in queries]
    per_query = (time.perf_counter() - start) / len(queries)
    start = time.perf_counter()
    old = [nearest(x, i, 10) for i in queries]
    per_old = (time.perf_counter() - start) / len(queries)
    # Scores, not indices: the two round differently in the last bit, which can swap two
    # neighbours of (nearly) equal similarity.
    same = sum(np.allclose(a[1], b[1], atol=1e-6) for a, b in zip(answers, old, strict=True))
    rows.append(["NeighborIndex build", f"{build:.2f}", ""])
    rows.append(
        [
            "NeighborIndex.query_row, k=10 (mean of 100)",
            f"{per_query * 1000:.1f} ms",
            f"{per_old / per_query:.1f}x quicker than nearest(); same scores {same}/100",
        ]
    )
    rows.append(["nearest(features, i, 10), old (mean of 100)", f"{per_old * 1000:.1f} ms", ""])

    pca_seconds, pca_trust, _ = projected(x, "pca", None)
    rows.append(["PCA to 2-D", f"{pca_seconds:.1f}", f"trustworthiness {pca_trust:.3f}"])
    contenders = [("tsne", 50), ("umap", 50)]
    if args.quick:
        contenders += [("umap", None), ("umap", 50), ("tsne", None)]
    seen_umap = False
    for method, dims in contenders:
        seconds, trust, split = projected(x, method, dims)
        name = {"tsne": "t-SNE (openTSNE)", "umap": "UMAP"}[method]
        name += f", pca_dims={dims}"
        if method == "umap":
            name += ", warm" if seen_umap else ", first in this process (numba compiles)"
            seen_umap = True
        detail = f"trustworthiness {trust:.3f}" + (f"; at {split} s" if split else "")
        rows.append([name, f"{seconds:.1f}", detail])

    result = {}
    seconds = timed(lambda: result.setdefault("pairs", near_pairs(x, 0.95)))
    pairs, _ = result["pairs"]
    rows.append(["near_pairs, threshold 0.95", f"{seconds:.1f}", f"{len(pairs):,} pairs"])
    seconds = timed(lambda: label_mean_similarity(x, labels))
    rows.append(["label_mean_similarity, 21 labels", f"{seconds:.2f}", ""])
    # Every row's neighbours, as check_dataset needs them, against scikit-learn's brute-force
    # cosine search on the same rows (at most 20,000: scikit-learn's takes minutes beyond).
    sub = x[: min(n, 20_000)]
    result = {}
    ours = timed(lambda: result.setdefault("ours", nearest_all(sub, k=10)))
    search = NearestNeighbors(n_neighbors=11, metric="cosine", algorithm="brute")
    theirs = timed(lambda: result.setdefault("theirs", search.fit(sub).kneighbors(sub)))
    same = np.mean(np.abs(result["ours"][1] - (1 - result["theirs"][0][:, 1:])) < 1e-5)
    rows.append(
        [
            f"nearest_all, k=10, {len(sub):,} rows",
            f"{ours:.1f}",
            f"{theirs / ours:.1f}x quicker than scikit-learn ({theirs:.1f} s); "
            f"same scores {same:.2%}",
        ]
    )
    if n > len(sub):
        seconds = timed(lambda: nearest_all(x, k=10))
        rows.append([f"nearest_all, k=10, {n:,} rows", f"{seconds:.1f}", ""])
    # Read before machine(), which imports TensorFlow (about 1 GB) to name the device.
    peak = peak_mb()
    print(f"# analysis at scale: {n:,} x {D} float32 in {CLUSTERS} clusters; {machine()}")
    print(format_table(rows, ["step", "seconds", "notes"]))
    vectors = x.nbytes / 1e6
    print(f"peak resident memory: {peak:,.0f} MB (the vectors alone: {vectors:,.0f} MB)")


if __name__ == "__main__":
    main()
