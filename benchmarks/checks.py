"""Dataset checks: the whole ``featlib.check_dataset`` for 1,000 and 5,000 images, features given.

Features already in the store are the common case (the app and the CLI extract first), so this
times the checks alone: duplicates, outliers, label issues (cross-validated linear probe),
pixel statistics of 96x96 thumbnails, separability. Features are 512-d, 10 classes with a little
structure, as from a pooled backbone layer.

    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/checks.py          # 1,000 and 5,000, median of 3
    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/checks.py --quick  # 1,000, one run
    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/checks.py --flags  # flags on the clean samples

``--flags`` prints how many images each issue flags at the default thresholds on the bundled
sample sets, which are clean (no planted problem), with random MobileNetV2 weights and VGG16's
offline weights at the app's default layer: the defaults should flag at most about 5 % per issue.
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


def flags_on_samples() -> None:
    """Flagged images per issue on each bundled sample set, at the default thresholds."""
    from featlib.analysis.checks.issues import ISSUES, TITLES
    from featlib.models.layers import block_outputs, default_layer, list_layers

    print(f"# checks: images flagged per issue on the clean sample sets; {machine()}")
    rows = []
    for name, weights in (("mobilenetv2", "random"), ("vgg16", "offline")):
        bb = featlib.load_backbone(name, weights)
        layer = default_layer(list_layers(bb), block_outputs(bb))
        for sample in featlib.list_samples():
            images = featlib.load_samples(sample)
            feats = featlib.extract_set(bb, images, [layer])
            report = featlib.check_image_set(images, feats.records, feats.features[layer])
            flagged = report.image_flags()
            n = len(feats.records)
            worst = max(int(flagged[i].sum()) for i in flagged) / n
            cells = [str(int(flagged[i].sum())) if i in flagged else "-" for i in ISSUES]
            rows.append([f"{sample} ({n})", f"{name} {weights}", *cells, f"{worst:.1%}"])
    print(format_table(rows, ["set", "backbone", *(TITLES[i] for i in ISSUES), "worst"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 images, one run")
    parser.add_argument("--flags", action="store_true", help="flags on the clean sample sets")
    args = parser.parse_args()
    if args.flags:
        flags_on_samples()
        return
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
