"""featlib.analysis.maps (channel statistics), featlib.analysis.cluster (k-means) and featlib.models.imagenet (class
names and top-k, from a Keras cache laid out in a temporary folder)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from featlib.analysis.cluster import kmeans_labels
from featlib.analysis.maps import channel_stats, top_channels
from featlib.errors import FeatlibError, WeightsUnavailableError
from featlib.models import imagenet


@pytest.fixture
def maps():
    return np.random.default_rng(0).normal(size=(6, 5, 8)).astype(np.float32)


def test_channel_stats_closed_forms(maps):
    stats = channel_stats(maps)
    np.testing.assert_allclose(stats.mean, maps.mean(axis=(0, 1)), rtol=1e-6)
    np.testing.assert_array_equal(stats.max, maps.max(axis=(0, 1)))
    np.testing.assert_allclose(stats.active, (maps > 0).mean(axis=(0, 1)))


@pytest.mark.parametrize("by", ["mean", "max", "active"])
def test_top_channels_rank_by_each_statistic(maps, by):
    score = getattr(channel_stats(maps), by)
    top = top_channels(maps, k=3, by=by)
    assert top.tolist() == np.argsort(-score, kind="stable")[:3].tolist()


def test_top_channels_clips_k_and_checks_input(maps):
    assert len(top_channels(maps, k=100)) == 8
    with pytest.raises(FeatlibError, match="by must be"):
        top_channels(maps, by="median")
    with pytest.raises(FeatlibError, match="positive"):
        top_channels(maps, k=0)
    with pytest.raises(FeatlibError, match="height, width, channels"):
        channel_stats(maps[0])


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


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    return tmp_path / "models"


def write_class_index(folder):
    index = {str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}
    (folder / imagenet.CLASS_INDEX_FILE).write_text(json.dumps(index))


def test_unavailable_reason_names_the_missing_files(keras_home):
    reason = imagenet.unavailable_reason("mobilenetv2")
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5" in reason
    assert imagenet.CLASS_INDEX_FILE in reason and str(keras_home) in reason
    write_class_index(keras_home)
    (keras_home / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5").write_bytes(b"")
    assert imagenet.unavailable_reason("mobilenetv2") is None


def test_top_k_names_the_most_probable_classes(keras_home):
    write_class_index(keras_home)
    probabilities = np.zeros((2, 1000), np.float32)
    probabilities[0, [7, 3]] = [0.75, 0.25]
    probabilities[1, 999] = 1.0
    assert imagenet.top_k(probabilities, k=2) == [
        [("class_7", 0.75), ("class_3", 0.25)],
        [("class_999", 1.0), ("class_0", 0.0)],
    ]


def test_class_names_missing_or_damaged(keras_home):
    with pytest.raises(WeightsUnavailableError, match="is not in"):
        imagenet.class_names()
    (keras_home / imagenet.CLASS_INDEX_FILE).write_text('{"0": ["n0", "tench"]}')
    with pytest.raises(WeightsUnavailableError, match="not Keras' ImageNet class index"):
        imagenet.class_names()


def test_top_k_checks_its_input(keras_home):
    with pytest.raises(ValueError, match=r"\(n_images, 1000\)"):
        imagenet.top_k(np.zeros((2, 10)))
