"""Perceptual hashes that survive editing, and the pairs of images they match.

Each image gets pHash and dHash (64 bits each, 128 together) of the whole picture, of its mirror
image, and of nine windows covering 90 % of each side (a 3×3 grid of offsets). Two images are as
close as their best comparison: whole with whole (resized, re-encoded, brightened, colour-shifted
copies), whole with mirror (mirrored copies), a window of one with the whole of the other (crops)
and centre window with centre window (slight rotations, whose corners change).
:data:`MATCH_BITS` is the distance at which a pair counts as a copy; the recall per kind of edit
and the rate of distinct pictures matched are in ``benchmarks/RESULTS.md``
(``benchmarks/near_duplicates.py``).

The hashes are the ``imagehash`` library's ``phash`` and ``dhash``, bit for bit
(the hash tests compares them), computed faster: ``imagehash`` resizes each of
the 22 views with Pillow's Lanczos filter, one call each, which was most of the time of the
dataset checks. Pillow resizes in two passes of fixed-point integer sums, each rounded and
clipped to 0..255; those sums are exact in float64, so a matrix product per pass gives Pillow's
pixels, and one product covers every view that shares a pass.

Example::

    >>> import numpy as np
    >>> from featlib.analysis.checks.hashes import image_hashes, match
    >>> image = np.random.default_rng(0).integers(0, 256, size=(64, 80), dtype=np.uint8)
    >>> match(image_hashes(image), image_hashes(image[:, ::-1]))
    (0, 'mirrored copy')
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import scipy.fftpack
from threadpoolctl import threadpool_limits

__all__ = [
    "HASH_BITS",
    "MATCH_BITS",
    "distinct_similarities",
    "hash_candidates",
    "image_hashes",
    "judge",
    "match",
    "match_bound",
]

HASH_BITS = 128
# At most this many of the 128 bits apart, two images are copies. Measured on the bundled
# photos (benchmarks/near_duplicates.py): edited copies almost all lie at or under it, pairs of
# distinct pictures rarely (about 0.3 %).
MATCH_BITS = 32
# In a set of alike pictures (aligned faces) distinct pairs lie closer: the bound is then this
# many robust standard deviations below the set's median pair distance. At 4.6 the bundled
# faces flag under 5 % of their images and the bundled photos keep a bound of about 29 bits.
_ALIKE_Z = 4.6
_BOUND_SAMPLE = 500
# Within this share of the set's bound a match is decisive: on the bundled photos no pair of
# distinct pictures lies within 16 of 128 bits while copies reach 32 (benchmarks/RESULTS.md).
# Farther, the hashes of distinct pictures can meet by chance (smooth gradients, text on white),
# so the features must confirm the match: the pair must be at least as similar as a quantile of
# how similar the set's pictures are to their most similar distinct picture
# (distinct_similarities()), a quantile that rises with the distance, from the lowest at the
# close end to this one (the median) at the bound.
_CLOSE_SHARE = 0.5
_SUPPORT_QUANTILE = 50.0
_WINDOW = 0.9
_OFFSETS = (0.0, (1 - _WINDOW) / 2, 1 - _WINDOW)
# Rows of image_hashes(): the whole image, its mirror, then the windows row by row.
_WHOLE, _MIRROR, _FIRST_WINDOW = 0, 1, 2
_CENTRE = _FIRST_WINDOW + 4
_VIEWS = 11
# Rows of the distance matrix computed at once (each block is rows x n float32 per comparison).
_BLOCK = 512
# imagehash's sizes: pHash reduces to 32×32 (hash_size 8 × highfreq_factor 4) and keeps the 8×8
# lowest frequencies of its DCT; dHash reduces to 9 wide, 8 high and compares neighbours.
_PHASH_SIDE, _PHASH_KEEP = 32, 8
_DHASH_ROWS, _DHASH_COLUMNS = 8, 9
_SIZES = ((_PHASH_SIDE, _PHASH_SIDE), (_DHASH_ROWS, _DHASH_COLUMNS))
# Pillow's fixed-point resampling (libImaging/Resample.c): coefficients with 22 fractional bits,
# Lanczos with a support of 3.
_ONE = float(1 << 22)
_LANCZOS_SUPPORT = 3.0


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x = x * math.pi
    return math.sin(x) / x


@functools.lru_cache(maxsize=4096)
def _weights(in_size: int, out_size: int) -> np.ndarray:
    """Pillow's Lanczos coefficients from ``in_size`` pixels to ``out_size``, as the integers it
    sums with, in a float64 array of shape (out_size, in_size). Computed as Pillow does, in
    Python floats (the same C library's ``sin``), so every coefficient is Pillow's."""
    matrix = np.zeros((out_size, in_size))
    if in_size == out_size:  # Pillow skips the pass
        np.fill_diagonal(matrix, _ONE)
        return matrix
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = _LANCZOS_SUPPORT * filterscale
    step = 1.0 / filterscale
    for out in range(out_size):
        centre = (out + 0.5) * scale
        first = max(int(centre - support + 0.5), 0)
        count = min(int(centre + support + 0.5), in_size) - first
        taps = []
        for x in range(count):
            t = (x + first - centre + 0.5) * step
            taps.append(_sinc(t) * _sinc(t / 3) if -3.0 <= t < 3.0 else 0.0)
        total = 0.0
        for tap in taps:
            total += tap
        if total != 0.0:
            taps = [tap / total for tap in taps]
        matrix[out, first : first + count] = [
            int(-0.5 + tap * _ONE) if tap < 0 else int(0.5 + tap * _ONE) for tap in taps
        ]
    return matrix


def _round(sums: np.ndarray) -> np.ndarray:
    """Pillow's rounding of its fixed-point sums to 0..255."""
    out = np.floor((sums + _ONE / 2) / _ONE)
    np.maximum(out, 0, out=out)
    return np.minimum(out, 255, out=out)


def _spans(side: int) -> list[tuple[int, int]]:
    """The three window spans along one axis of ``side`` pixels: 90 %, at three offsets."""
    starts = [int(offset * side) for offset in _OFFSETS]
    return [
        (start, max(start + 1, round((offset + _WINDOW) * side)))
        for start, offset in zip(starts, _OFFSETS, strict=True)
    ]


@functools.lru_cache(maxsize=64)
def _first_pass(side: int, across: bool) -> tuple[np.ndarray, dict[tuple, slice]]:
    """Pillow's first pass of every view and size along one axis, as one matrix: of shape
    (side, outputs) across (columns; the mirrored whole image too), (outputs, side) down
    (rows); and where each (start, stop, size, mirrored) lies among its outputs."""
    blocks, where, offset = [], {}, 0
    for start, stop in [(0, side), *_spans(side)]:
        for oh, ow in _SIZES:
            size = ow if across else oh
            for mirrored in (False, True) if across and (start, stop) == (0, side) else (False,):
                key = (start, stop, size, mirrored)
                if key in where:  # a window as long as the side (a side of 1 px)
                    continue
                block = np.zeros((size, side))
                block[:, start:stop] = _weights(stop - start, size)
                blocks.append(block[:, ::-1] if mirrored else block)
                where[key] = slice(offset, offset + size)
                offset += size
    matrix = np.vstack(blocks)
    return (np.ascontiguousarray(matrix.T) if across else matrix), where


@dataclass(frozen=True, slots=True)
class _Step:
    """The second pass of one view at one size, from the first pass's product."""

    view: int
    phash: bool
    across_first: bool
    rows: slice
    columns: slice
    mirrored: bool
    outputs: slice  # of the first pass: its columns (across first) or rows (down first)
    weights: np.ndarray


@functools.lru_cache(maxsize=4096)
def _plan(h: int, w: int) -> tuple[tuple[_Step, ...], bool, bool]:
    """Each view's second pass for an h×w image, and whether any view starts across / down.

    Pillow runs the horizontal pass first unless the vertical one shrinks the image more (twice
    the width's reduction below the height's): found against Pillow 13 on every size up to
    200×200 and a sample up to 700; the hash tests checks sizes of each kind
    against ``imagehash`` itself."""
    views = [(0, h, 0, w, False), (0, h, 0, w, True)]
    views += [(y0, y1, x0, x1, False) for y0, y1 in _spans(h) for x0, x1 in _spans(w)]
    across, down = _first_pass(w, True)[1], _first_pass(h, False)[1]
    steps = []
    for view, (y0, y1, x0, x1, mirrored) in enumerate(views):
        for oh, ow in _SIZES:
            across_first = 2 * max(x1 - x0 - ow, 0) >= max(y1 - y0 - oh, 0)
            if across_first:
                outputs, weights = across[(x0, x1, ow, mirrored)], _weights(y1 - y0, oh)
            else:
                outputs, weights = down[(y0, y1, oh, False)], _weights(x1 - x0, ow).T
            steps.append(
                _Step(
                    view=view,
                    phash=oh == _PHASH_SIDE,
                    across_first=across_first,
                    rows=slice(y0, y1),
                    columns=slice(x0, x1),
                    mirrored=mirrored,
                    outputs=outputs,
                    weights=weights,
                )
            )
    firsts = [step.across_first for step in steps]
    return tuple(steps), any(firsts), not all(firsts)


def image_hashes(gray: np.ndarray) -> np.ndarray:
    """The hashes of one image: whole, mirrored, and nine windows of 90 % of each side.

    ``imagehash.phash`` and ``imagehash.dhash`` of each view, bit for bit.

    Args:
        gray: uint8 array of shape (h, w), the image's grey levels.

    Returns:
        bool array of shape (11, 128): rows whole, mirror, then the windows; in each row the
        pHash bits, then the dHash bits.
    """
    h, w = gray.shape
    steps, any_across, any_down = _plan(h, w)
    pixels = gray.astype(np.float64)
    across = _round(pixels @ _first_pass(w, True)[0]) if any_across else None
    down = _round(_first_pass(h, False)[0] @ pixels) if any_down else None
    small = np.empty((_VIEWS, _PHASH_SIDE, _PHASH_SIDE))
    tiny = np.empty((_VIEWS, _DHASH_ROWS, _DHASH_COLUMNS))
    for step in steps:
        if step.across_first:
            out = step.weights @ across[step.rows, step.outputs]
        else:
            part = down[step.outputs, step.columns]
            out = (part[:, ::-1] if step.mirrored else part) @ step.weights
        (small if step.phash else tiny)[step.view] = out
    small, tiny = _round(small), _round(tiny)
    # imagehash.phash: the DCT of the pixels (uint8 there, made float64 by scipy as here), rows
    # then columns, against its median.
    dct = scipy.fftpack.dct(scipy.fftpack.dct(small, axis=1), axis=2)
    low = dct[:, :_PHASH_KEEP, :_PHASH_KEEP].reshape(_VIEWS, -1)
    phash = low > np.median(low, axis=1, keepdims=True)
    dhash = (tiny[:, :, 1:] > tiny[:, :, :-1]).reshape(_VIEWS, -1)
    return np.concatenate([phash, dhash], axis=1)


def _signs(hashes: np.ndarray) -> np.ndarray:
    """Hash bits as float32 -1/+1: then a dot product of two rows is 128 - 2 x their Hamming
    distance, so distances come from matrix products."""
    return np.where(hashes, np.float32(1), np.float32(-1))


def _ways(a: np.ndarray, b: np.ndarray) -> dict[str, int]:
    windows = slice(_FIRST_WINDOW, None)
    return {
        "whole": int((a[_WHOLE] != b[_WHOLE]).sum()),
        "mirrored copy": int((a[_WHOLE] != b[_MIRROR]).sum()),
        "b is a crop of a": int((a[windows] != b[_WHOLE]).sum(axis=1).min()),
        "a is a crop of b": int((a[_WHOLE] != b[windows]).sum(axis=1).min()),
        "same centre": int((a[_CENTRE] != b[_CENTRE]).sum()),
    }


def match(a: np.ndarray, b: np.ndarray) -> tuple[int, str]:
    """How close two images' hashes are, and how they match, in words.

    Args:
        a, b: :func:`image_hashes` of two images.

    Returns:
        (distance in bits, 0..128, the best comparison's; its evidence: "same pHash",
        "mirrored copy", "b is a crop of a", "same centre", ...).
    """
    ways = _ways(a, b)
    way = min(ways, key=ways.get)
    distance = ways[way]
    if way != "whole":
        return distance, way if distance == 0 else f"{way}, hashes {distance} bits apart"
    if distance == 0:
        return 0, "same pHash and dHash"
    if (a[_WHOLE, :64] == b[_WHOLE, :64]).all():
        return distance, "same pHash"
    return distance, f"hashes {distance} of {HASH_BITS} bits apart"


def _best_distances(signs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The best comparison's distance from each of ``rows`` to every image, of shape
    (len(rows), n_images); inf for an image with itself. ``signs``: :func:`_signs` of the
    hashes of shape (n_images, 11, 128)."""
    whole = signs[:, _WHOLE]
    mine = signs[rows]
    agree = mine[:, _WHOLE] @ whole.T
    np.maximum(agree, mine[:, _WHOLE] @ signs[:, _MIRROR].T, out=agree)
    np.maximum(agree, mine[:, _CENTRE] @ signs[:, _CENTRE].T, out=agree)
    for window in range(_FIRST_WINDOW, _VIEWS):
        np.maximum(agree, mine[:, window] @ whole.T, out=agree)
        np.maximum(agree, mine[:, _WHOLE] @ signs[:, window].T, out=agree)
    best = (HASH_BITS - agree) / 2
    best[np.arange(len(rows)), rows] = np.inf
    return best


def _sample_distances(hashes: np.ndarray, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """At most _BOUND_SAMPLE rows of the set and their best distances to every image."""
    n = len(hashes)
    rows = np.arange(n)
    if n > _BOUND_SAMPLE:
        rows = np.random.default_rng(random_state).choice(n, _BOUND_SAMPLE, replace=False)
    # One BLAS thread, here and in hash_candidates: on this 2-core machine OpenBLAS's two
    # threads made these products about twice as slow.
    with threadpool_limits(limits=1, user_api="blas"):
        return rows, _best_distances(_signs(hashes), rows)


def _bound(distances: np.ndarray) -> float:
    q1, median, q3 = np.percentile(distances[np.isfinite(distances)], [25, 50, 75])
    return float(min(MATCH_BITS, median - _ALIKE_Z * (q3 - q1) / 1.349))


def match_bound(hashes: np.ndarray, random_state: int = 0) -> float:
    """The distance in bits up to which two images of this set are copies: :data:`MATCH_BITS`,
    or less in a set of alike pictures, whose distinct pairs lie closer.

    Args:
        hashes: bool array of shape (n_images, 11, 128), :func:`image_hashes` per image.
        random_state: seed of the rows sampled from a large set.

    Returns:
        the bound, at most :data:`MATCH_BITS`.
    """
    if len(hashes) < 4:
        return float(MATCH_BITS)
    return _bound(_sample_distances(hashes, random_state)[1])


def distinct_similarities(
    hashes: np.ndarray, unit: np.ndarray, random_state: int = 0
) -> tuple[float, np.ndarray]:
    """The set's match bound and how similar distinct pictures of the set get: for sampled
    images, the feature similarity of the most similar image whose hashes do not match.

    Copies do not count, so a set full of copies does not raise the bar for its own copies.

    Args:
        hashes: bool array of shape (n_images, 11, 128), :func:`image_hashes` per image.
        unit: float array of shape (n_images, n_features), unit-length feature vectors.
        random_state: seed of the rows sampled from a large set.

    Returns:
        (:func:`match_bound`, float array of shape (n_sampled,): one similarity per sampled
        image that has a distinct picture in the set, sorted ascending).
    """
    if len(hashes) < 4:
        return float(MATCH_BITS), np.empty(0)
    rows, distances = _sample_distances(hashes, random_state)
    bound = _bound(distances)
    similarity = unit[rows] @ unit.T
    similarity[(distances <= bound) | ~np.isfinite(distances)] = -np.inf
    nearest = similarity.max(axis=1)
    return bound, np.sort(nearest[np.isfinite(nearest)]).astype(np.float64)


def judge(
    distance: int, words: str, similarity: float, bound: float, reference: np.ndarray
) -> tuple[bool, str]:
    """Whether a hash match counts, and its evidence in words.

    A match within half the set's bound counts on its own. A farther one counts when the
    features agree: the pair's similarity at least a quantile of ``reference`` that rises from
    the lowest (just past half the bound) to the median (at the bound). With no reference (no
    distinct pictures in the set) the hashes decide alone.

    Args:
        distance: the pair's distance in bits, at most ``bound``.
        words: how the hashes match (:func:`match`).
        similarity: the pair's feature similarity.
        bound: the set's match bound (:func:`match_bound`).
        reference: :func:`distinct_similarities` of the set (sorted ascending).

    Returns:
        (whether the pair is a near duplicate, the evidence: "mirrored copy; features 0.98",
        "..., hashes 21 bits apart; features 0.99 confirm it (0.85 needed)", "..., hashes 30 bits
        apart; features 0.06 reject it (0.93 needed)").
    """
    close = bound * _CLOSE_SHARE
    features = f"features {similarity:.2f}"
    if distance <= close or not len(reference):
        return True, f"{words}; {features}"
    # np.percentile's linear quantile, without its overhead (one call per pair adds up to
    # seconds for the tens of thousands of pairs of a 10,000-image set).
    position = _SUPPORT_QUANTILE / 100 * (distance - close) / (bound - close) * (len(reference) - 1)
    low = int(position)
    high = min(low + 1, len(reference) - 1)
    needed = float(reference[low] + (reference[high] - reference[low]) * (position - low))
    if similarity >= needed:
        return True, f"{words}; {features} confirm it ({needed:.2f} needed)"
    return False, f"{words}; {features} reject it ({needed:.2f} needed)"


def hash_candidates(hashes: np.ndarray, k: int, max_distance: float) -> list[tuple[int, int]]:
    """Pairs of images whose hashes are close: each image's ``k`` nearest, at most
    ``max_distance`` bits away.

    Args:
        hashes: bool array of shape (n_images, 11, 128), :func:`image_hashes` per image.
        k: nearest other images kept per image.
        max_distance: the largest distance kept, in bits.

    Returns:
        sorted pairs (i, j) with i < j.
    """
    n = len(hashes)
    if n < 2:
        return []
    k = min(k, n - 1)
    signs = _signs(hashes)
    pairs = set()
    with threadpool_limits(limits=1, user_api="blas"):
        for start in range(0, n, _BLOCK):
            rows = np.arange(start, min(start + _BLOCK, n))
            best = _best_distances(signs, rows)
            nearest = np.argpartition(best, k - 1, axis=1)[:, :k]
            for r, row in enumerate(nearest):
                i = int(rows[r])
                pairs.update(
                    (min(i, int(j)), max(i, int(j))) for j in row if best[r, j] <= max_distance
                )
    return sorted(pairs)
