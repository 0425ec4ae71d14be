"""The feature store: extracting a set cold (empty store) against again, warm (all stored).

Both runs call ``featlib.extract_set`` with the same extractor on the same JPEG set; the warm run
reads every vector from the store and computes nothing. They alternate (the store is cleared
before each cold run) and the medians are compared. MobileNetV2 (random weights, 224x224) is the
fastest backbone to compute, so the ratio shown is the smallest the store gives.

    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/store.py          # 1,000 images, 3 repeats
    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/store.py --quick  # 200 images, 2 repeats
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

from _common import format_table, jpeg_files, machine, timed

import featlib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 images, 2 repeats")
    args = parser.parse_args()
    n, repeats = (200, 2) if args.quick else (1_000, 3)
    print(f"# store: {n} images, mobilenetv2 out_relu avg, {repeats} repeat(s); {machine()}")
    images = featlib.from_uploads(jpeg_files(n, side=256))
    bb = featlib.load_backbone("mobilenetv2", weights="random", seed=0)
    ex = featlib.Extractor(bb, "out_relu", "avg")
    ex(images.load_batch(images.ok[:1], bb.input_size))  # tracing stays out of the timings
    with tempfile.TemporaryDirectory() as tmp:
        store = featlib.FeatureStore(tmp)
        computed = {}

        def run(kind: str) -> None:
            feats = featlib.extract_set(bb, images, "out_relu", store=store, extractor=ex)
            computed[kind] = feats.computed

        cold, warm = [], []
        for _ in range(repeats):
            store.clear()
            cold.append(timed(lambda: run("cold")))
            warm.append(timed(lambda: run("warm")))
        info = store.info()
    cold_s, warm_s = statistics.median(cold), statistics.median(warm)
    rows = [
        ["cold (empty store)", f"{cold_s:.2f}", f"{n / cold_s:.0f}", f"{computed['cold']:,}"],
        ["warm (all stored)", f"{warm_s:.3f}", f"{n / warm_s:.0f}", f"{computed['warm']:,}"],
    ]
    print(format_table(rows, ["run", "median seconds", "images/s", "computed"]))
    print(
        f"warm is {cold_s / warm_s:.0f}x faster than cold; store: {info['entries']:,} entries, "
        f"{info['bytes'] / 1e6:.1f} MB"
    )


if __name__ == "__main__":
    main()
