"""What the checks return: one ``IssueTable`` per issue, ``Separability`` and the
``CheckReport`` that holds them, with its CSV and HTML forms.

Flags are derived from thresholds, so :meth:`CheckReport.with_thresholds` changes what is
flagged without recomputing anything.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from featlib._text import percent, short_number
from featlib.analysis.checks._html import report_html
from featlib.analysis.checks.issues import DESCRIPTIONS, TITLES
from featlib.analysis.checks.set_checks import (
    RareClass,
    Shortcut,
    leaked_images,
)
from featlib.errors import FeatlibError

__all__ = [
    "CheckReport",
    "IssueTable",
    "Separability",
]


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
        return DESCRIPTIONS[self.issue]

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
        return f"{percent(self.accuracy)} ({self.n_correct} of {self.n_images})"


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
        rare_classes: classes much rarer than the others (``featlib.analysis.checks.set_checks``).
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
                "threshold": short_number(table.threshold) or "none",
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
        return report_html(self, thumbnails, max_rows)


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return value
