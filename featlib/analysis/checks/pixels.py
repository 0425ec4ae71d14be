"""Image statistics from pixels: brightness, contrast, blur, size and aspect ratio."""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import convolve
from skimage.restoration.uft import laplacian
from threadpoolctl import threadpool_limits

from featlib.analysis.checks.hashes import (
    image_hashes,
)
from featlib.analysis.checks.issues import default_threshold
from featlib.analysis.checks.report import IssueTable
from featlib.errors import FeatlibError

__all__: list[str] = []

# Image statistics are taken at most this many pixels on the long side, so that a score (the
# Laplacian's variance above all) does not depend on the resolution.
QUALITY_SIDE = 256
# skimage.color.rgb2gray's weights (ITU-R BT.709), applied as one product for speed.
_GRAY_WEIGHTS = np.array([0.2125, 0.7154, 0.0721], dtype=np.float32)
# skimage.filters.laplace's operator, built once: laplace() rebuilds it (with an FFT) on every
# call, which was a third of the time on small images. convolve(gray, it) == laplace(gray).
_LAPLACE_KERNEL = laplacian(2, (3, 3))[1].astype(np.float32)


def pixel_stats(pixels, names) -> tuple[np.ndarray, list[tuple[int, int]], np.ndarray]:
    """Per image: brightness, Laplacian variance, entropy, channel spread; (h, w); and its
    perceptual hashes (:func:`featlib.analysis.checks.hashes.image_hashes`), from the same
    decoded pixels."""
    stats = np.empty((len(pixels), 4))
    hashes = []
    sizes = []
    # One BLAS thread: the hashes' matrix products are small, and threads made them 2-10x
    # slower on a busy 2-core machine (0.5 ms per 128 px image against 2-6 ms).
    with threadpool_limits(limits=1, user_api="blas"):
        for i, image in enumerate(pixels):
            arr = np.asarray(image)
            if (
                arr.dtype != np.uint8
                or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4)))
                or min(arr.shape[:2]) < 1
            ):
                raise FeatlibError(
                    f"pixels of {names[i]!r} must be a uint8 array (h, w, 3) or (h, w). "
                    f"Received: dtype={arr.dtype}, shape={arr.shape}"
                )
            h, w = arr.shape[:2]
            sizes.append((h, w))
            step = math.ceil(max(h, w) / QUALITY_SIDE)
            if arr.ndim == 2:
                gray = arr.astype(np.float32) / 255
                spread = 0.0
            else:
                rgb = arr[..., :3]
                gray = (rgb.astype(np.float32) @ _GRAY_WEIGHTS) / 255
                sub = rgb[::step, ::step]
                r, g, b = sub[..., 0], sub[..., 1], sub[..., 2]
                high = np.maximum(np.maximum(r, g), b)
                low = np.minimum(np.minimum(r, g), b)
                spread = float((high - low).mean()) / 255
            if step > 1:
                gray = gray[: h // step * step, : w // step * step]
                gray = gray.reshape(h // step, step, w // step, step).mean(axis=(1, 3))
            # Entropy of the 8-bit grey histogram: skimage.measure.shannon_entropy's value from
            # a 256-bin count, without np.unique's sort and scipy.stats' per-call overhead.
            gray8 = np.round(gray * 255).astype(np.uint8)
            hashes.append(image_hashes(gray8))
            counts = np.bincount(gray8.ravel(), minlength=256)
            p = counts[counts > 0] / counts.sum()
            stats[i] = (
                gray.mean(),
                float(convolve(gray, _LAPLACE_KERNEL).var()) * 255**2,
                float(-(p * np.log2(p)).sum()),
                spread,
            )
    return stats, sizes, np.array(hashes)


def _per_image_table(issue, values, names, direction, extra=None) -> IssueTable:
    extra_columns, extra_values = extra or ((), [()] * len(values))
    rows = [(i, names[i], *extra_values[i], float(v)) for i, v in enumerate(values)]
    sign = -1 if direction == "above" else 1
    rows.sort(key=lambda r: (sign * r[-1], r[0]))
    return IssueTable(
        issue=issue,
        columns=("index", "name", *extra_columns, "score"),
        rows=tuple(rows),
        score_column="score",
        threshold=default_threshold(issue, values, direction),
        direction=direction,
    )


def quality_tables(stats, names) -> dict[str, IssueTable]:
    brightness, blur, info, spread = stats.T
    return {
        "dark": _per_image_table("dark", brightness, names, "below"),
        "overexposed": _per_image_table("overexposed", brightness, names, "above"),
        "blurry": _per_image_table("blurry", blur, names, "below"),
        "low_information": _per_image_table("low_information", info, names, "below"),
        "grayscale": _per_image_table("grayscale", spread, names, "below"),
    }


def size_tables(sizes, names) -> dict[str, IssueTable]:
    """The size checks from per-image (height, width): tiny, odd_size and odd_aspect."""
    height, width = sizes.T
    area = width * height
    wh = (("width", "height"), [(int(w), int(h)) for h, w in sizes])
    return {
        "tiny": _per_image_table("tiny", np.minimum(width, height), names, "below", wh),
        "odd_size": _per_image_table(
            "odd_size", np.abs(np.log2(area / np.median(area))), names, "above", wh
        ),
        "odd_aspect": _per_image_table(
            "odd_aspect",
            np.maximum(width, height) / np.minimum(width, height),
            names,
            "above",
            wh,
        ),
    }
