"""The issues the checks know, their words for people, and their default thresholds: the
stricter of an absolute bound and a Tukey fence on the set's own quartiles."""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from featlib.analysis.checks.hashes import (
    MATCH_BITS,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "ISSUES",
    "TITLES",
]


ISSUES = (
    "exact_duplicates",
    "near_duplicates",
    "outliers",
    "label_issues",
    "dark",
    "overexposed",
    "blurry",
    "low_information",
    "grayscale",
    "tiny",
    "odd_size",
    "odd_aspect",
)

# What a user reads for each issue: the page, the CSV/HTML reports and the CLI share these.
TITLES: Mapping[str, str] = MappingProxyType(
    {
        "exact_duplicates": "Exact duplicates",
        "near_duplicates": "Near duplicates",
        "outliers": "Outliers",
        "label_issues": "Likely label issues",
        "dark": "Dark",
        "overexposed": "Overexposed",
        "blurry": "Blurry",
        "low_information": "Low information",
        "grayscale": "Grayscale",
        "tiny": "Tiny",
        "odd_size": "Odd size",
        "odd_aspect": "Odd aspect ratio",
    }
)

# The absolute bounds. A default threshold is the stricter of this bound and a fence drawn from
# the set's own quartiles (see _FENCES), so that what most of a set shares is not flagged per
# image. None: every row is flagged (exact duplicates), or only the fence counts (outliers).
DEFAULT_THRESHOLDS: Mapping[str, float | None] = MappingProxyType(
    {
        "exact_duplicates": None,
        "near_duplicates": 0.95,
        "outliers": None,
        "label_issues": 0.2,
        "dark": 0.15,
        "overexposed": 0.85,
        "blurry": 50.0,
        "low_information": 3.0,
        "grayscale": 0.01,
        "tiny": 32.0,
        "odd_size": 4.0,
        "odd_aspect": 3.0,
    }
)

DESCRIPTIONS = {
    "exact_duplicates": "files with identical bytes (score: copies of that content)",
    "near_duplicates": "pairs whose features (centred on the set's mean) have cosine "
    "similarity above the threshold, or whose perceptual hashes match (pHash and dHash of the "
    f"whole, mirrored, cropped or centre, at most {MATCH_BITS} of 128 bits apart, fewer in a "
    "set of alike pictures; beyond half that, only where the features confirm it); the evidence "
    "says which",
    "outliers": "mean cosine distance (features centred on the set's mean) to the nearest "
    "other images above the threshold; an image with a copy or near duplicate is none",
    "label_issues": "probability of the given label (out of fold) below the threshold, "
    "another label more likely; the default threshold also covers the images that confident "
    "learning (cleanlab) picks",
    "dark": "mean brightness (0-1) below the threshold",
    "overexposed": "mean brightness (0-1) above the threshold",
    "blurry": "variance of the Laplacian (0-255 scale, at most 256 px) below the threshold",
    "low_information": "grey-level entropy in bits (0-8) below the threshold",
    "grayscale": "mean spread between colour channels (0-1) below the threshold",
    "tiny": "shorter side in pixels below the threshold",
    "odd_size": "|log2(pixel count / median pixel count)| above the threshold",
    "odd_aspect": "long side / short side above the threshold",
}

# Tukey fences, drawn on a scale where the scores spread evenly: (scale, side, k). A score is
# unusual for the set when it lies more than k interquartile ranges beyond the quartile on
# ``side``. Chosen so that the bundled samples (trained and random weights) flag at most 5 % per
# issue while planted problems are still found (benchmarks/checks.py and
# tests/featlib/analysis/checks/test_dataset.py).
# near_duplicates: each image's best similarity, as log(1 - similarity).
_FENCES = {
    "near_duplicates": ("log_distance", "below", 2.5),
    "outliers": ("log", "above", 1.25),
    "label_issues": ("logit", "below", 1.5),
    "dark": ("linear", "below", 1.5),
    "overexposed": ("linear", "above", 1.5),
    "blurry": ("log", "below", 1.5),
    "low_information": ("linear", "below", 1.5),
    "grayscale": ("linear", "below", 1.5),
    "tiny": ("linear", "below", 1.5),
    "odd_size": ("linear", "above", 1.5),
    "odd_aspect": ("log", "above", 1.5),
}
_EPS = 1e-9
_SCALES = {
    "linear": (lambda v: v, lambda f: f),
    "log": (lambda v: np.log(np.maximum(v, _EPS)), math.exp),
    "log_distance": (lambda v: np.log(np.maximum(1 - v, _EPS)), lambda f: 1 - math.exp(f)),
    "logit": (
        lambda v: np.log(np.clip(v, _EPS, 1 - _EPS) / (1 - np.clip(v, _EPS, 1 - _EPS))),
        lambda f: 1 / (1 + math.exp(-f)),
    ),
}
# Under this share of the set, images beyond an absolute bound are flagged whatever the fence
# says: few enough to look at, and rare in the set by definition.
_RARE = 0.05
# Set facts name what more than this share of a set has in common.
FACT_SHARE = 0.05
FACTS = {
    "dark": "dark (mean brightness below {:g})",
    "overexposed": "overexposed (mean brightness above {:g})",
    "blurry": "soft (variance of the Laplacian below {:g})",
    "low_information": "low in information (grey-level entropy below {:g} bits)",
    "grayscale": "grayscale",
    "tiny": "tiny (shorter side below {:g} px)",
    "odd_aspect": "elongated (long side over {:g} times the short side)",
}


def tukey_fence(issue: str, values) -> float | None:
    """The Tukey fence of ``values`` for ``issue`` (``_FENCES``), on the scores' own scale,
    pulled back to the scores' range when it lies beyond it (then it flags nothing); None
    for fewer than 4 values."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 4:
        return None
    scale, side, k = _FENCES[issue]
    forward, back = _SCALES[scale]
    q1, q3 = np.percentile(forward(values), [25, 75])
    fence = back(q3 + k * (q3 - q1) if side == "above" else q1 - k * (q3 - q1))
    return float(np.clip(fence, values.min(), values.max()))


def default_threshold(issue: str, values, direction: str) -> float | None:
    """The stricter of the absolute bound and the set's fence; the bound alone when few
    images pass it (``_RARE``). With neither (outliers among fewer than 4 contents), the
    highest score: too few images to call one unusual."""
    bound = DEFAULT_THRESHOLDS[issue]
    values = np.asarray(values, dtype=np.float64)
    if bound is not None:
        beyond = values < bound if direction == "below" else values > bound
        if beyond.sum() <= _RARE * len(values):
            return bound
    fence = tukey_fence(issue, values)
    if fence is None and bound is None:
        return float(values.max())
    if fence is None or bound is None:
        return bound if fence is None else fence
    return min(bound, fence) if direction == "below" else max(bound, fence)
