"""Checks and small array helpers that several packages share: feature matrices at the boundary,
row lengths, unit rows."""

from __future__ import annotations

import numpy as np

from featlib.errors import FeatlibError

__all__ = ["BLOCK_FLOATS", "as_features", "l2_normalize", "row_norms"]

# Floats handled at once by the blocked loops over large matrices.
BLOCK_FLOATS = 4_000_000


def as_features(features, min_samples: int = 1, name: str = "features") -> np.ndarray:
    """Check a feature matrix at the boundary and return it as a float32 array (no copy if
    it already is one)."""
    try:
        x = np.asarray(features, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise FeatlibError(f"{name} must be a numeric array; could not convert: {err}") from None
    if x.ndim != 2:
        raise FeatlibError(f"{name} must be 2-D (n_samples, n_features). Received: shape={x.shape}")
    if x.shape[0] < min_samples:
        raise FeatlibError(
            f"{name} needs at least {min_samples} samples. Received: n_samples={x.shape[0]}"
        )
    if x.shape[1] < 1:
        raise FeatlibError(f"{name} has no feature columns. Received: shape={x.shape}")
    # In blocks: np.isfinite on a 2 GB matrix would allocate 500 MB at once.
    step = max(1, BLOCK_FLOATS // x.shape[1])
    for start in range(0, x.shape[0], step):
        block = x[start : start + step]
        if not np.isfinite(block).all():
            row = start + int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
            raise FeatlibError(
                f"{name} contains NaN or infinite values (first in row {row}); "
                "check the extraction that produced them."
            )
    return x


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a copy of the same dtype); zero rows stay zero."""
    norms = row_norms(x)[:, None]
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def row_norms(x: np.ndarray) -> np.ndarray:
    """Euclidean length of each row (einsum: about 10x faster than np.linalg.norm here)."""
    return np.sqrt(np.einsum("ij,ij->i", x, x))
