"""Likely label issues by confident learning (cleanlab) on out-of-fold class probabilities.

cleanlab's ``find_label_issues`` with ``filter_by="low_self_confidence"`` estimates from the
confident joint how many images of each class carry another class's label and picks, per class,
that many with the lowest self-confidence (the probability of the given label). Its picks set a
threshold relative to the set: just above their highest self-confidence. A check flags an image
whose self-confidence lies below the higher of that threshold and its own absolute/fence
threshold, when another label is more likely.

Why this combination (``benchmarks/label_issues.py``, labels flipped on the bundled faces and
digits): the fence alone loses recall as more labels are wrong (the wrong labels widen the
quartiles it is drawn from); cleanlab's default ``prune_by_noise_rate`` and plain
``confident_learning`` flag more correct images on a set that the probe separates poorly;
``low_self_confidence`` loses the least precision there. One threshold keeps the check live:
moving it changes the flags without recomputing anything.

Example::

    >>> import numpy as np
    >>> y = np.array([0] * 10 + [1] * 10)
    >>> proba = np.where(np.eye(2)[y] == 1, 0.9, 0.1)
    >>> proba[[0, 15]] = proba[[0, 15], ::-1]  # images 0 and 15 look like the other class
    >>> found = find_label_issues(proba, y)
    >>> found.ranked.tolist(), found.suggested[found.ranked].tolist()
    ([0, 15], [1, 0])
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import confusion_matrix

from featlib.analysis.checks.issues import default_threshold
from featlib.analysis.checks.report import IssueTable, Separability
from featlib.analysis.probe import cosine_silhouette, out_of_fold_proba, probe_folds

__all__ = ["LabelIssues", "find_label_issues", "probe_labels", "reason"]

_COLUMNS = (
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
)


@dataclass(frozen=True)
class LabelIssues:
    """What confident learning says about each image's label.

    Attributes:
        self_confidence: float array of shape (n,): the probability of the given label.
        suggested: int array of shape (n,): the most likely class other than the given one.
        suggested_prob: float array of shape (n,): its probability.
        confident: bool array of shape (n,): cleanlab's picks (``find_label_issues``).
        ranked: int array: the picks' positions, lowest self-confidence first.
        threshold: a self-confidence threshold under which every pick falls (flags are
            ``score < threshold``); None when cleanlab picks nothing.
    """

    self_confidence: np.ndarray
    suggested: np.ndarray
    suggested_prob: np.ndarray
    confident: np.ndarray
    ranked: np.ndarray
    threshold: float | None


def find_label_issues(proba, y) -> LabelIssues:
    """Confident learning on out-of-fold probabilities.

    Args:
        proba: float array of shape (n_samples, n_classes), out-of-fold class probabilities
            (each row sums to 1).
        y: int array of shape (n_samples,), the given labels as class indices; every class
            occurs.

    Returns:
        a :class:`LabelIssues`.
    """
    from cleanlab.filter import find_label_issues as cleanlab_find

    proba = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y)
    rows = np.arange(len(y))
    given = proba[rows, y]
    others = proba.copy()
    others[rows, y] = -1.0
    suggested = others.argmax(axis=1)
    with warnings.catch_warnings():
        # cleanlab warns about tiny classes and its own defaults; the picks are what counts.
        warnings.simplefilter("ignore")
        ranked = cleanlab_find(
            y,
            proba,
            filter_by="low_self_confidence",
            return_indices_ranked_by="self_confidence",
        )
    ranked = np.asarray(ranked, dtype=np.int64)
    confident = np.zeros(len(y), dtype=bool)
    confident[ranked] = True
    threshold = float(np.nextafter(given[ranked].max(), 2.0)) if len(ranked) else None
    return LabelIssues(
        self_confidence=given,
        suggested=suggested,
        suggested_prob=others[rows, suggested],
        confident=confident,
        ranked=ranked,
        threshold=threshold,
    )


def reason(label: str, suggested: str, label_prob: float, suggested_prob: float) -> str:
    """Why an image's label looks wrong, in words.

    Example::

        >>> reason("coffee", "cat", 0.04, 0.93)
        "the probe gives 'cat' 0.93, its label says 'coffee' (0.04)"
    """
    return (
        f"the probe gives {suggested!r} {suggested_prob:.2f}, "
        f"its label says {label!r} ({label_prob:.2f})"
    )


def probe_labels(
    features, labels, groups, names, random_state=0
) -> tuple[IssueTable | None, Separability | None, str]:
    """The label-issue table and the separability figures from the linear probe's out-of-fold
    probabilities (``featlib.analysis.probe``); classes with fewer than 2 distinct images are
    left out.

    Args:
        features: float array of shape (n_images, n_features).
        labels: per image, its label or None (left out).
        groups: per image, the index of the first image with the same content.
        names: per image, its name.
        random_state: seed of the folds, the PCA and the silhouette's subsample.

    Returns:
        ``(table, separability, "")``, or ``(None, None, why)`` when the probe cannot run.
    """
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
    in_groups = np.asarray(groups)[rows_in]
    proba = out_of_fold_proba(features[rows_in], y, in_groups, random_state=random_state)
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
    threshold = default_threshold("label_issues", given, "below")
    table = IssueTable(
        issue="label_issues",
        columns=_COLUMNS,
        rows=tuple(rows),
        score_column="label_prob",
        threshold=threshold if found.threshold is None else max(threshold, found.threshold),
        direction="below",
        eligible_column="other_more_likely",
    )
    predicted = proba.argmax(axis=1)
    confusion = confusion_matrix(y, predicted, labels=np.arange(len(classes)))
    per_class = confusion.diagonal() / confusion.sum(axis=1)
    separability = Separability(
        classes=tuple(classes),
        class_counts=dict(sorted(counts.items())),
        imbalance_ratio=max(counts.values()) / min(counts.values()),
        excluded_classes=excluded,
        n_folds=probe_folds(y, in_groups, random_state).get_n_splits(),
        accuracy=float((predicted == y).mean()),
        balanced_accuracy=float(per_class.mean()),
        chance_accuracy=float(np.bincount(y).max() / len(y)),
        per_class_accuracy={c: float(a) for c, a in zip(classes, per_class, strict=True)},
        confusion=confusion.astype(np.int64),
        silhouette=cosine_silhouette(features[rows_in], y, random_state),
    )
    return table, separability, ""
