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
from dataclasses import dataclass

import numpy as np

__all__ = ["LabelIssues", "find_label_issues", "reason"]


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
