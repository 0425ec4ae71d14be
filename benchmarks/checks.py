"""Dataset checks: the whole ``featlib.check_dataset`` for 1,000 and 5,000 images, features given.

Features already in the store are the common case (the app and the CLI extract first), so this
times the checks alone: duplicates, outliers, label issues (cross-validated linear probe),
pixel statistics of 96x96 thumbnails, separability. Features are 512-d, 10 classes with a little
structure, as from a pooled backbone layer.

    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/checks.py          # 1,000 and 5,000, median of 3
    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/checks.py --quick  # 1,000, one run
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from _common import format_table, machine, timed

import featlib


def dataset(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    centres = rng.normal(0, 1, (10, 512))
    features = (centres[labels] + rng.normal(0, 2, (n, 512))).astype(np.float32)
    pixels = [rng.integers(0, 256, (96, 96, 3), dtype=np.uint8) for _ in range(n)]
    return {
        "sha256s": [f"{i:064x}" for i in range(n)],
        "labels": [f"class {c}" for c in labels],
        "features": features,
        "names": [f"{i:05d}.jpg" for i in range(n)],
        "pixels": pixels,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 images, one run")
    args = parser.parse_args()
    sizes, repeats = ([1_000], 1) if args.quick else ([1_000, 5_000], 3)
    print(f"# checks: 512-d features, 10 classes, 96x96 pixels; {machine()}")
    rows = []
    for n in sizes:
        data = dataset(n)
        sha256s, labels, features = data.pop("sha256s"), data.pop("labels"), data.pop("features")
        seconds = statistics.median(
            timed(lambda: featlib.check_dataset(sha256s, labels, features, **data))  # noqa: B023
            for _ in range(repeats)
        )
        rows.append([f"{n:,}", f"{seconds:.2f}", f"{n / seconds:.0f}"])
    print(format_table(rows, ["images", "seconds", "images/s"]))


if __name__ == "__main__":
    main()
