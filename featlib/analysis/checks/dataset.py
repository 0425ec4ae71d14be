"""The checks of a whole set: duplicates, near duplicates, outliers, label issues, quality,
rare classes, shortcuts and leakage, computed once (``check_dataset``, ``check_image_set``).

Identical files (same SHA-256) are compared once: near duplicates, outliers and the
feature-space checks use the first image of each content, and its copies share its result.

Example::

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(60, 16)).astype(np.float32)
    >>> x[1] = x[0] + 0.001
    >>> report = check_dataset([f"{i}" for i in range(60)], ["a", "b"] * 30, x)
    >>> [(i, n) for i, n, _ in report.summary()][:2]
    [('exact_duplicates', 0), ('near_duplicates', 1)]
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from featlib._validation import as_features, l2_normalize
from featlib.analysis.checks.hashes import distinct_similarities, hash_candidates, judge, match
from featlib.analysis.checks.issues import (
    DEFAULT_THRESHOLDS,
    FACT_SHARE,
    FACTS,
    ISSUES,
    default_threshold,
    tukey_fence,
)
from featlib.analysis.checks.label_issues import probe_labels
from featlib.analysis.checks.pixels import QUALITY_SIDE, pixel_stats, quality_tables, size_tables
from featlib.analysis.checks.report import CheckReport, IssueTable
from featlib.analysis.checks.set_checks import (
    find_shortcut,
    property_vectors,
    rare_classes,
)
from featlib.analysis.neighbors import nearest_all
from featlib.errors import FeatlibError

__all__ = [
    "check_dataset",
    "check_image_set",
    "report_thumbnails",
]

_NEAR_NEIGHBORS = 10
_PAIR_COLUMNS = ("index_a", "index_b", "name_a", "name_b", "split_a", "split_b", "leakage")


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
        sizes: per image, its original (height, width), as images' shapes and input sizes
            are given everywhere in featlib; defaults to the pixel arrays' sizes.
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
    x = as_features(features, min_samples=3)
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
        stats, pixel_sizes, hashes = pixel_stats(pixels, names)
        hashes = hashes[unique]
        tables.update(quality_tables(stats, names))
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
    label_table, separability, reason = probe_labels(x, labels, groups, names, random_state)
    if label_table is None:
        skipped["label_issues"] = skipped["separability"] = reason
    else:
        tables["label_issues"] = label_table
    if sizes is not None:
        sizes = _sizes(sizes, n)
        tables.update(size_tables(sizes, names))
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
        height, width = (int(v) for v in sizes[0])
        facts.append((len(sizes), f"every image is {width}×{height} px"))
    for issue, words in FACTS.items():
        table = tables.get(issue)
        if table is None or (one_size and issue in ("tiny", "odd_aspect")):
            continue
        bound = DEFAULT_THRESHOLDS[issue]
        scores = table.column("score").astype(np.float64)
        beyond = scores < bound if table.direction == "below" else scores > bound
        count, n = int((beyond & ~table.flags).sum()), len(scores)
        if count and count >= FACT_SHARE * n:
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
        pixels=_Thumbnails(image_set, records, QUALITY_SIDE),
        sizes=[(r.height, r.width) for r in records],
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
        image index -> JPEG bytes; an image whose picture cannot be had (a feature file's
        record without its picture, a file changed since) is left out, and the page shows its
        row without one.
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
        try:
            thumbnail = image_set.thumbnail(records[i], side)
        except FeatlibError:
            continue
        buf = io.BytesIO()
        thumbnail.save(buf, "JPEG", quality=85)
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
        raise FeatlibError("sizes must be (height, width) pairs.") from None
    if arr.shape != (n, 2) or not np.isfinite(arr).all() or (arr <= 0).any():
        raise FeatlibError(
            f"sizes must be {n} positive (height, width) pairs. Received: shape {arr.shape}"
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
    unit = l2_normalize(centred)
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
            tukey_fence("near_duplicates", nn_sim[:, 0]) or 0.0,
            DEFAULT_THRESHOLDS["near_duplicates"],
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
        threshold=default_threshold("outliers", unique_scores, "above"),
        exclude_column="nearest_similarity",
        exclude_at=near_threshold,
    )
