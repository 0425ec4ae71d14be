"""Dataset checks at 10,000 images: pixel statistics and hashes, then the feature-based checks.

Issue 16's targets on this machine: pixel statistics and hashes of 10,000 images under 20 s; the
feature-based checks on 10,000 stored vectors under 10 s.

- Pictures: 10,000 of 96-160 px on the long side, cut from the offline scikit-image photos
  (random crop of 50-100 % of each side, sometimes mirrored, brightness 0.7-1.3), seeded. Pixel
  statistics and hashes are timed as ``check_dataset`` computes them (``_pixel_stats``), once
  with the hashes as they were (``imagehash.phash`` and ``dhash`` per view, kept here as the
  old path) and once as they are now, side by side in one run.
- Vectors: 10,000 of 512 dimensions, 20 classes of clustered Gaussians with 5 % of the labels
  flipped, as pooled features from the store: ``check_dataset`` without pixels (nearest
  neighbours, near duplicates, outliers, the cross-validated probe, cleanlab).
- The whole ``check_dataset`` with those pixels and vectors together, as a user runs it: pixel
  statistics, hashes, near duplicates from hashes and features (pairs of hashes compared among
  all images), every other check.

    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/checks_speed.py          # 10,000
    FEATLIB_OFFLINE=1 .venv/bin/python benchmarks/checks_speed.py --quick  # 1,000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import format_table, machine
from PIL import Image, ImageEnhance

import featlib
from featlib.analysis.checks import pixels as pixel_checks
from featlib.analysis.checks.hashes import image_hashes
from tests.featlib.analysis.checks.test_hashes import PHOTOS, _photo, imagehash_views


def pictures(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    photos = [_photo(name).convert("RGB") for name in PHOTOS]
    out = []
    for _ in range(n):
        photo = photos[rng.integers(len(photos))]
        w, h = photo.size
        cw, ch = (int(side * rng.uniform(0.5, 1.0)) for side in (w, h))
        x, y = rng.integers(0, w - cw + 1), rng.integers(0, h - ch + 1)
        crop = photo.crop((x, y, x + cw, y + ch))
        long_side = int(rng.integers(96, 161))
        crop = crop.resize(
            (max(1, long_side * cw // max(cw, ch)), max(1, long_side * ch // max(cw, ch)))
        )
        if rng.random() < 0.3:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        out.append(np.asarray(ImageEnhance.Brightness(crop).enhance(rng.uniform(0.7, 1.3))))
    return out


def vectors(n: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 20, n)
    centres = rng.normal(0, 1, (20, 512))
    x = np.maximum(centres[labels] + rng.normal(0, 1.5, (n, 512)), 0).astype(np.float32)
    flipped = rng.random(n) < 0.05
    labels[flipped] = rng.integers(0, 20, flipped.sum())
    return x, [f"class {c}" for c in labels]


def pixel_seconds(pixels, names) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    _, _, hashes = pixel_checks.pixel_stats(pixels, names)
    return time.perf_counter() - start, hashes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 images")
    args = parser.parse_args()
    n = 1_000 if args.quick else 10_000
    print(f"# checks at {n:,} images; {machine()}")
    start = time.perf_counter()
    pixels = pictures(n)
    names = [f"{i:05d}.png" for i in range(n)]
    print(f"{n:,} pictures of 96-160 px made in {time.perf_counter() - start:.1f} s")
    now, new_hashes = pixel_seconds(pixels, names)
    try:
        pixel_checks.image_hashes = imagehash_views
        before, old_hashes = pixel_seconds(pixels, names)
        pixel_checks.image_hashes = _no_hashes
        statistics, _ = pixel_seconds(pixels, names)
    finally:
        pixel_checks.image_hashes = image_hashes
    same = np.array_equal(old_hashes, new_hashes)
    x, labels = vectors(n)
    sha256s = [f"{i:064x}" for i in range(n)]
    start = time.perf_counter()
    featlib.check_dataset(sha256s, labels, x, names=names)
    features = time.perf_counter() - start
    start = time.perf_counter()
    featlib.check_dataset(sha256s, labels, x, names=names, pixels=pixels)
    whole = time.perf_counter() - start
    rows = [
        ["pixel statistics + hashes", f"{before:.1f}", f"{now:.1f}", f"{before / now:.1f}x"],
        ["  the hashes alone", f"{before - statistics:.1f}", f"{now - statistics:.1f}",
         f"{(before - statistics) / (now - statistics):.1f}x"],
        ["feature checks, 512-d vectors", "", f"{features:.1f}", ""],
        ["check_dataset, pixels and vectors", "", f"{whole:.1f}", ""],
    ]  # fmt: skip
    print(format_table(rows, [f"{n:,} images", "imagehash (s)", "now (s)", "speed-up"]))
    print(f"hashes identical to imagehash's on every image: {'yes' if same else 'NO'}")


def _no_hashes(gray: np.ndarray) -> np.ndarray:
    return np.zeros((11, 128), dtype=bool)


if __name__ == "__main__":
    main()
