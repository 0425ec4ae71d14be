"""featlib.analysis.neighbors against a brute-force numpy reference."""

import numpy as np
import pytest

from featlib.analysis import neighbors
from featlib.analysis.neighbors import (
    NeighborIndex,
    label_mean_similarity,
    near_pairs,
    nearest,
    nearest_all,
    order_by_label,
    similarity_matrix,
)
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
@pytest.mark.parametrize("n", [30, 700])  # 700: 11 chunks of 64 columns, searched by maxima
def test_nearest_all_matches_brute_force(monkeypatch, block_floats, k, n):
    monkeypatch.setattr(neighbors, "BLOCK_FLOATS", block_floats)  # 10: one row per block
    x = _features(n=n, d=6)  # few dimensions: close scores, top-k spread over chunks
    sims = _reference_similarity(x)
    np.fill_diagonal(sims, -np.inf)
    expected = np.argsort(-sims, axis=1)[:, :k]
    idx, scores = nearest_all(x, k=k)
    assert idx.shape == scores.shape == (n, k)
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


def test_nearest_all_breaks_ties_by_index_across_chunks():
    x = _features(n=300)
    copies = [5, 70, 140, 250]  # one row and three copies, in different chunks of 64 columns
    x[copies] = x[5]
    idx, scores = nearest_all(x, k=3)
    for row in copies:
        assert idx[row].tolist() == [c for c in copies if c != row]
        np.testing.assert_allclose(scores[row], 1.0, atol=1e-6)


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


