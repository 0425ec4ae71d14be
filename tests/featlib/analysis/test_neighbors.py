"""featlib.analysis.neighbors against a brute-force numpy reference."""

import numpy as np
import pytest

from featlib.analysis import neighbors
from featlib.analysis.neighbors import nearest, nearest_all, order_by_label, similarity_matrix
from featlib.errors import FeatlibError


def _features(n=40, d=12, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def _reference_similarity(x):
    x = x.astype(np.float64)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    return xn @ xn.T


@pytest.mark.parametrize("k", [1, 5, 39])
@pytest.mark.parametrize("query", [0, 17, -1])
def test_nearest_index_matches_brute_force(query, k):
    x = _features()
    sims = _reference_similarity(x)[query]
    expected = [j for j in np.argsort(-sims) if j != query % len(x)][:k]
    idx, scores = nearest(x, query, k=k)
    np.testing.assert_array_equal(idx, expected)
    np.testing.assert_allclose(scores, sims[expected], rtol=1e-5, atol=1e-6)
    assert idx.dtype == np.int64 and scores.dtype == np.float32


def test_nearest_vector_query_and_self():
    x = _features()
    query = x[3] * 2.5  # cosine ignores length
    idx, scores = nearest(x, query, k=3)
    assert idx[0] == 3 and scores[0] == pytest.approx(1.0, abs=1e-6)
    idx, _ = nearest(x, 3, k=3, exclude_self=False)
    assert idx[0] == 3


def test_nearest_clips_k_to_available_rows():
    idx, scores = nearest(_features(n=4), 0, k=10)
    assert idx.shape == scores.shape == (3,)
    assert 0 not in idx


@pytest.mark.parametrize("block_floats", [10, 4_000_000])
@pytest.mark.parametrize("k", [1, 4])
def test_nearest_all_matches_brute_force(monkeypatch, block_floats, k):
    monkeypatch.setattr(neighbors, "BLOCK_FLOATS", block_floats)  # 10: one row per block
    x = _features(n=30)
    sims = _reference_similarity(x)
    np.fill_diagonal(sims, -np.inf)
    expected = np.argsort(-sims, axis=1)[:, :k]
    idx, scores = nearest_all(x, k=k)
    assert idx.shape == scores.shape == (30, k)
    np.testing.assert_array_equal(idx, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(sims, expected, 1), atol=1e-5)


def test_nearest_all_finds_an_exact_copy_but_never_itself():
    x = _features(n=10)
    x[7] = x[2]
    idx, scores = nearest_all(x, k=20)
    assert idx.shape == (10, 9)
    assert (idx != np.arange(10)[:, None]).all()
    assert idx[2, 0] == 7 and idx[7, 0] == 2
    assert scores[2, 0] == pytest.approx(1.0, abs=1e-6)


def test_zero_rows_have_similarity_zero():
    x = _features(n=5)
    x[1] = 0
    sims = similarity_matrix(x)
    assert np.all(sims[1] == 0) and np.all(sims[:, 1] == 0)
    _, scores = nearest(x, x[0], k=5)
    assert np.isfinite(scores).all()


def test_similarity_matrix_matches_reference_and_order():
    x = _features(n=12)
    sims = similarity_matrix(x)
    assert sims.dtype == np.float32 and sims.shape == (12, 12)
    np.testing.assert_allclose(sims, _reference_similarity(x), atol=1e-5)
    order = [5, 0, 11]
    np.testing.assert_allclose(similarity_matrix(x, order=order), sims[np.ix_(order, order)])


def test_order_by_label_is_stable_with_none_last():
    labels = ["b", None, "a", "b", None, "a", "c"]
    order = order_by_label(labels)
    np.testing.assert_array_equal(order, [2, 5, 0, 3, 6, 1, 4])
    assert order.dtype == np.int64
    assert order_by_label([]).shape == (0,)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda x: nearest(x[0], 0), "2-D"),
        (lambda x: nearest(x, 40), "out of range"),
        (lambda x: nearest(x, np.ones(3)), "shape"),
        (lambda x: nearest(x, 0, k=0), "positive integer"),
        (lambda x: nearest(np.where(x > 1, np.nan, x), 0), "NaN"),
        (lambda x: nearest(x, np.full(12, np.inf)), "NaN"),
        (lambda x: nearest_all(x[:1]), "at least 2"),
        (lambda x: nearest_all(x, k=2.5), "positive integer"),
        (lambda x: similarity_matrix(x, order=[0, 40]), "outside"),
        (lambda x: similarity_matrix(x, order=[0.5]), "indices"),
        (lambda x: order_by_label(["a", 3]), "strings or None"),
        (lambda x: similarity_matrix([["a", "b"]]), "numeric"),
    ],
)
def test_bad_inputs_raise(call, match):
    with pytest.raises(FeatlibError, match=match):
        call(_features())
