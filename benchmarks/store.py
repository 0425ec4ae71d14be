"""The feature store: extracting a set cold (empty store) against again, warm (all stored).

Both runs call ``featlib.extract_set`` with the same extractor on the same JPEG set; the warm run
reads every vector from the store and computes nothing. MobileNetV2 (random weights, 224x224) is
the fastest backbone to compute, so the ratio shown is the smallest the store gives.

    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/store.py          # 1,000 images
    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/store.py --quick  # 200 images
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

from _common import format_table, jpeg_files, machine, timed

import featlib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 images instead of 1,000")
    args = parser.parse_args()
    n = 200 if args.quick else 1_000
    print(f"# store: {n} images, mobilenetv2 out_relu avg; {machine()}")
    images = featlib.from_uploads(jpeg_files(n, side=256))
    bb = featlib.load_backbone("mobilenetv2", weights="random", seed=0)
    ex = featlib.Extractor(bb, "out_relu", "avg")
    ex(images.load_batch(images.ok[:1], bb.input_size))  # tracing stays out of the timings
    with tempfile.TemporaryDirectory() as tmp:
        store = featlib.FeatureStore(tmp)
        runs = []

        def run():
            runs.append(featlib.extract_set(bb, images, "out_relu", store=store, extractor=ex))

        cold = timed(run)
        warm = statistics.median(timed(run) for _ in range(3))
        info = store.info()
    rows = [
        ["cold (empty store)", f"{cold:.2f}", f"{n / cold:.0f}", str(runs[0].computed)],
        ["warm (all stored)", f"{warm:.3f}", f"{n / warm:.0f}", str(runs[-1].computed)],
    ]
    print(format_table(rows, ["run", "seconds", "images/s", "computed"]))
    print(
        f"warm is {cold / warm:.0f}x faster than cold; store: {info['entries']} entries, "
        f"{info['bytes'] / 1e6:.1f} MB"
    )


if __name__ == "__main__":
    main()
