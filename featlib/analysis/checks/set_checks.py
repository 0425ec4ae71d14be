r"""Checks of a labelled set as a whole: rare classes, labels that image properties alone predict
(a shortcut a model could learn), and duplicates across splits (leakage).

Each says something about the set that no single image shows. They take plain pieces, as
:func:`featlib.analysis.checks.check_dataset` has them, and return small frozen records whose
``sentence()`` is what a person reads.

Example::

    >>> rare_classes(["cat"] * 40 + ["dog"] * 38 + ["fox"] * 3)[0].sentence()
    "class 'fox' has 3 images, 7.9\xa0% of a typical class (38): a model will tend to ignore it"
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest, rankdata
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from featlib._text import percent
from featlib.analysis.probe import probe_folds

__all__ = [
    "PROPERTIES",
    "RARE_SHARE",
    "SHORTCUT_P_VALUE",
    "SHORTCUT_SKILL",
    "RareClass",
    "Shortcut",
    "find_shortcut",
    "leaked_images",
    "property_vectors",
    "rare_classes",
]

# A class with fewer images than this share of the median class's count is rare.
RARE_SHARE = 0.2
# Labels count as predictable from properties when the balanced accuracy of a cross-validated
# classifier on them covers at least this share of the way from chance to perfect.
SHORTCUT_SKILL = 0.5
# ... and when that many right answers would be this unlikely from always answering the largest
# class (one-sided binomial test): a handful of images can look predictable by chance.
SHORTCUT_P_VALUE = 1e-3
# The image properties, each with the words for its low and high end.
PROPERTIES: Mapping[str, tuple[str, str]] = {
    "brightness": ("dark", "bright"),
    "sharpness": ("soft", "sharp"),
    "entropy": ("plain", "detailed"),
    "colourfulness": ("grey", "colourful"),
    "pixel count": ("small", "large"),
    "aspect ratio": ("tall", "wide"),
}


@dataclass(frozen=True)
class RareClass:
    """A class much rarer than the others.

    Attributes:
        label: the class.
        count: its images.
        typical: the median images per class.
    """

    label: str
    count: int
    typical: float

    def sentence(self) -> str:
        """The finding in words."""
        return (
            f"class {self.label!r} has {self.count} image{'' if self.count == 1 else 's'}, "
            f"{percent(self.count / self.typical)} of a typical class ({self.typical:g}): a model "
            "will tend to ignore it"
        )


def rare_classes(labels: Sequence[str | None]) -> tuple[RareClass, ...]:
    """Classes with fewer images than :data:`RARE_SHARE` of the median class's, rarest first.

    Args:
        labels: per image, its label or None (not counted).

    Returns:
        a tuple of :class:`RareClass`; empty with fewer than 2 classes.
    """
    counts = Counter(label for label in labels if label is not None)
    if len(counts) < 2:
        return ()
    typical = float(np.median(list(counts.values())))
    rare = [RareClass(c, n, typical) for c, n in counts.items() if n < RARE_SHARE * typical]
    return tuple(sorted(rare, key=lambda r: (r.count, r.label)))


@dataclass(frozen=True)
class Shortcut:
    """Labels that image properties alone predict.

    Attributes:
        balanced_accuracy: out-of-fold balanced accuracy from all properties together.
        chance: 1 / number of classes.
        property, label: the property and the class that stand out most together (the
            largest gap between the class's median rank and the other images').
        high: whether that class's images lie at the property's high end.
        label_median, others_median: the property's median in that class and in the rest.
    """

    balanced_accuracy: float
    chance: float
    property: str
    label: str
    high: bool
    label_median: float
    others_median: float

    def sentence(self) -> str:
        """The finding in words."""
        word = PROPERTIES[self.property][int(self.high)]
        return (
            f"the labels can be told from image properties alone (balanced accuracy "
            f"{self.balanced_accuracy:.2f}, chance {self.chance:.2f}), a shortcut a model could "
            f"learn instead of the content: {self.label!r} images are {word} ({self.property} "
            f"{self.label_median:.3g}, other images {self.others_median:.3g})"
        )


def property_vectors(stats, sizes) -> tuple[tuple[str, ...], np.ndarray]:
    """The properties a shortcut can hide in, one column each.

    Args:
        stats: float array of shape (n, 4): brightness (0-1), variance of the Laplacian,
            grey-level entropy, colour spread (0-1); or None.
        sizes: float array of shape (n, 2), (height, width); or None.

    Returns:
        the property names (keys of :data:`PROPERTIES`) and a float array of shape
        (n, len(names)), each in its own units (sharpness: the variance of the Laplacian).
    """
    names, columns = [], []
    if stats is not None:
        stats = np.asarray(stats, dtype=np.float64)
        names += ["brightness", "sharpness", "entropy", "colourfulness"]
        columns += [stats[:, 0], stats[:, 1], stats[:, 2], stats[:, 3]]
    if sizes is not None:
        sizes = np.asarray(sizes, dtype=np.float64)
        names += ["pixel count", "aspect ratio"]
        columns += [sizes[:, 0] * sizes[:, 1], sizes[:, 1] / sizes[:, 0]]
    if not columns:
        return (), np.empty((0, 0))
    return tuple(names), np.column_stack(columns)


def _predict(values, y, random_state) -> np.ndarray:
    """Out-of-fold predictions of a logistic regression on the columns' ranks (a property's
    scale, heavy tails included, does not matter; tied values share their rank, so a constant
    column carries no order), in the linear probe's folds. Not the probe itself: it normalises
    each row to unit length, which would make an image that is small and dark look like one
    that is large and bright."""
    ranks = rankdata(values, axis=0) / len(values)
    cv = probe_folds(y, random_state=random_state)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return cross_val_predict(model, ranks, y, cv=cv)


def find_shortcut(
    names: Sequence[str],
    values,
    labels: Sequence[str | None],
    groups: Sequence[int],
    random_state: int = 0,
) -> Shortcut | None:
    """Whether a cross-validated classifier predicts the labels from image properties alone.

    Each distinct content counts once (copies would predict each other), and only classes with
    at least 2 distinct images take part.

    Args:
        names: property names, as :func:`property_vectors` gives them.
        values: float array of shape (n_images, len(names)).
        labels: per image, its label or None.
        groups: per image, the index of the first image with the same content.
        random_state: seed of the folds.

    Returns:
        a :class:`Shortcut` when the balanced accuracy covers :data:`SHORTCUT_SKILL` of the way
        from chance to perfect and the right answers pass :data:`SHORTCUT_P_VALUE`, else None
        (also when there is nothing to fit).
    """
    if not names:
        return None
    values = np.asarray(values, dtype=np.float64)
    firsts = [i for i, g in enumerate(groups) if g == i and labels[i] is not None]
    counts = Counter(labels[i] for i in firsts)
    classes = sorted(c for c, n in counts.items() if n >= 2)
    rows = np.array([i for i in firsts if labels[i] in set(classes)], dtype=np.int64)
    if len(classes) < 2 or not np.isfinite(values[rows]).all():
        return None
    y = np.array([classes.index(labels[i]) for i in rows])
    x = values[rows]
    chance = 1 / len(classes)
    predicted = _predict(x, y, random_state)
    accuracy = float(balanced_accuracy_score(y, predicted))
    right = int((predicted == y).sum())
    largest = np.bincount(y).max() / len(y)
    if (accuracy - chance) / (1 - chance) < SHORTCUT_SKILL or (
        binomtest(right, len(y), largest, alternative="greater").pvalue > SHORTCUT_P_VALUE
    ):
        return None
    # The property and class that stand out most: the largest gap between the class's median
    # rank and the other images' (ranks make properties comparable; ties go to the first).
    ranks = rankdata(x, axis=0) / len(x)
    gaps = np.array(
        [[np.median(ranks[y == k, j]) - np.median(ranks[y != k, j]) for k in range(len(classes))]
         for j in range(len(names))]
    )  # fmt: skip
    j, k = np.unravel_index(int(np.argmax(np.abs(gaps))), gaps.shape)
    inside, outside = np.median(x[y == k, j]), np.median(x[y != k, j])
    return Shortcut(
        balanced_accuracy=accuracy,
        chance=chance,
        property=names[j],
        label=classes[k],
        high=bool(inside > outside),
        label_median=float(inside),
        others_median=float(outside),
    )


def leaked_images(pair_rows, groups: Sequence[int]) -> np.ndarray:
    """Which images have an exact or near duplicate in another split.

    Args:
        pair_rows: flagged duplicate pairs, dicts with ``index_a``, ``index_b`` and
            ``leakage`` (as ``IssueTable.flagged_rows`` gives them).
        groups: per image, the index of the first image with the same content; a pair names
            the first image of a content, and its copies share the finding.

    Returns:
        bool array of shape (len(groups),).
    """
    groups = np.asarray(groups, dtype=np.int64)
    leaked = np.zeros(len(groups), dtype=bool)
    for row in pair_rows:
        if row["leakage"]:
            leaked[row["index_a"]] = leaked[row["index_b"]] = True
    return leaked | leaked[groups]
