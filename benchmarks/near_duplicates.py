"""Near duplicates that survive editing: recall per kind of edit and false pairs, with seconds.

The set is the one tests/featlib/analysis/checks/test_hashes.py builds (95 distinct pictures
from the offline scikit-image photos, one copy of each per kind of edit) with its features (8x8
colour thumbnails: a hash match far from exact needs their support). Beside featlib's checks,
one plain rule for comparison: the whole image's pHash within 10 bits (imagededup's default
distance for pHash).

    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/near_duplicates.py
"""

from __future__ import annotations

import time

import numpy as np
from _common import format_table, machine

from featlib.analysis.checks.dataset import check_dataset
from featlib.analysis.checks.hashes import image_hashes
from tests.featlib.analysis.checks.test_hashes import (
    EDITS,
    edited_set,
    pair_rates,
    thumbnail_features,
)

PLAIN_PHASH_BITS = 10


class _Flagged:
    """Just enough of a report for pair_rates: the given pairs, flagged."""

    def __init__(self, pairs):
        self.pairs = pairs

    def flagged(self, issue):
        return [{"index_a": a, "index_b": b} for a, b in self.pairs]


def plain_phash(pixels) -> _Flagged:
    gray = [p if p.ndim == 2 else p[..., :3] @ [0.2125, 0.7154, 0.0721] for p in pixels]
    bits = np.array([image_hashes(np.round(g).astype(np.uint8))[0, :64] for g in gray])
    distance = (bits[:, None, :] != bits[None, :, :]).sum(axis=2)
    a, b = np.nonzero(np.triu(distance <= PLAIN_PHASH_BITS, k=1))
    return _Flagged(list(zip(a.tolist(), b.tolist(), strict=True)))


def main() -> None:
    start = time.perf_counter()
    pixels, family, kind = edited_set()
    built = time.perf_counter() - start
    features = thumbnail_features(pixels)
    start = time.perf_counter()
    report = check_dataset(
        [f"sha-{i}" for i in range(len(pixels))], [None] * len(pixels), features, pixels=pixels
    )
    seconds = time.perf_counter() - start
    ours = pair_rates(report, family, kind)
    rows = report.table("near_duplicates").as_dicts()
    agreed = sum(" confirm it (" in r["evidence"] for r in rows)
    contradicted = sum(" reject it (" in r["evidence"] for r in rows)
    plain = pair_rates(plain_phash(pixels), family, kind)
    print(machine())
    pictures = sum(k is None for k in kind)
    print(f"{len(pixels)} images ({pictures} pictures), built in {built:.1f} s")
    print(f"check_dataset (pixel statistics, hashes, every check): {seconds:.1f} s")
    print(f"hash matches past half the bound: {agreed} confirmed by the features, "
          f"{contradicted} rejected")  # fmt: skip
    rows = [[name, f"{ours[0][name]:.3f}", f"{plain[0][name]:.3f}"] for name in EDITS]
    rows.append(["distinct pairs flagged", f"{ours[1]:.3%}", f"{plain[1]:.3%}"])
    print(format_table(rows, ["recall per edit", "featlib", f"whole pHash <= {PLAIN_PHASH_BITS}"]))


if __name__ == "__main__":
    main()
