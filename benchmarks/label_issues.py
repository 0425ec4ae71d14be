"""Label issues: confident learning (cleanlab) against the hand rule, with labels flipped.

On the bundled faces (2 classes, 200) and digits (10 classes, 300), features from VGG16's
offline weights at the default layer, a share of the labels is flipped to another class at
random; ``featlib.check_dataset`` then flags label issues. Precision and recall are counted
against the flipped images over several seeds (the probe's own mistakes on correct labels count
as false flags), side by side for

- the hand rule: probability of the given label below the stricter of 0.2 and a fence on the
  set's quartiles, another label more likely (the check before confident learning);
- featlib now: the hand rule's threshold raised to cover cleanlab's ``low_self_confidence``
  picks (``featlib.analysis.checks.label_issues``).

    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/label_issues.py            # 5 seeds
    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/label_issues.py --seeds 2  # quicker
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import format_table, machine

import featlib
from featlib.analysis.checks.issues import default_threshold
from featlib.models.layers import block_outputs, default_layer, list_layers

RATES = (0.0, 0.05, 0.10, 0.20)


def set_features(sample: str):
    """Labels, SHA-256s and pooled features of a bundled sample set (through the store)."""
    bb = featlib.load_backbone("vgg16", "offline")
    layer = default_layer(list_layers(bb), block_outputs(bb))
    images = featlib.load_samples(sample)
    feats = featlib.extract_set(bb, images, [layer], store=featlib.FeatureStore())
    records = feats.records
    return [r.label for r in records], [r.sha256 for r in records], feats.features[layer]


def flip(labels, rate: float, seed: int):
    """Labels with ``rate`` of them changed to another class at random; the flipped indices."""
    rng = np.random.default_rng(seed)
    classes = sorted(set(labels))
    flipped = rng.choice(len(labels), round(rate * len(labels)), replace=False)
    out = list(labels)
    for i in flipped:
        out[i] = str(rng.choice([c for c in classes if c != labels[i]]))
    return out, set(flipped.tolist())


def flags(labels, sha256s, features, seed: int) -> dict[str, set[int]]:
    """Flagged images of each rule."""
    report = featlib.check_dataset(sha256s, labels, features, random_state=seed)
    table = report.table("label_issues")
    prob = table.column("label_prob").astype(np.float64)
    more = table.column("other_more_likely").astype(bool)
    index = table.column("index")
    hand = prob < default_threshold("label_issues", prob, "below")
    return {
        "hand rule": set(index[hand & more].tolist()),
        "featlib": set(index[table.flags].tolist()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="flips per rate (default 5)")
    args = parser.parse_args()
    print(f"# label issues, flipped labels, {args.seeds} seeds, VGG16 offline; {machine()}")
    rows = []
    for sample in ("faces", "digits"):
        labels, sha256s, features = set_features(sample)
        for rate in RATES:
            counts: dict[str, list[int]] = {}
            for seed in range(args.seeds):
                noisy, flipped = flip(labels, rate, seed)
                for rule, found in flags(noisy, sha256s, features, seed).items():
                    tp, n_flags, n_flipped = counts.setdefault(rule, [0, 0, 0])
                    counts[rule] = [
                        tp + len(found & flipped),
                        n_flags + len(found),
                        n_flipped + len(flipped),
                    ]
            cells = []
            for tp, n_flags, n_flipped in counts.values():
                if n_flipped:
                    precision = tp / n_flags if n_flags else 1.0
                    recall = tp / n_flipped
                    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
                    cells.append(f"{precision:.2f} / {recall:.2f} / {f1:.2f}")
                else:
                    cells.append(f"{n_flags / args.seeds / len(labels):.1%} flagged")
            rows.append([f"{sample} ({len(labels)})", f"{rate:.0%}", *cells])
    columns = ["set", "flipped", *(f"{rule}: precision / recall / F1" for rule in counts)]
    print(format_table(rows, columns))


if __name__ == "__main__":
    main()
