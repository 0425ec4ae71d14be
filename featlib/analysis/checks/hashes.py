"""Perceptual hashes that survive editing, and the pairs of images they match.

Each image gets pHash and dHash (``imagehash``, 64 bits each, 128 together) of the whole
picture, of its mirror image, and of nine windows covering 90 % of each side (a 3×3 grid of
offsets). Two images are as close as their best comparison: whole with whole (resized,
re-encoded, brightened, colour-shifted copies), whole with mirror (mirrored copies), a window of
one with the whole of the other (crops) and centre window with centre window (slight rotations,
whose corners change). :data:`MATCH_BITS` is the distance at which a pair counts as a copy; the
recall per kind of edit and the rate of distinct pictures matched are in
``benchmarks/RESULTS.md`` (``benchmarks/near_duplicates.py``).

Example::

    >>> import numpy as np
    >>> from featlib.analysis.checks.hashes import image_hashes, match
    >>> image = np.random.default_rng(0).integers(0, 256, size=(64, 80), dtype=np.uint8)
    >>> match(image_hashes(image), image_hashes(image[:, ::-1]))
    (0, 'mirrored copy')
"""

from __future__ import annotations

import imagehash
import numpy as np
from PIL import Image

__all__ = ["HASH_BITS", "MATCH_BITS", "hash_candidates", "image_hashes", "match", "match_bound"]

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
_WINDOW = 0.9
_OFFSETS = (0.0, (1 - _WINDOW) / 2, 1 - _WINDOW)
# Rows of image_hashes(): the whole image, its mirror, then the windows row by row.
_WHOLE, _MIRROR, _FIRST_WINDOW = 0, 1, 2
_CENTRE = _FIRST_WINDOW + 4
# Rows of the distance matrix computed at once (each block is rows x n float32 per comparison).
_BLOCK = 512


def _bits(image: Image.Image) -> np.ndarray:
    return np.concatenate(
        [imagehash.phash(image).hash.ravel(), imagehash.dhash(image).hash.ravel()]
    )


def image_hashes(gray: np.ndarray) -> np.ndarray:
    """The hashes of one image: whole, mirrored, and nine windows of 90 % of each side.

    Args:
        gray: uint8 array of shape (h, w), the image's grey levels.

    Returns:
        bool array of shape (11, 128): rows whole, mirror, then the windows; in each row the
        pHash bits, then the dHash bits.
    """
    image = Image.fromarray(gray)
    h, w = gray.shape
    rows = [_bits(image), _bits(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))]
    for oy in _OFFSETS:
        for ox in _OFFSETS:
            x0, y0 = int(ox * w), int(oy * h)
            x1, y1 = max(x0 + 1, round((ox + _WINDOW) * w)), max(y0 + 1, round((oy + _WINDOW) * h))
            rows.append(_bits(image.crop((x0, y0, x1, y1))))
    return np.array(rows)


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances between rows of two bool arrays of 128 columns, as float32."""
    a, b = a.astype(np.float32), b.astype(np.float32)
    return a.sum(axis=1)[:, None] + b.sum(axis=1)[None, :] - 2 * (a @ b.T)


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


def _best_distances(hashes: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The best comparison's distance from each of ``rows`` to every image, of shape
    (len(rows), n_images); inf for an image with itself."""
    whole, mirror = hashes[:, _WHOLE], hashes[:, _MIRROR]
    windows = hashes[:, _FIRST_WINDOW:]
    best = np.minimum(_distances(whole[rows], whole), _distances(whole[rows], mirror))
    best = np.minimum(best, _distances(hashes[rows, _CENTRE], hashes[:, _CENTRE]))
    for w in range(windows.shape[1]):
        best = np.minimum(best, _distances(windows[rows, w], whole))
        best = np.minimum(best, _distances(whole[rows], windows[:, w]))
    best[np.arange(len(rows)), rows] = np.inf
    return best


def match_bound(hashes: np.ndarray, random_state: int = 0) -> float:
    """The distance in bits up to which two images of this set are copies: :data:`MATCH_BITS`,
    or less in a set of alike pictures, whose distinct pairs lie closer.

    Args:
        hashes: bool array of shape (n_images, 11, 128), :func:`image_hashes` per image.
        random_state: seed of the rows sampled from a large set.

    Returns:
        the bound, at most :data:`MATCH_BITS`.
    """
    n = len(hashes)
    if n < 4:
        return float(MATCH_BITS)
    rows = np.arange(n)
    if n > _BOUND_SAMPLE:
        rows = np.random.default_rng(random_state).choice(n, _BOUND_SAMPLE, replace=False)
    distances = _best_distances(hashes, rows)
    q1, median, q3 = np.percentile(distances[np.isfinite(distances)], [25, 50, 75])
    return float(min(MATCH_BITS, median - _ALIKE_Z * (q3 - q1) / 1.349))


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
    pairs = set()
    for start in range(0, n, _BLOCK):
        rows = np.arange(start, min(start + _BLOCK, n))
        best = _best_distances(hashes, rows)
        nearest = np.argpartition(best, k - 1, axis=1)[:, :k]
        for r, row in enumerate(nearest):
            i = int(rows[r])
            pairs.update(
                (min(i, int(j)), max(i, int(j))) for j in row if best[r, j] <= max_distance
            )
    return sorted(pairs)
