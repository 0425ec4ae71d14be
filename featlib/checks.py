"""Dataset sanity checks: duplicates, outliers, likely label issues, image quality and how well
the classes separate.

:func:`check_dataset` takes plain pieces (content hashes, labels, feature vectors, small
pixel arrays) and computes every score once. Flags are derived from thresholds, so
:meth:`CheckReport.with_thresholds` changes what is flagged without recomputing anything.

Default thresholds are relative to the set: the stricter of an absolute bound
(:data:`DEFAULT_THRESHOLDS`) and a Tukey fence on the set's own quartiles, so that a clean set
flags few images (at most about 5 % per issue on the bundled samples). What many images share
(all grayscale, all 25×25) is said once in :attr:`CheckReport.facts`, not flagged per image.

Identical files (same SHA-256) are compared once: near duplicates, outliers and the
feature-space checks use the first image of each content, and its copies share its result.

Nothing here imports TensorFlow; only :func:`check_image_set` reads pixels, through the
``ImageSet`` it is given.

Example::

    >>> import numpy as np
    >>> from featlib.checks import check_dataset
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(60, 16)).astype(np.float32)
    >>> x[1] = x[0] + 0.001
    >>> report = check_dataset([f"{i}" for i in range(60)], ["a", "b"] * 30, x)
    >>> [(i, n) for i, n, _ in report.summary()][:2]
    [('exact_duplicates', 0), ('near_duplicates', 1)]
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np
from scipy.ndimage import convolve
from skimage.restoration.uft import laplacian
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, silhouette_score
from sklearn.model_selection import PredefinedSplit, StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from featlib.errors import FeatlibError
from featlib.hashes import (
    MATCH_BITS,
    distinct_similarities,
    hash_candidates,
    image_hashes,
    judge,
    match,
)
from featlib.label_issues import find_label_issues, reason
from featlib.neighbors import _as_features, _l2_normalize, nearest_all
from featlib.set_checks import (
    RareClass,
    Shortcut,
    find_shortcut,
    leaked_images,
    property_vectors,
    rare_classes,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "ISSUES",
    "TITLES",
    "CheckReport",
    "IssueTable",
    "Separability",
    "check_dataset",
    "check_image_set",
    "format_percent",
    "report_thumbnails",
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

_DESCRIPTIONS = {
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

# Image statistics are taken at most this many pixels on the long side, so that a score (the
# Laplacian's variance above all) does not depend on the resolution.
_QUALITY_SIDE = 256
# skimage.color.rgb2gray's weights (ITU-R BT.709), applied as one product for speed.
_GRAY_WEIGHTS = np.array([0.2125, 0.7154, 0.0721], dtype=np.float32)
# skimage.filters.laplace's operator, built once: laplace() rebuilds it (with an FFT) on every
# call, which was a third of the time on small images. convolve(gray, it) == laplace(gray).
_LAPLACE_KERNEL = laplacian(2, (3, 3))[1].astype(np.float32)
_MAX_FOLDS = 5
# Wider features are reduced to _PROBE_DIMS principal components before the probe.
_PROBE_MAX_DIMS = 1024
_PROBE_DIMS = 256
_SILHOUETTE_SAMPLE = 2_000
_NEAR_NEIGHBORS = 10
_PAIR_COLUMNS = ("index_a", "index_b", "name_a", "name_b", "split_a", "split_b", "leakage")
# Tukey fences, drawn on a scale where the scores spread evenly: (scale, side, k). A score is
# unusual for the set when it lies more than k interquartile ranges beyond the quartile on
# ``side``. Chosen so that the bundled samples (trained and random weights) flag at most 5 % per
# issue while planted problems are still found (tests/test_checks.py, benchmarks/checks.py).
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
_FACT_SHARE = 0.05
_FACTS = {
    "dark": "dark (mean brightness below {:g})",
    "overexposed": "overexposed (mean brightness above {:g})",
    "blurry": "soft (variance of the Laplacian below {:g})",
    "low_information": "low in information (grey-level entropy below {:g} bits)",
    "grayscale": "grayscale",
    "tiny": "tiny (shorter side below {:g} px)",
    "odd_aspect": "elongated (long side over {:g} times the short side)",
}


@dataclass(frozen=True)
class IssueTable:
    """Scores of one issue type; which rows are flagged follows from ``threshold``.

    Attributes:
        issue: one of :data:`ISSUES`.
        columns: names of the fields of each row. Image indices are in ``index`` (per-image
            tables) or ``index_a`` / ``index_b`` (pair tables).
        rows: one tuple per image or pair, worst first.
        score_column: the column compared with ``threshold``.
        threshold: the current threshold; None flags every row.
        direction: "above" (flagged when score > threshold) or "below" (score < threshold).
        eligible_column: a boolean column; rows where it is False are never flagged.
        min_threshold: the lowest threshold the stored rows support (near duplicates keep
            only candidate pairs above it); None when any value works.
        exclude_column, exclude_at: rows whose ``exclude_column`` is at least ``exclude_at``
            are never flagged (outliers: an image with a near duplicate is not an outlier;
            :meth:`CheckReport.with_thresholds` keeps it equal to the near-duplicate
            threshold).
        match_column: a boolean column; rows where it is True are flagged at any threshold
            (near duplicates whose perceptual hashes match).
    """

    issue: str
    columns: tuple[str, ...]
    rows: tuple[tuple, ...]
    score_column: str
    threshold: float | None
    direction: str = "above"
    eligible_column: str | None = None
    min_threshold: float | None = None
    exclude_column: str | None = None
    exclude_at: float | None = None
    match_column: str | None = None

    @property
    def title(self) -> str:
        """The issue's name for people (``TITLES``)."""
        return TITLES[self.issue]

    @property
    def description(self) -> str:
        """What the score means, in a sentence."""
        return _DESCRIPTIONS[self.issue]

    @property
    def pairwise(self) -> bool:
        """Whether rows are pairs of images (``index_a``, ``index_b``) rather than images."""
        return "index_b" in self.columns

    @property
    def flags(self) -> np.ndarray:
        """Boolean array of shape (len(rows),): which rows are flagged."""
        if self.threshold is None:
            flags = np.ones(len(self.rows), dtype=bool)
        else:
            scores = self.column(self.score_column).astype(np.float64)
            if self.direction == "above":
                flags = scores > self.threshold
            else:
                flags = scores < self.threshold
        if self.match_column is not None:
            flags |= self.column(self.match_column).astype(bool)
        if self.eligible_column is not None:
            flags &= self.column(self.eligible_column).astype(bool)
        if self.exclude_column is not None and self.exclude_at is not None:
            flags &= self.column(self.exclude_column).astype(np.float64) < self.exclude_at
        return flags

    @property
    def n_flagged(self) -> int:
        """How many rows are flagged."""
        return int(self.flags.sum())

    @property
    def flagged_text(self) -> str:
        """How many rows are flagged, in words: ``"1 pair"``, ``"9 images"``."""
        n = self.n_flagged
        return f"{n} {'pair' if self.pairwise else 'image'}{'' if n == 1 else 's'}"

    def column(self, name: str) -> np.ndarray:
        """One column as an array of shape (len(rows),)."""
        i = self.columns.index(name)
        return np.array([row[i] for row in self.rows])

    def score_range(self) -> tuple[float, float] | None:
        """The lowest and highest threshold worth offering: the scores' range, widened to the
        current threshold and ``min_threshold``; None when there is nothing to choose (no
        rows, no threshold, or a single value)."""
        if self.threshold is None or not self.rows:
            return None
        scores = self.column(self.score_column).astype(np.float64)
        low = float(scores.min()) if self.min_threshold is None else self.min_threshold
        low = min(low, self.threshold)
        high = max(float(scores.max()), self.threshold)
        return (low, high) if high > low else None

    def as_dicts(self) -> list[dict[str, Any]]:
        """Every row as a dict (column -> value, plus ``flagged``), worst first."""
        return [
            {**dict(zip(self.columns, row, strict=True)), "flagged": bool(flag)}
            for row, flag in zip(self.rows, self.flags, strict=True)
        ]

    def flagged_rows(self) -> list[dict[str, Any]]:
        """The flagged rows, as :meth:`as_dicts` gives them."""
        return [row for row in self.as_dicts() if row["flagged"]]

    def with_threshold(self, threshold: float) -> IssueTable:
        """The same scores with another threshold (nothing is recomputed).

        Args:
            threshold: a finite number, at least ``min_threshold`` when that is set.

        Returns:
            a new :class:`IssueTable`.
        """
        if self.threshold is None and self.issue == "exact_duplicates":
            raise FeatlibError("exact_duplicates has no threshold: identical files always count.")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)):
            raise FeatlibError(
                f"threshold for {self.issue} must be a number. Received: {threshold!r}"
            )
        if not math.isfinite(threshold):
            raise FeatlibError(f"threshold for {self.issue} must be finite. Received: {threshold}")
        if self.min_threshold is not None and threshold < self.min_threshold:
            raise FeatlibError(
                f"threshold for {self.issue} must be at least {self.min_threshold}: only pairs "
                f"above it were kept. Received: {threshold}. Run check_dataset with "
                f"near_duplicate_floor={threshold} to look lower."
            )
        return replace(self, threshold=float(threshold))

    def to_csv(self) -> str:
        """All rows as CSV text, with a final ``flagged`` column."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([*self.columns, "flagged"])
        for row, flag in zip(self.rows, self.flags, strict=True):
            writer.writerow([*(_csv_value(v) for v in row), int(flag)])
        return out.getvalue()


@dataclass(frozen=True)
class Separability:
    """How well a linear probe tells the classes apart (out-of-fold predictions).

    Attributes:
        classes: the classes in the probe, sorted.
        class_counts: images per label, every labelled image counted.
        imbalance_ratio: largest class count / smallest class count.
        excluded_classes: labels with fewer than 2 distinct images, left out of the probe.
        n_folds: cross-validation folds (at most 5, at most the smallest class's size).
        accuracy: fraction of probe images predicted right.
        balanced_accuracy: mean of the per-class accuracies.
        chance_accuracy: the accuracy of always answering the largest class.
        per_class_accuracy: class -> fraction of its images predicted right.
        confusion: int64 array of shape (n_classes, n_classes); rows true, columns predicted.
        silhouette: cosine silhouette score of the labels (-1..1) on at most 2,000 images,
            or None when it cannot be computed.
    """

    classes: tuple[str, ...]
    class_counts: dict[str, int]
    imbalance_ratio: float
    excluded_classes: tuple[str, ...]
    n_folds: int
    accuracy: float
    balanced_accuracy: float
    chance_accuracy: float
    per_class_accuracy: dict[str, float]
    confusion: np.ndarray
    silhouette: float | None

    @property
    def n_images(self) -> int:
        """Images in the probe."""
        return int(self.confusion.sum())

    @property
    def n_correct(self) -> int:
        """Probe images predicted right."""
        return int(np.trace(self.confusion))

    def accuracy_text(self) -> str:
        """The accuracy as people should read it: ``"99.5 % (199 of 200)"``."""
        return f"{format_percent(self.accuracy)} ({self.n_correct} of {self.n_images})"


def format_percent(fraction: float) -> str:
    """A fraction as a percentage that never rounds to 0 % or 100 % unless it is exactly that.

    Example::

        >>> format_percent(0.995), format_percent(0.99999), format_percent(1.0)
        ('99.5 %', '99.9 %', '100 %')
    """
    if fraction in (0, 1):
        return f"{fraction:.0%}".replace("%", " %")
    text = f"{fraction * 100:.1f}"
    if text == "100.0":
        text = "99.9"
    elif text == "0.0":
        text = "0.1"
    return f"{text.removesuffix('.0')} %"


@dataclass(frozen=True)
class CheckReport:
    """Everything :func:`check_dataset` found.

    Attributes:
        names, sha256s, labels, splits: per image, as given (splits may be all None).
        groups: per image, the index of the first image with the same content.
        tables: issue -> :class:`IssueTable`, for the issues that could be computed.
        skipped: issue -> why it was not computed (no labels, no pixels...).
        separability: the linear-probe figures, or None (see ``skipped["separability"]``).
        facts: what the set has in common, said once instead of flagged per image
            ("every image is grayscale").
        rare_classes: classes much rarer than the others (``featlib.set_checks``).
        shortcut: labels that image properties alone predict, or None.
    """

    names: tuple[str, ...]
    sha256s: tuple[str, ...]
    labels: tuple[str | None, ...]
    splits: tuple[str | None, ...]
    groups: tuple[int, ...]
    tables: dict[str, IssueTable] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    separability: Separability | None = None
    facts: tuple[str, ...] = ()
    rare_classes: tuple[RareClass, ...] = ()
    shortcut: Shortcut | None = None

    @property
    def warnings(self) -> tuple[str, ...]:
        """What a model trained on the set would suffer from, as sentences: rare classes, a
        shortcut in the image properties, duplicates across splits (at the current
        thresholds)."""
        found = [rare.sentence() for rare in self.rare_classes]
        if self.shortcut is not None:
            found.append(self.shortcut.sentence())
        leakage = self.leakage()
        if leakage:
            counts = ", ".join(f"{n} in {split!r}" for split, n in leakage.items())
            total = sum(leakage.values())
            found.append(
                f"{total} image{' has' if total == 1 else 's have'} an exact or near duplicate "
                f"in another split ({counts}): a test score would count them as seen"
            )
        return tuple(found)

    def leaked_images(self) -> np.ndarray:
        """Boolean array of shape (n_images,): has the image a flagged exact or near duplicate
        in another split (leakage)."""
        rows = [
            row
            for issue in ("exact_duplicates", "near_duplicates")
            if issue in self.tables
            for row in self.tables[issue].flagged_rows()
        ]
        return leaked_images(rows, self.groups)

    def leakage(self) -> dict[str, int]:
        """split -> images in it with a flagged duplicate in another split; empty when none."""
        counts = Counter(self.splits[i] for i in np.flatnonzero(self.leaked_images()))
        return dict(sorted(counts.items()))

    @property
    def thresholds(self) -> dict[str, float | None]:
        """issue -> current threshold, for the computed issues."""
        return {issue: table.threshold for issue, table in self.tables.items()}

    def table(self, issue: str) -> IssueTable:
        """The table of one issue type.

        Args:
            issue: one of the keys of ``tables``.

        Returns:
            its :class:`IssueTable`.

        Raises:
            FeatlibError: an unknown issue, or one that was skipped (the message says why).
        """
        if issue in self.tables:
            return self.tables[issue]
        if issue in self.skipped:
            raise FeatlibError(f"{issue} was not checked: {self.skipped[issue]}")
        raise FeatlibError(f"unknown issue {issue!r}; choose one of {tuple(self.tables)}")

    def flagged(self, issue: str, threshold: float | None = None) -> list[dict[str, Any]]:
        """Flagged rows of one issue, worst first, optionally at another threshold.

        Args:
            issue: one of the keys of ``tables``.
            threshold: use this threshold instead of the current one (nothing is recomputed).

        Returns:
            one dict per flagged row: column -> value, plus ``flagged``.

        Example::

            report.flagged("near_duplicates", threshold=0.99)
        """
        table = self.table(issue)
        if threshold is not None:
            table = table.with_threshold(threshold)
        return table.flagged_rows()

    def with_thresholds(self, **thresholds: float) -> CheckReport:
        """The same report with other thresholds; scores are not recomputed.

        Args:
            **thresholds: issue -> new threshold.

        Returns:
            a new :class:`CheckReport`; this one is unchanged.

        Example::

            strict = report.with_thresholds(near_duplicates=0.99, blurry=20.0)
        """
        tables = dict(self.tables)
        for issue, value in thresholds.items():
            tables[issue] = self.table(issue).with_threshold(value)
        if "near_duplicates" in thresholds and "outliers" in tables:
            near = tables["near_duplicates"].threshold
            tables["outliers"] = replace(tables["outliers"], exclude_at=near)
        return replace(self, tables=tables)

    def summary(self) -> list[tuple[str, int, float | None]]:
        """``(issue, number of flagged rows, threshold)`` for each computed issue."""
        return [(issue, t.n_flagged, t.threshold) for issue, t in self.tables.items()]

    def summary_rows(self) -> list[dict[str, str]]:
        """The summary as a table for people, one row per issue (computed, then skipped).

        Returns:
            dicts with the keys ``issue`` (its title), ``images`` (flagged images), ``pairs``
            (flagged pairs, duplicates only), ``threshold`` ("none": every row counts),
            ``note`` ("not checked: why", or empty) and ``meaning`` (the note, else what the
            score is).
        """
        images = self.image_flags()
        rows = [
            {
                "issue": table.title,
                "images": str(int(images[issue].sum())),
                "pairs": str(table.n_flagged) if table.pairwise else "",
                "threshold": _fmt(table.threshold) or "none",
                "note": "",
                "meaning": table.description,
            }
            for issue, table in self.tables.items()
        ]
        if any(self.splits):
            leakage = self.leakage()
            counts = ", ".join(f"{split} {n}" for split, n in leakage.items())
            rows.append(
                {"issue": "Leakage across splits", "images": str(sum(leakage.values())),
                 "pairs": "", "threshold": "", "note": "",
                 "meaning": "images with an exact or near duplicate in another split"
                 + (f" ({counts})" if counts else "")}
            )  # fmt: skip
        for issue, why in self.skipped.items():
            note = f"not checked: {why}"
            title = TITLES.get(issue, issue.capitalize())
            rows.append(
                {"issue": title, "images": "", "pairs": "", "threshold": "", "note": note,
                 "meaning": note}
            )  # fmt: skip
        return rows

    def image_flags(self) -> dict[str, np.ndarray]:
        """issue -> boolean array of shape (n_images,): is the image in a flagged row.

        Copies of an image (same content) share its flags in the feature-space checks.
        """
        return {issue: self._per_image(t)[1] for issue, t in self.tables.items()}

    def _per_image(self, table: IssueTable) -> tuple[list, np.ndarray]:
        """Per-image score (worst over the rows naming the image, None if none) and flag."""
        n = len(self.names)
        groups = np.asarray(self.groups)
        scores: list = [None] * n
        flags = np.zeros(n, dtype=bool)
        index_columns = [c for c in table.columns if c.startswith("index")]
        positions = [table.columns.index(c) for c in index_columns]
        s = table.columns.index(table.score_column)
        worse = (lambda a, b: a > b) if table.direction == "above" else (lambda a, b: a < b)
        for row, flag in zip(table.rows, table.flags, strict=True):
            for p in positions:
                i = row[p]
                if scores[i] is None or worse(row[s], scores[i]):
                    scores[i] = row[s]
                flags[i] |= flag
        if table.pairwise:  # pairs name one image per content: pass results on to its copies
            for i in range(n):
                first = groups[i]
                if first != i:
                    scores[i], flags[i] = scores[first], flags[first]
        return scores, flags

    def _pair_evidence(self, table: IssueTable) -> list[str | None]:
        """Per image, the evidence of its closest flagged pair, else of its closest pair
        ("with b.png: mirrored copy; features 0.31"), passed on to its copies; None when it is
        in no pair."""
        evidence: list[str | None] = [None] * len(self.names)
        rows = table.as_dicts()  # closest first
        for row in [r for r in rows if r["flagged"]] + [r for r in rows if not r["flagged"]]:
            for i, other in ((row["index_a"], "name_b"), (row["index_b"], "name_a")):
                if evidence[i] is None:
                    evidence[i] = f"with {row[other]}: {row['evidence']}"
        return [evidence[first] for first in self.groups]

    def to_csv(self) -> str:
        """One row per image: its identity, then a score and a 0/1 flag per computed issue
        (and, when label issues were checked, the label the probe prefers where it disagrees
        with the given one; for near duplicates, the evidence of the image's closest pair),
        then ``rare_class`` (0/1: its class is much rarer than the others) and, when splits
        were given, ``leakage`` (0/1: a flagged duplicate in another split). Empty cell: no
        score."""
        columns = ["index", "name", "sha256", "label", "split"]
        per_issue = []
        suggested: dict[int, str] = {}
        evidence: list = []
        for issue, table in self.tables.items():
            columns += [f"{issue}_score", f"{issue}_flag"]
            per_issue.append(self._per_image(table))
            if issue == "near_duplicates":
                columns.append("near_duplicates_evidence")
                evidence = self._pair_evidence(table)
            if issue == "label_issues":
                columns.append("suggested_label")
                suggested = {
                    row["index"]: row["suggested_label"]
                    for row in table.as_dicts()
                    if row["suggested_label"] is not None
                }
        rare = {r.label for r in self.rare_classes}
        columns.append("rare_class")
        leaked = self.leaked_images() if any(self.splits) else None
        if leaked is not None:
            columns.append("leakage")
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for i, name in enumerate(self.names):
            row = [i, name, self.sha256s[i], self.labels[i], self.splits[i]]
            for issue, (scores, flags) in zip(self.tables, per_issue, strict=True):
                row += [scores[i], int(flags[i])]
                if issue == "near_duplicates":
                    row.append(evidence[i])
                if issue == "label_issues":
                    row.append(suggested.get(i))
            row.append(self.labels[i] in rare)
            if leaked is not None:
                row.append(leaked[i])
            writer.writerow([_csv_value(v) for v in row])
        return out.getvalue()

    def to_html(self, thumbnails: Mapping[int, bytes] | None = None, max_rows: int = 100) -> str:
        """A self-contained HTML page: summary, separability, and the flagged rows of each
        issue with thumbnails. All text is escaped.

        Args:
            thumbnails: image index -> PNG or JPEG bytes, embedded as data URIs.
            max_rows: flagged rows shown per issue (the CSV has them all).

        Returns:
            the page as a string.
        """
        images = {int(i): _data_uri(i, data) for i, data in (thumbnails or {}).items()}
        esc = html.escape
        parts = [
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>featlib dataset checks"
            "</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:"
            "collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:3px 6px;"
            "text-align:left;vertical-align:top}img{max-width:96px;max-height:96px}"
            "</style></head><body>",
            f"<h1>Dataset checks: {len(self.names)} images</h1>",
        ]
        if self.facts:
            parts.append("<h2>About the set</h2><ul>")
            parts += [f"<li>{esc(fact)}</li>" for fact in self.facts]
            parts.append("</ul>")
        if self.warnings:
            parts.append("<h2>Warnings</h2><ul>")
            parts += [f"<li>{esc(warning)}</li>" for warning in self.warnings]
            parts.append("</ul>")
        parts.append(
            "<h2>Summary</h2><table><tr><th>issue</th><th>images</th><th>pairs</th>"
            "<th>threshold</th><th>meaning</th></tr>"
        )
        for row in self.summary_rows():
            cells = (row[c] for c in ("issue", "images", "pairs", "threshold", "meaning"))
            parts.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
        parts.append("</table>")
        if self.separability is not None:
            parts.append(_separability_html(self.separability))
        for table in self.tables.values():
            rows = table.flagged_rows()
            if not rows:
                continue
            parts.append(f"<h2>{esc(table.title)} ({table.flagged_text})</h2><table><tr>")
            image_columns = [c for c in table.columns if c.startswith("index")]
            parts += [
                f"<th>{c.replace('index', 'image').replace('_', ' ')}</th>" for c in image_columns
            ]
            parts += [f"<th>{esc(c)}</th>" for c in table.columns]
            parts.append("</tr>")
            for row in rows[:max_rows]:
                parts.append("<tr>")
                for c in image_columns:
                    uri = images.get(row[c])
                    cell = f"<img src='{uri}' alt='{esc(self.names[row[c]])}'>" if uri else ""
                    parts.append(f"<td>{cell}</td>")
                parts += [f"<td>{esc(_fmt(row[c]))}</td>" for c in table.columns]
                parts.append("</tr>")
            parts.append("</table>")
            if len(rows) > max_rows:
                parts.append(f"<p>{len(rows) - max_rows} more in the CSV export.</p>")
        parts.append("</body></html>")
        return "".join(parts)


def _separability_html(sep: Separability) -> str:
    esc = html.escape
    parts = [
        "<h2>Separability (linear probe)</h2><table>",
        f"<tr><td>accuracy</td><td>{esc(sep.accuracy_text())} ({sep.n_folds}-fold)</td></tr>",
        f"<tr><td>balanced accuracy</td><td>{sep.balanced_accuracy:.3f}</td></tr>",
        f"<tr><td>chance (largest class)</td><td>{sep.chance_accuracy:.3f}</td></tr>",
        f"<tr><td>silhouette (cosine)</td><td>{esc(_fmt(sep.silhouette))}</td></tr>",
        f"<tr><td>imbalance (largest / smallest)</td><td>{sep.imbalance_ratio:.2f}</td></tr>",
    ]
    if sep.excluded_classes:
        excluded = ", ".join(sep.excluded_classes)
        parts.append(f"<tr><td>left out (under 2 images)</td><td>{esc(excluded)}</td></tr>")
    parts.append("</table><table><tr><th>true \\ predicted</th>")
    parts += [f"<th>{esc(c)}</th>" for c in sep.classes]
    parts.append("<th>images</th><th>accuracy</th></tr>")
    for c, row in zip(sep.classes, sep.confusion, strict=True):
        parts.append(f"<tr><th>{esc(c)}</th>")
        parts += [f"<td>{v}</td>" for v in row]
        parts.append(f"<td>{sep.class_counts[c]}</td><td>{sep.per_class_accuracy[c]:.3f}</td></tr>")
    parts.append("</table>")
    return "".join(parts)


def _data_uri(index, data) -> str:
    if not isinstance(data, (bytes, bytearray)):
        raise FeatlibError(f"thumbnail {index!r} must be PNG or JPEG bytes. Received: {type(data)}")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        mime = "image/png"
    elif data.startswith(b"\xff\xd8\xff"):
        mime = "image/jpeg"
    else:
        raise FeatlibError(f"thumbnail {index!r} is neither PNG nor JPEG.")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def check_dataset(
    sha256s: Sequence[str],
    labels: Sequence[str | None],
    features,
    *,
    names: Sequence[str] | None = None,
    splits: Sequence[str | None] | None = None,
    pixels: Sequence[np.ndarray] | None = None,
    sizes: Sequence[tuple[int, int]] | None = None,
    thresholds: Mapping[str, float] | None = None,
    n_neighbors: int = 5,
    near_duplicate_floor: float = 0.9,
    random_state: int = 0,
) -> CheckReport:
    """Run every check that the given pieces allow and return the scores with their flags.

    Args:
        sha256s: per image, the SHA-256 of its file's bytes (identical files, one content).
        labels: per image, its label or None.
        features: float array of shape (n_images, n_features), one row per image in the same
            order (for example pooled backbone features); compared by cosine similarity
            after centring on their mean.
        names: per image, the name shown to the user (default: "image <index>").
        splits: per image, "train" / "test" / ... or None; duplicates across splits are
            marked ``leakage``.
        pixels: per image, a uint8 array of shape (h, w, 3) or (h, w). Pass images reduced
            to at most 256 px on the long side (larger ones are block-averaged down to that
            here, which is slower); any sequence works, so a lazy one keeps only one image
            in memory. None skips the pixel checks.
        sizes: per image, its original (width, height); defaults to the pixel arrays' sizes.
            Used by ``tiny``, ``odd_size`` and ``odd_aspect``.
        thresholds: issue -> threshold, overriding :data:`DEFAULT_THRESHOLDS`.
        n_neighbors: neighbours used for the outlier score.
        near_duplicate_floor: candidate near-duplicate pairs are kept from this cosine
            similarity up; the near-duplicate threshold can later be set no lower.
        random_state: seed of the cross-validation folds and the subsamples.

    Returns:
        a :class:`CheckReport`.

    Raises:
        FeatlibError: fewer than 3 images, lengths that disagree, features that are not a
            finite 2-D array, pixels that are not uint8 images, an unknown threshold name.

    Example::

        >>> x = np.random.default_rng(0).normal(size=(30, 8)).astype(np.float32)
        >>> r = check_dataset([str(i) for i in range(30)], ["a", "b", "c"] * 10, x)
        >>> r.table("outliers").columns
        ('index', 'name', 'nearest_similarity', 'score')
    """
    x = _as_features(features, min_samples=3)
    n = x.shape[0]
    sha256s = _strings(sha256s, n, "sha256s", optional=False)
    labels = _strings(labels, n, "labels")
    splits = _strings(splits, n, "splits") if splits is not None else [None] * n
    if names is None:
        names = [f"image {i}" for i in range(n)]
    else:
        names = _strings(names, n, "names", optional=False)
    for issue in thresholds or {}:
        if issue not in ISSUES:
            raise FeatlibError(f"unknown issue {issue!r} in thresholds; choose from {ISSUES}")
    if not isinstance(near_duplicate_floor, (int, float)) or not 0 < near_duplicate_floor <= 1:
        raise FeatlibError(
            f"near_duplicate_floor must be in (0, 1]. Received: {near_duplicate_floor!r}"
        )
    if (
        isinstance(n_neighbors, bool)
        or not isinstance(n_neighbors, (int, np.integer))
        or n_neighbors < 1
    ):
        raise FeatlibError(f"n_neighbors must be a positive integer. Received: {n_neighbors!r}")
    first: dict[str, int] = {}
    groups = np.array([first.setdefault(s, i) for i, s in enumerate(sha256s)])
    unique = np.flatnonzero(groups == np.arange(n))

    tables: dict[str, IssueTable] = {}
    skipped: dict[str, str] = {}
    tables["exact_duplicates"] = _exact_duplicates(groups, names, splits)
    stats = hashes = None
    if pixels is not None:
        if len(pixels) != n:
            raise FeatlibError(f"pixels must have one image per row ({n}). Received: {len(pixels)}")
        stats, pixel_sizes, hashes = _pixel_stats(pixels, names)
        hashes = hashes[unique]
        tables.update(_quality_tables(stats, names))
        sizes = pixel_sizes if sizes is None else sizes
    else:
        for issue in ("dark", "overexposed", "blurry", "low_information", "grayscale"):
            skipped[issue] = "no pixels were given"
    if len(unique) >= 2:
        # Pooled ReLU features all point into one orthant, so raw cosines crowd near 1;
        # centred on the set's mean, a copy stays near 1 while merely similar images fall.
        distinct = x[unique]
        centred = distinct - distinct.mean(axis=0) if len(unique) > 2 else distinct
        nn_idx, nn_sim = nearest_all(centred, k=max(n_neighbors, _NEAR_NEIGHBORS))
        near = _near_duplicates(
            unique,
            centred,
            nn_idx,
            nn_sim,
            hashes,
            names,
            splits,
            near_duplicate_floor,
            random_state,
        )
        tables["near_duplicates"] = near
        nearest = _best_pair_scores(near, unique, nn_sim)
        tables["outliers"] = _outliers(
            unique, groups, nn_sim[:, :n_neighbors], nearest, names, near.threshold
        )
    else:
        reason = "every image has the same content"
        skipped["near_duplicates"] = skipped["outliers"] = reason
    label_table, separability, reason = _probe(x, labels, groups, names, random_state)
    if label_table is None:
        skipped["label_issues"] = skipped["separability"] = reason
    else:
        tables["label_issues"] = label_table
    if sizes is not None:
        sizes = _sizes(sizes, n)
        tables.update(_size_tables(sizes, names))
    else:
        for issue in ("tiny", "odd_size", "odd_aspect"):
            skipped[issue] = "no sizes or pixels were given"

    report = CheckReport(
        names=tuple(names),
        sha256s=tuple(sha256s),
        labels=tuple(labels),
        splits=tuple(splits),
        groups=tuple(int(g) for g in groups),
        tables={issue: tables[issue] for issue in ISSUES if issue in tables},
        skipped={issue: skipped[issue] for issue in (*ISSUES, "separability") if issue in skipped},
        separability=separability,
        facts=_set_facts(tables, sizes),
        rare_classes=rare_classes(labels),
        shortcut=find_shortcut(*property_vectors(stats, sizes), labels, groups, random_state),
    )
    return report.with_thresholds(**(thresholds or {}))


def _set_facts(tables: Mapping[str, IssueTable], sizes: np.ndarray | None) -> tuple[str, ...]:
    """What many images share beyond an absolute bound without being flagged for it, as
    sentences, the most shared first: "every image is 25×25 px", "31 of 200 images are dark
    (...)"."""
    facts = []  # (images, sentence)
    one_size = sizes is not None and len(np.unique(sizes, axis=0)) == 1
    if one_size:
        facts.append((len(sizes), "every image is {}×{} px".format(*(int(v) for v in sizes[0]))))
    for issue, words in _FACTS.items():
        table = tables.get(issue)
        if table is None or (one_size and issue in ("tiny", "odd_aspect")):
            continue
        bound = DEFAULT_THRESHOLDS[issue]
        scores = table.column("score").astype(np.float64)
        beyond = scores < bound if table.direction == "below" else scores > bound
        count, n = int((beyond & ~table.flags).sum()), len(scores)
        if count and count >= _FACT_SHARE * n:
            verb = "is" if count == 1 else "are"
            share = "every image is" if count == n else f"{count} of {n} images {verb}"
            facts.append((count, f"{share} {words.format(bound)}"))
    facts.sort(key=lambda fact: -fact[0])
    return tuple(sentence for _, sentence in facts)


class _Thumbnails(Sequence):
    """The pixels of records of an image set, at most ``side`` px, decoded one at a time."""

    def __init__(self, image_set, records, side: int):
        self.image_set, self.records, self.side = image_set, records, side

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> np.ndarray:
        return np.asarray(self.image_set.thumbnail(self.records[i], self.side))


def check_image_set(image_set, records, features, **kwargs) -> CheckReport:
    """:func:`check_dataset` for images of a ``featlib.ImageSet``.

    Names, labels, splits and original sizes come from the records; pixels are read from the
    set one image at a time, at most 256 px on a side.

    Args:
        image_set: the ``ImageSet`` the records belong to.
        records: usable records, one per row of ``features`` (``Features.records``).
        features: float array of shape (len(records), n_features).
        **kwargs: passed on to :func:`check_dataset` (``thresholds``, ``n_neighbors``...).

    Returns:
        a :class:`CheckReport`.

    Example::

        >>> feats = featlib.extract_set(bb, images, "block4_pool")
        >>> report = check_image_set(images, feats.records, feats.features["block4_pool"])
    """
    splits = [r.split for r in records]
    return check_dataset(
        [r.sha256 for r in records],
        [r.label for r in records],
        features,
        names=[r.name for r in records],
        splits=splits if any(splits) else None,
        pixels=_Thumbnails(image_set, records, _QUALITY_SIDE),
        sizes=[(r.width, r.height) for r in records],
        **kwargs,
    )


def report_thumbnails(
    report: CheckReport, image_set, records, side: int = 96, max_rows: int = 100
) -> dict[int, bytes]:
    """JPEG thumbnails of the images :meth:`CheckReport.to_html` shows (flagged rows).

    Args:
        report: a report on ``records``.
        image_set: the ``ImageSet`` the records belong to.
        records: the records the report's indices refer to.
        side: longest side of a thumbnail, in pixels.
        max_rows: flagged rows per issue, as given to ``to_html``.

    Returns:
        image index -> JPEG bytes.
    """
    shown = {
        row[c]
        for issue in report.tables
        for row in report.flagged(issue)[:max_rows]
        for c in row
        if c.startswith("index")
    }
    out = {}
    for i in sorted(shown):
        buf = io.BytesIO()
        image_set.thumbnail(records[i], side).save(buf, "JPEG", quality=85)
        out[i] = buf.getvalue()
    return out


def _strings(values, n: int, name: str, optional: bool = True) -> list:
    values = list(values)
    if len(values) != n:
        raise FeatlibError(f"{name} must have one entry per image ({n}). Received: {len(values)}")
    for v in values:
        if not (isinstance(v, str) or (optional and v is None)):
            kind = "strings or None" if optional else "strings"
            raise FeatlibError(f"{name} must be {kind}. Received: {v!r}")
    return values


def _sizes(sizes, n: int) -> np.ndarray:
    try:
        arr = np.asarray(sizes, dtype=np.float64)
    except (TypeError, ValueError):
        raise FeatlibError("sizes must be (width, height) pairs.") from None
    if arr.shape != (n, 2) or not np.isfinite(arr).all() or (arr <= 0).any():
        raise FeatlibError(
            f"sizes must be {n} positive (width, height) pairs. Received: shape {arr.shape}"
        )
    return arr


def _leak(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a != b


def _exact_duplicates(groups, names, splits) -> IssueTable:
    copies = Counter(groups.tolist())
    rows = [
        (
            int(g),
            i,
            names[g],
            names[i],
            splits[g],
            splits[i],
            _leak(splits[g], splits[i]),
            copies[g],
        )
        for i, g in enumerate(groups.tolist())
        if g != i
    ]
    rows.sort(key=lambda r: (-r[-1], r[0], r[1]))
    return IssueTable(
        issue="exact_duplicates",
        columns=(*_PAIR_COLUMNS, "copies"),
        rows=tuple(rows),
        score_column="copies",
        threshold=None,
    )


def _fence(issue: str, values) -> float | None:
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


def _default_threshold(issue: str, values, direction: str) -> float | None:
    """The stricter of the absolute bound and the set's fence; the bound alone when few
    images pass it (``_RARE``). With neither (outliers among fewer than 4 contents), the
    highest score: too few images to call one unusual."""
    bound = DEFAULT_THRESHOLDS[issue]
    values = np.asarray(values, dtype=np.float64)
    if bound is not None:
        beyond = values < bound if direction == "below" else values > bound
        if beyond.sum() <= _RARE * len(values):
            return bound
    fence = _fence(issue, values)
    if fence is None and bound is None:
        return float(values.max())
    if fence is None or bound is None:
        return bound if fence is None else fence
    return min(bound, fence) if direction == "below" else max(bound, fence)


def _near_duplicates(
    unique, centred, nn_idx, nn_sim, hashes, names, splits, floor, random_state
) -> IssueTable:
    """Candidate pairs from the features' nearest neighbours (cosine at least ``floor``) and,
    with pixels, from the hashes (within the set's match bound), with the evidence of each.
    A hash match far from exact counts only when the features confirm it (``hashes.judge``)."""
    features: dict[tuple[int, int], float] = {}
    for u, (neigh, sims) in enumerate(zip(nn_idx, nn_sim, strict=True)):
        for v, sim in zip(neigh, sims, strict=True):
            if sim < floor:
                break
            features[(min(u, int(v)), max(u, int(v)))] = min(float(sim), 1.0)
    pairs = set(features)
    unit = _l2_normalize(centred)
    if hashes is not None:
        bound, reference = distinct_similarities(hashes, unit, random_state)
        pairs.update(hash_candidates(hashes, _NEAR_NEIGHBORS, bound))
    rows = []
    for u, v in pairs:
        similarity = features.get((u, v), min(float(unit[u] @ unit[v]), 1.0))
        distance, matched, evidence = None, False, f"features {similarity:.2f}"
        if hashes is not None:
            distance, words = match(hashes[u], hashes[v])
            if distance <= bound:
                matched, evidence = judge(distance, words, similarity, bound, reference)
        a, b = int(unique[u]), int(unique[v])
        rows.append(
            (a, b, names[a], names[b], splits[a], splits[b], _leak(splits[a], splits[b]),
             distance, matched, evidence, similarity)
        )  # fmt: skip
    rows.sort(key=lambda r: (-r[-1], r[0], r[1]))
    return IssueTable(
        issue="near_duplicates",
        columns=(*_PAIR_COLUMNS, "hash_distance", "hashes_match", "evidence", "similarity"),
        rows=tuple(rows),
        score_column="similarity",
        threshold=max(
            _fence("near_duplicates", nn_sim[:, 0]) or 0.0, DEFAULT_THRESHOLDS["near_duplicates"]
        ),
        min_threshold=float(floor),
        match_column="hashes_match",
    )


def _best_pair_scores(near: IssueTable, unique, nn_sim) -> np.ndarray:
    """Per distinct content, its nearest neighbour's similarity; 1.0 when its hashes match
    another image's (a near duplicate at any threshold)."""
    best = nn_sim[:, 0].astype(np.float64).clip(max=1.0)
    position = {int(g): p for p, g in enumerate(unique)}
    for row in near.as_dicts():
        if row["hashes_match"]:
            best[position[row["index_a"]]] = best[position[row["index_b"]]] = 1.0
    return best


def _outliers(unique, groups, nn_sim, nearest, names, near_threshold) -> IssueTable:
    """Mean distance to the nearest other contents; an image whose content has a copy or a
    near duplicate (``nearest`` similarity 1.0 / at least ``near_threshold``) is never
    flagged."""
    unique_scores = 1.0 - nn_sim.astype(np.float64).mean(axis=1)
    copied = {g for g, count in Counter(groups.tolist()).items() if count > 1}
    of = {
        u: (score, 1.0 if u in copied else float(sim))
        for u, score, sim in zip(unique.tolist(), unique_scores.tolist(), nearest, strict=True)
    }
    rows = [(i, names[i], of[g][1], of[g][0]) for i, g in enumerate(groups.tolist())]
    rows.sort(key=lambda r: (-r[3], r[0]))
    return IssueTable(
        issue="outliers",
        columns=("index", "name", "nearest_similarity", "score"),
        rows=tuple(rows),
        score_column="score",
        threshold=_default_threshold("outliers", unique_scores, "above"),
        exclude_column="nearest_similarity",
        exclude_at=near_threshold,
    )


def _probe(x, labels, groups, names, random_state):
    """Out-of-fold class probabilities from a linear probe; returns the label-issue table,
    the separability figures, and a reason when they cannot be computed."""
    labelled = [i for i, lab in enumerate(labels) if lab is not None]
    if not labelled:
        return None, None, "no image has a label"
    counts = Counter(labels[i] for i in labelled)
    # Distinct contents per label: copies of one file cannot be told apart by any probe.
    distinct = Counter(label for label, _ in {(labels[i], groups[i]) for i in labelled})
    classes = sorted(c for c in counts if distinct[c] >= 2)
    excluded = tuple(sorted(c for c in counts if distinct[c] < 2))
    if len(classes) < 2:
        return None, None, "fewer than 2 classes with at least 2 distinct images"
    rows_in = np.array([i for i in labelled if labels[i] in set(classes)])
    class_index = {c: j for j, c in enumerate(classes)}
    y = np.array([class_index[labels[i]] for i in rows_in])
    data = _l2_normalize(x[rows_in])
    if data.shape[1] > _PROBE_MAX_DIMS and len(rows_in) > _PROBE_DIMS:
        # Unsupervised reduction once, so the probe's cost does not grow with the width of
        # the features (2,048 for ResNet50, 25,088 for a flattened VGG16 block).
        pca = PCA(_PROBE_DIMS, svd_solver="randomized", random_state=random_state)
        data = pca.fit_transform(data)
    n_folds = min(_MAX_FOLDS, min(distinct[c] for c in classes))
    cv = _content_folds(y, groups[rows_in], n_folds, random_state)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=200))
    # One BLAS thread: these products are small, and on a busy 2-core machine threads made
    # the probe 2-10x slower (1,000 x 512: 0.2 s against 1.2-2.9 s).
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        # A probe that has not fully converged still ranks labels well; a class missing from
        # a training fold gets probability 0 there.
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        proba = cross_val_predict(model, data, y, cv=cv, method="predict_proba")
    found = find_label_issues(proba, y)
    given, other_prob = found.self_confidence, found.suggested_prob
    rows = [
        (
            int(i),
            names[i],
            labels[i],
            classes[found.suggested[r]] if other_prob[r] > given[r] else None,
            float(given[r]),
            float(other_prob[r]),
            float(other_prob[r] - given[r]),
            bool(other_prob[r] > given[r]),
            bool(found.confident[r]),
            reason(labels[i], classes[found.suggested[r]], given[r], other_prob[r])
            if other_prob[r] > given[r]
            else "",
        )
        for r, i in enumerate(rows_in)
    ]
    rows.sort(key=lambda r: (r[4], r[0]))  # by self-confidence, as cleanlab ranks
    threshold = _default_threshold("label_issues", given, "below")
    table = IssueTable(
        issue="label_issues",
        columns=(
            "index",
            "name",
            "label",
            "suggested_label",
            "label_prob",
            "suggested_prob",
            "margin",
            "other_more_likely",
            "confident_learning",
            "reason",
        ),
        rows=tuple(rows),
        score_column="label_prob",
        threshold=threshold if found.threshold is None else max(threshold, found.threshold),
        direction="below",
        eligible_column="other_more_likely",
    )
    predicted = proba.argmax(axis=1)
    confusion = confusion_matrix(y, predicted, labels=np.arange(len(classes)))
    per_class = confusion.diagonal() / confusion.sum(axis=1)
    return (
        table,
        Separability(
            classes=tuple(classes),
            class_counts=dict(sorted(counts.items())),
            imbalance_ratio=max(counts.values()) / min(counts.values()),
            excluded_classes=excluded,
            n_folds=n_folds,
            accuracy=float((predicted == y).mean()),
            balanced_accuracy=float(per_class.mean()),
            chance_accuracy=float(np.bincount(y).max() / len(y)),
            per_class_accuracy={c: float(a) for c, a in zip(classes, per_class, strict=True)},
            confusion=confusion.astype(np.int64),
            silhouette=_silhouette(x[rows_in], y, random_state),
        ),
        "",
    )


def _content_folds(y, groups, n_folds, random_state) -> PredefinedSplit:
    """Stratified folds in which all copies of one content fall together, so that a copy
    never predicts its twin. Stratified over the first copy of each content, which is as
    good as scikit-learn's StratifiedGroupKFold here and much faster (no per-group loop)."""
    firsts, position = np.unique(groups, return_index=True)
    skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=random_state)
    fold_of = np.empty(len(firsts), dtype=np.int64)
    for fold, (_, test) in enumerate(skf.split(np.zeros(len(firsts)), y[position])):
        fold_of[test] = fold
    return PredefinedSplit(fold_of[np.searchsorted(firsts, groups)])


