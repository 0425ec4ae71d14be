"""featlib.analysis.maps: channel statistics and the top channels."""

from __future__ import annotations

import numpy as np
import pytest

from featlib.analysis.maps import channel_stats, top_channels
from featlib.errors import FeatlibError


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