def _with_near_copies(n=37, d=8, seed=0):
    """Random rows plus a few planted near copies (similarity close to 1) and an exact one."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    for src, dst in [(0, 5), (3, 20), (11, 36), (20, 21)]:
        x[dst] = x[src] + 0.05 * rng.normal(size=d).astype(np.float32)
    x[30] = 2 * x[7]
    return x


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 5, 39])
def test_neighbor_index_matches_nearest(seed, k):
    x = _features(seed=seed)
    index = NeighborIndex(x)
    for row in (0, 17, 39):
        for got, want in zip(index.query_row(row, k), nearest(x, row, k=k), strict=True):
            np.testing.assert_allclose(got, want, atol=1e-6)
        vector = x[row] * 3 + 0.1
        want = nearest(x, vector, k=k)
        got = index.query(vector, k)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_allclose(got[1], want[1], atol=1e-6)
        assert got[0].dtype == np.int64 and got[1].dtype == np.float32


def test_neighbor_index_ties_in_index_order_like_a_stable_sort():
    x = _features(n=20)
    x[[4, 9, 13]] = x[2]  # four identical rows: the best three tie with the query row
    x[6] = 0
    idx, scores = NeighborIndex(x).query_row(2, k=3)
    np.testing.assert_array_equal(idx, [4, 9, 13])
    np.testing.assert_allclose(scores, 1, atol=1e-6)
    np.testing.assert_array_equal(idx, nearest(x, 2, k=3)[0])
    # A zero query is similar to nothing: every score 0, so the answer is the first rows.
    idx, scores = NeighborIndex(x).query(np.zeros(12), k=4, exclude=1)
    np.testing.assert_array_equal(idx, [0, 2, 3, 4])
    assert (scores == 0).all()


def test_neighbor_index_vectors_rebuild_the_same_index():
    x = _features()
    x[5] = 0
    index = NeighborIndex(x)
    v = index.vectors
    assert v.dtype == np.float32 and v.flags.c_contiguous and v.shape == x.shape
    np.testing.assert_allclose(
        np.linalg.norm(v, axis=1), np.where(np.arange(40) == 5, 0, 1), atol=1e-6
    )
    again = NeighborIndex.from_normalized(v.copy())
    for row in (0, 5, -1):
        for got, want in zip(again.query_row(row, 7), index.query_row(row, 7), strict=True):
            np.testing.assert_array_equal(got, want)
    assert len(again) == 40


def test_neighbor_index_exclude_and_clipping():
    x = _features(n=6)
    index = NeighborIndex(x)
    idx, _ = index.query(x[2], k=10, exclude=2)
    assert idx.shape == (5,) and 2 not in idx
    idx, scores = index.query(x[2], k=10)
    assert idx.shape == (6,) and idx[0] == 2 and scores[0] == pytest.approx(1, abs=1e-6)
    assert index.query(x[2], k=1, exclude=-4)[0][0] != 2  # -4 counts from the end: row 2


def _reference_pairs(x, threshold):
    sims = np.triu(similarity_matrix(x).astype(np.float64), k=1)
    i, j = np.nonzero(np.triu(sims >= threshold, k=1))
    return {(a, b): sims[a, b] for a, b in zip(i.tolist(), j.tolist(), strict=True)}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("block", [None, 1, 5, 36, 37, 100])
@pytest.mark.parametrize("threshold", [0.9, 0.3, -1.0])
def test_near_pairs_match_all_pairs(seed, block, threshold):
    x = _with_near_copies(seed=seed)
    x[9] = 0  # similarity 0 to everything: in the pairs at threshold <= 0 only
    pairs, sims = near_pairs(x, threshold, block=block)
    expected = _reference_pairs(x, threshold)
    assert pairs.dtype == np.int64 and sims.dtype == np.float32 and pairs.shape == (len(sims), 2)
    assert {tuple(p) for p in pairs.tolist()} == set(expected)
    np.testing.assert_allclose(sims, [expected[tuple(p)] for p in pairs.tolist()], atol=1e-6)
    # Most similar first, ties by i then j.
    keys = list(zip((-sims).tolist(), pairs[:, 0].tolist(), pairs[:, 1].tolist(), strict=True))
    assert keys == sorted(keys)
    if threshold == 0.9:
        assert {(0, 5), (3, 20), (11, 36), (7, 30)} <= set(expected)


def test_near_pairs_none_reach_the_threshold():
    pairs, sims = near_pairs(_features(), 1.0, block=7)
    assert pairs.shape == (0, 2) and pairs.dtype == np.int64
    assert sims.shape == (0,) and sims.dtype == np.float32


def _reference_label_means(x, labels):
    sims = _reference_similarity_with_zeros(x)
    names = sorted({lab for lab in labels if lab is not None}) + ([None] if None in labels else [])
    out = np.empty((len(names), len(names)))
    for a, name_a in enumerate(names):
        ia = [i for i, lab in enumerate(labels) if lab == name_a]
        for b, name_b in enumerate(names):
            ib = [i for i, lab in enumerate(labels) if lab == name_b]
            block = sims[np.ix_(ia, ib)]
            if a == b:
                off = block[~np.eye(len(ia), dtype=bool)]
                out[a, b] = off.mean() if off.size else np.nan
            else:
                out[a, b] = block.mean()
    return names, out


def _reference_similarity_with_zeros(x):
    x = x.astype(np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    xn = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    return xn @ xn.T


@pytest.mark.parametrize("seed", [0, 1])
def test_label_mean_similarity_matches_brute_force(monkeypatch, seed):
    monkeypatch.setattr(neighbors, "BLOCK_FLOATS", 50)  # several row blocks
    rng = np.random.default_rng(seed)
    x = _with_near_copies(seed=seed)
    x[4] = 0  # a zero row in label "b": self-similarity 0, not 1
    labels = [["b", "a", None, "c"][i] for i in rng.integers(0, 4, len(x))]
    labels[4], labels[12] = "b", "only"  # "only" is a singleton label
    names, means = label_mean_similarity(x, labels)
    want_names, want = _reference_label_means(x, labels)
    assert names == want_names and names[-1] is None and "only" in names
    assert means.dtype == np.float32 and means.shape == (len(names), len(names))
    np.testing.assert_allclose(means, want, atol=1e-6)
    assert np.isnan(means[names.index("only"), names.index("only")])
    # Reference from similarity_matrix itself, on the rows grouped by label.
    order = order_by_label(labels)
    grouped = similarity_matrix(x, order=order)
    b = [i for i, j in enumerate(order) if labels[j] == "b"]
    within = grouped[np.ix_(b, b)][~np.eye(len(b), dtype=bool)].mean()
    assert means[names.index("b"), names.index("b")] == pytest.approx(within, abs=1e-5)


def test_label_mean_similarity_of_one_label_of_copies_is_one():
    x = np.tile(_features(n=1), (4, 1))
    names, means = label_mean_similarity(x, ["a"] * 4)
    assert names == ["a"] and means[0, 0] == pytest.approx(1.0, abs=1e-6)


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
        (lambda x: NeighborIndex(x[0]), "2-D"),
        (lambda x: NeighborIndex(x).query(np.ones(3)), "shape"),
        (lambda x: NeighborIndex(x).query(x[0], k=0), "positive integer"),
        (lambda x: NeighborIndex(x).query(x[0], exclude=40), "exclude index out of range"),
        (lambda x: NeighborIndex(x).query(x[0], exclude=1.0), "exclude must be an integer"),
        (lambda x: NeighborIndex(x).query_row(-41), "row index out of range"),
        (lambda x: NeighborIndex.from_normalized(x), "length 1 .* Received: row 0"),
        (lambda x: near_pairs(x, 1.5), r"threshold must be a number in \[-1, 1\]"),
        (lambda x: near_pairs(x, float("nan")), "threshold=nan"),
        (lambda x: near_pairs(x, "0.9"), "threshold='0.9'"),
        (lambda x: near_pairs(x, 0.9, block=0), "block must be a positive integer"),
        (lambda x: label_mean_similarity(x, ["a"] * 39), "one entry per row: 40 rows"),
        (lambda x: label_mean_similarity(x, [1] * 40), "strings or None"),
    ],
)
def test_bad_inputs_raise(call, match):
    with pytest.raises(FeatlibError, match=match):
        call(_features())
