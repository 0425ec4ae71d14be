"""k-means cluster labels."""

from __future__ import annotations

import numpy as np
import pytest

from featlib.analysis.cluster import kmeans_labels
from featlib.errors import FeatlibError


def test_kmeans_finds_separate_groups_numbered_by_first_appearance():
    rng = np.random.default_rng(0)
    centres = np.eye(3, 16) * 10
    x = np.concatenate([c + rng.normal(size=(10, 16)) for c in centres[[2, 0, 1]]])
    labels = kmeans_labels(x, n_clusters=3, random_state=0)
    assert labels.tolist() == [0] * 10 + [1] * 10 + [2] * 10


@pytest.mark.parametrize("n_clusters", [0, 31, True])
def test_kmeans_checks_n_clusters(n_clusters):
    with pytest.raises(FeatlibError, match="n_clusters"):
        kmeans_labels(np.zeros((30, 4)), n_clusters=n_clusters)