def _silhouette(data, y, random_state) -> float | None:
    if len(data) > _SILHOUETTE_SAMPLE:
        rng = np.random.default_rng(random_state)
        keep = rng.choice(len(data), _SILHOUETTE_SAMPLE, replace=False)
        data, y = data[keep], y[keep]
    if not 2 <= len(np.unique(y)) <= len(y) - 1:
        return None
    return float(silhouette_score(data, y, metric="cosine"))


def _pixel_stats(pixels, names) -> tuple[np.ndarray, list[tuple[int, int]], np.ndarray]:
    """Per image: brightness, Laplacian variance, entropy, channel spread; (w, h); and its
    perceptual hashes (:func:`featlib.hashes.image_hashes`), from the same decoded pixels."""
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
            sizes.append((w, h))
            step = math.ceil(max(h, w) / _QUALITY_SIDE)
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
        threshold=_default_threshold(issue, values, direction),
        direction=direction,
    )


def _quality_tables(stats, names) -> dict[str, IssueTable]:
    brightness, blur, info, spread = stats.T
    return {
        "dark": _per_image_table("dark", brightness, names, "below"),
        "overexposed": _per_image_table("overexposed", brightness, names, "above"),
        "blurry": _per_image_table("blurry", blur, names, "below"),
        "low_information": _per_image_table("low_information", info, names, "below"),
        "grayscale": _per_image_table("grayscale", spread, names, "below"),
    }


def _size_tables(sizes, names) -> dict[str, IssueTable]:
    width, height = sizes.T
    area = width * height
    wh = (("width", "height"), [(int(w), int(h)) for w, h in sizes])
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
