"""Projections: PCA, t-SNE (openTSNE) and UMAP through ``featlib.project`` as sets grow.

Vectors are 512-d in 10 clusters, as pooled features of a labelled set. UMAP is timed twice in
one process: its first call compiles numba code, the app warms it up in the background. The full
run adds 20,000 points, PCA of 20,000 x 25,088 (VGG16 ``block5_pool`` flattened) and openTSNE
against scikit-learn's ``TSNE`` on the same 5,000 points.

    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/projections.py          # 1,000 to 20,000
    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/projections.py --quick  # 1,000 and 5,000
"""

from __future__ import annotations

import argparse
import resource

import numpy as np
from _common import format_table, timed
from sklearn.manifold import TSNE

import featlib


def blobs(n: int, d: int = 512, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (10, d)).astype(np.float32)
    return centres[rng.integers(0, 10, n)] + rng.normal(0, 1, (n, d)).astype(np.float32)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 and 5,000 points only")
    args = parser.parse_args()
    sizes = [1_000, 5_000] if args.quick else [1_000, 5_000, 20_000]
    print("# projections: 512-d vectors in 10 clusters, 2-D")
    rows = []
    for n in sizes:
        x = blobs(n)
        for method, label in [
            ("pca", "PCA"),
            ("tsne", "t-SNE (openTSNE)"),
            ("umap", "UMAP"),
            ("umap", "UMAP, again in this process"),
        ]:
            result = {}
            seconds = timed(lambda: result.setdefault("p", featlib.project(x, method)))  # noqa: B023
            quality = result["p"].quality["trustworthiness"]
            rows.append([f"{n:,}", label, f"{seconds:.1f}", f"{quality:.3f}"])
    print(format_table(rows, ["points", "method", "seconds", "trustworthiness"]))
    if args.quick:
        return
    x = blobs(5_000)
    ours = timed(lambda: featlib.project(x, "tsne"))
    theirs = timed(lambda: TSNE(n_components=2, random_state=0).fit_transform(x))
    print(
        f"5,000 points: openTSNE {ours:.1f} s, scikit-learn TSNE {theirs:.1f} s "
        f"({theirs / ours:.2f}x)"
    )
    wide = np.random.default_rng(0).random((20_000, 25_088), dtype=np.float32)
    before = peak_mb()
    seconds = timed(lambda: featlib.project(wide, "pca"))
    print(
        f"PCA of 20,000 x 25,088 ({wide.nbytes / 1e9:.1f} GB): {seconds:.1f} s, "
        f"peak memory {peak_mb():.0f} MB (was {before:.0f} MB with the input loaded)"
    )


if __name__ == "__main__":
    main()
