"""The layer sweep: how well each block's features separate the labels, from edges to objects.

For every block output, pooled features of a labelled set are scored with a cross-validated
linear probe (logistic regression, the standard test of what a representation makes linearly
available) and a cosine silhouette score; a small PCA per block, each aligned to the one before
(Procrustes), lets points move smoothly from block to block. Run it for trained and for random
weights to see that training is what makes deep features meaningful.

Example::

    >>> bb = featlib.load_backbone("vgg16", weights="random", input_size=(64, 64))
    >>> sweep = layer_sweep(bb, featlib.load_samples("faces", max_images=20))
    >>> sweep.layers
    ('block1_pool', 'block2_pool', 'block3_pool', 'block4_pool', 'block5_pool')
    >>> sweep.accuracy.shape
    (5,)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA

from featlib._text import percent
from featlib._validation import l2_normalize
from featlib.analysis.probe import cosine_silhouette, probe_accuracy
from featlib.analysis.projection import procrustes_align
from featlib.errors import FeatlibError

__all__ = [
    "SAME",
    "Sweep",
    "describe_sweep",
    "islands",
    "layer_sweep",
    "sweep_input_size",
    "sweep_problem",
    "sweep_scores",
]

_MIN_SIDE = 64  # the smallest input a sweep runs at: VGG16's block5_pool is then 2 x 2
SAME = 0.03  # scores closer than this (3 points) are read as "the same"


@dataclass(frozen=True)
class Sweep:
    """Per-layer scores of one backbone on one labelled set.

    Attributes:
        layers: the layers, shallow to deep.
        accuracy: float array of shape (n_layers,): cross-validated linear-probe accuracy.
        silhouette: float array of shape (n_layers,): cosine silhouette of the labels.
        chance: accuracy of always answering the largest class.
        embeddings: per layer, float32 array of shape (n_images, 2): PCA of the L2-normalised
            features, each aligned to the previous layer's.
        labels: the images' labels.
        names: the images' names.
        weights: the backbone's weights label, for legends.
    """

    layers: tuple[str, ...]
    accuracy: np.ndarray
    silhouette: np.ndarray
    chance: float
    embeddings: tuple[np.ndarray, ...]
    labels: tuple[str, ...]
    names: tuple[str, ...]
    weights: str


def sweep_scores(features, labels, random_state: int = 0, *, groups=None) -> tuple[float, float]:
    """Out-of-fold linear-probe accuracy (``featlib.analysis.probe``) and cosine silhouette of
    one layer's features.

    Args:
        features: array of shape (n_samples, n_features).
        labels: one label per row; at least 2 classes, each with at least 2 distinct images.
        random_state: seed of the stratified folds.
        groups: one id per row, the SHA-256 of the image's bytes: copies of one image share a
            fold, so a copy never predicts its twin. None: every row is its own image.

    Returns:
        ``(accuracy, silhouette)``.

    Raises:
        FeatlibError: fewer than 2 classes, or a class with fewer than 2 distinct images.
    """
    accuracy = probe_accuracy(features, labels, groups, random_state=random_state)
    return accuracy, cosine_silhouette(features, labels, random_state)


def sweep_problem(labels, *, groups=None) -> str | None:
    """Why a set with these labels cannot be swept, in words; None when it can.

    Args:
        labels: one label per usable image (None for an unlabelled one).
        groups: one id per image, the SHA-256 of its bytes: copies of one image count once.
            None: every image counts.

    Returns:
        a sentence saying what the sweep needs and what the set has, or None.

    Example::

        >>> sweep_problem(["cat", "cat", "dog"])
        "The layer sweep needs at least 2 labels with 2 images each. Received: {'cat': 2, 'dog': 1}"
    """
    counts = Counter(labels)
    if None in counts:
        n, total = counts[None], len(labels)
        if total == 1:
            found = "the set has one image, without a label"
        elif n == total:
            found = f"none of the {total} images has a label"
        else:
            found = f"{n} of the {total} images {'has' if n == 1 else 'have'} no label"
        return (
            "The layer sweep compares labels: it needs at least 2 labels with 2 images each, and "
            f"{found}. Use a ZIP with one folder per label, or a labelled sample set (faces, "
            "digits)."
        )
    if len(counts) < 2 or min(counts.values()) < 2:
        return (
            f"The layer sweep needs at least 2 labels with 2 images each. Received: {dict(counts)}"
        )
    if groups is not None:
        distinct = Counter(label for label, _ in dict.fromkeys(zip(labels, groups, strict=True)))
        if min(distinct.values()) < 2:
            return (
                "The layer sweep needs at least 2 labels with 2 different images each; copies of "
                f"one image count once. Received, different images per label: {dict(distinct)}"
            )
    return None


def sweep_input_size(backbone, image_set) -> tuple[int, int]:
    """The input size a sweep of ``image_set`` needs: the backbone's own, or, when every usable
    image is smaller than that, the largest image side rounded up to a multiple of 32 (at least
    64, and what the architecture accepts). Upscaling a 64 x 64 face to 224 x 224 adds no
    detail, only twelve times the work.

    Args:
        backbone: a ``featlib.Backbone``; a user's model keeps its own size.
        image_set: a ``featlib.ImageSet``.

    Returns:
        ``(height, width)``.

    Example::

        >>> vgg = featlib.load_backbone("vgg16", "random")
        >>> sweep_input_size(vgg, featlib.load_samples("faces"))
        (64, 64)
    """
    from featlib.models.registry import get_spec

    sides = [max(r.width, r.height) for r in image_set.ok if r.width and r.height]
    if backbone.family == "custom" or not sides:
        return backbone.input_size
    side = max(_MIN_SIDE, get_spec(backbone.name).min_size, -(-max(sides) // 32) * 32)
    return (side, side) if side < min(backbone.input_size) else backbone.input_size


def layer_sweep(
    backbone, image_set, layers=None, *, store=None, resize_mode="stretch", random_state=0,
    progress=None, extractor=None,
) -> Sweep:  # fmt: skip
    """Score every block of a backbone on a labelled image set.

    Args:
        backbone: a ``featlib.Backbone``.
        image_set: a ``featlib.ImageSet`` with labels (at least 2 classes of 2 different
            images; copies of one image share a fold of the probe).
        layers: layer names; default every block output (``featlib.block_outputs``).
        store: a ``featlib.FeatureStore`` for the pooled features, or None.
        resize_mode: see ``featlib.extract_set``.
        random_state: seed of the folds and the PCA.
        progress: called as ``progress(done, total)`` while features are extracted.
        extractor: an ``Extractor`` over ``layers`` with average pooling to reuse (every
            block comes out of one forward pass either way).

    Returns:
        :class:`Sweep`.

    Raises:
        FeatlibError: unlabelled images, or classes too small to cross-validate.
    """
    from featlib.extraction.pipeline import extract_set
    from featlib.models.layers import block_outputs

    usable = image_set.ok
    problem = sweep_problem([r.label for r in usable], groups=[r.sha256 for r in usable])
    if problem is not None:
        raise FeatlibError(problem)
    names = list(layers) if layers is not None else [i.name for i in block_outputs(backbone)]
    feats = extract_set(
        backbone, image_set, names, pooling="avg", resize_mode=resize_mode, store=store,
        progress=progress, extractor=extractor,
        precision=None if extractor is not None else "float32",  # the extractor's, if given
    )  # fmt: skip
    labels = feats.labels
    # Again: an image may have failed while it was extracted.
    problem = sweep_problem(labels, groups=feats.sha256)
    if problem is not None:
        raise FeatlibError(problem)
    counts = Counter(labels)
    accuracy, silhouette, embeddings = [], [], []
    for name in names:
        x = feats.features[name]
        a, s = sweep_scores(x, labels, random_state, groups=feats.sha256)
        accuracy.append(a)
        silhouette.append(s)
        flat = PCA(n_components=2, random_state=random_state).fit_transform(l2_normalize(x))
        embeddings.append(procrustes_align(embeddings[-1], flat) if embeddings else flat)
    return Sweep(
        layers=tuple(names),
        accuracy=np.array(accuracy),
        silhouette=np.array(silhouette),
        chance=max(counts.values()) / len(labels),
        embeddings=tuple(np.asarray(e, np.float32) for e in embeddings),
        labels=tuple(labels),
        names=tuple(feats.names),
        weights=backbone.weights_label,
    )


def _score(value: float) -> str:
    return f"{value:.2f}"


def _trend(values: np.ndarray, layers: tuple[str, ...], fmt) -> str:
    """How ``values`` change from the first block to the last, in words: the same, rising
    (and falling again) or falling, naming the blocks and the values."""
    top, low = int(np.argmax(values)), int(np.argmin(values))
    first, last = values[0], values[-1]
    if values.max() - values.min() < SAME:
        low, high = fmt(values.min()), fmt(values.max())
        if low == high:
            return f"is {low} at every block"
        return f"stays near {fmt(values.mean())} at every block ({low} to {high})"
    if values[top] - first >= SAME:
        text = f"rises from {fmt(first)} at {layers[0]} to {fmt(values[top])} at {layers[top]}"
        if values[top] - last >= SAME:
            text += f", then falls to {fmt(last)} at {layers[-1]}"
        return text
    text = f"falls from {fmt(first)} at {layers[0]} to {fmt(values[low])} at {layers[low]}"
    if last - values[low] >= SAME:
        text += f", then rises to {fmt(last)} at {layers[-1]}"
    return text


def _gap(what: str, trained: np.ndarray, random: np.ndarray, layers, fmt) -> str:
    gap = trained - random
    best = int(np.argmax(gap))
    if np.abs(gap).max() < SAME:
        return (
            f"Trained and random weights give the same {what} at every block (within "
            f"{fmt(SAME)}): on this set it does not show what training added."
        )
    if gap[best] < SAME:
        worst = int(np.argmin(gap))
        behind = int((gap <= -SAME).sum())
        return (
            f"Training adds nothing to the {what} here: random weights are ahead at {behind} of "
            f"{len(layers)} blocks, most at {layers[worst]}: {fmt(random[worst])} against "
            f"{fmt(trained[worst])}."
        )
    ahead = int((gap >= SAME).sum())
    return (
        f"Training adds most to the {what} at {layers[best]}: {fmt(trained[best])} against "
        f"{fmt(random[best])} (trained ahead at {ahead} of {len(layers)} blocks)."
    )


def describe_sweep(sweep: Sweep, random: Sweep | None = None) -> list[str]:
    """What a sweep's numbers say, in sentences worded from the numbers themselves.

    Args:
        sweep: the sweep to read out.
        random: the same network with random weights on the same set and layers, to compare.

    Returns:
        sentences: the probe accuracy's course over the blocks, the silhouette's, the same for
        ``random``, where training adds most, and chance. A probe near 100 % at every block is
        called out: such a set is too easy for the probe to show depth.

    Example::

        >>> describe_sweep(sweep)[0]
        'With random init (seed 0) the probe accuracy is 95...'
    """
    layers = sweep.layers
    lines = [
        f"With {sweep.weights} the probe accuracy {_trend(sweep.accuracy, layers, percent)}; "
        f"the silhouette {_trend(sweep.silhouette, layers, _score)}."
    ]
    if sweep.accuracy.min() >= 1 - SAME:
        lines.append(
            f"Even {layers[0]} separates the labels almost perfectly: this set is too easy for "
            "the probe to show depth; the silhouette (how tightly each label clusters) still can."
        )
    if random is not None:
        if random.layers != layers:
            raise ValueError(f"sweeps over different layers: {layers} and {random.layers}")
        lines.append(
            f"With {random.weights} the probe accuracy {_trend(random.accuracy, layers, percent)}; "
            f"the silhouette {_trend(random.silhouette, layers, _score)}."
        )
        lines.append(_gap("probe accuracy", sweep.accuracy, random.accuracy, layers, percent))
        lines.append(_gap("silhouette", sweep.silhouette, random.silhouette, layers, _score))
    lines.append(f"Chance, always answering the largest label, is {percent(sweep.chance)}.")
    return lines


def islands(embedding, labels, k: int = 5, purity: float = 0.8) -> list[str]:
    """The labels that form an island of their own in a projection.

    A label's purity is the mean share, over its points, of their ``k`` nearest neighbours in
    the plane that carry the same label; an island is a label whose purity is at least
    ``purity``.

    Args:
        embedding: float array of shape (n_samples, 2 or 3).
        labels: one label per row.
        k: neighbours looked at per point.
        purity: the least purity of an island.

    Returns:
        the island labels, sorted.

    Example::

        >>> xy = np.r_[np.zeros((5, 2)), np.full((5, 2), 10.0), np.tile([0.0, 10.0], (6, 1))]
        >>> islands(xy, ["a"] * 5 + ["b"] * 5 + ["c", "d"] * 3, k=3)  # c and d share one spot
        ['a', 'b']
    """
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(embedding, dtype=np.float64)
    y = np.asarray([str(label) for label in labels])
    k = min(k, len(y) - 1)
    near = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x, return_distance=False)[:, 1:]
    same = (y[near] == y[:, None]).mean(axis=1)
    return sorted(label for label in set(y.tolist()) if same[y == label].mean() >= purity)
