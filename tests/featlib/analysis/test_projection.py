"""featlib.analysis.projection: PCA against scikit-learn, t-SNE and UMAP on separable blobs,
Procrustes."""

import subprocess
import sys

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from sklearn.decomposition import PCA
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from featlib.analysis.projection import Projection, procrustes_align, project, warm_up_umap
from featlib.errors import FeatlibError


def _blobs(per_class=30, d=20, seed=0):
    """Three well-separated Gaussian blobs in d dimensions."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, d)) * 4
    y = np.repeat(np.arange(3), per_class)
    return (centers[y] + rng.normal(size=(len(y), d))).astype(np.float32), y


def _knn_accuracy(embedding, y):
    return cross_val_score(KNeighborsClassifier(5), embedding, y, cv=5).mean()


def _low_rank(n=200, d=30, seed=0):
    """Data with a clearly decaying spectrum, so that components are well defined."""
    rng = np.random.default_rng(seed)
    scales = 2.0 ** -np.arange(8) * 10
    z = rng.normal(size=(n, 8)) * scales
    return (z @ rng.normal(size=(8, d)) + 0.1 * rng.normal(size=(n, d))).astype(np.float32)


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("n_components", [2, 3])
def test_pca_matches_sklearn(normalize, n_components):
    x = _low_rank()
    p = project(x, "pca", n_components, normalize=normalize)
    data = x / np.linalg.norm(x, axis=1, keepdims=True) if normalize else x
    ref = PCA(n_components).fit(data)
    np.testing.assert_allclose(
        p.quality["explained_variance_ratio"], ref.explained_variance_ratio_, rtol=1e-4
    )
    assert p.quality["explained_variance_total"] == pytest.approx(
        ref.explained_variance_ratio_.sum(), rel=1e-4
    )
    assert isinstance(p, Projection) and p.method == "pca"
    assert p.embedding.shape == (200, n_components) and p.embedding.dtype == np.float32
    assert p.params["normalize"] is normalize


@pytest.mark.parametrize("n_components", [2, 3])
def test_chunked_pca_matches_full_pca_up_to_sign(monkeypatch, n_components):
    from featlib.analysis import projection as project_module

    monkeypatch.setattr(project_module, "_CHUNK_FLOATS", 300)  # 10 rows per chunk
    x = _low_rank(n=150, d=30)
    full = project(x, "pca", n_components)
    chunked = project(x, "pca", n_components, max_dense_size=1000)
    assert chunked.params["svd_solver"] == "chunked-randomized"
    assert full.params["svd_solver"] == "auto"
    np.testing.assert_allclose(
        chunked.quality["explained_variance_ratio"],
        full.quality["explained_variance_ratio"],
        rtol=1e-4,
    )
    for j in range(n_components):
        a, b = chunked.embedding[:, j], full.embedding[:, j]
        sign = np.sign(a @ b)
        np.testing.assert_allclose(a, sign * b, atol=1e-4 * np.abs(b).max())


def test_pca_of_planar_data_is_perfectly_faithful():
    x = np.random.default_rng(1).normal(size=(50, 2)).astype(np.float32)
    p = project(x, "pca", normalize=False)
    assert p.quality["trustworthiness"] == pytest.approx(1.0)
    assert p.quality["knn_preservation"] == pytest.approx(1.0)
    assert p.quality["explained_variance_total"] == pytest.approx(1.0)


@pytest.mark.parametrize("n_components", [2, 3])
def test_tsne_separates_blobs(n_components):
    x, y = _blobs()
    p = project(x, "tsne", n_components, perplexity=10)
    assert p.embedding.shape == (90, n_components) and p.embedding.dtype == np.float32
    assert _knn_accuracy(p.embedding, y) > 0.9
    assert 0.9 < p.quality["trustworthiness"] <= 1
    assert 0 <= p.quality["knn_preservation"] <= 1
    assert p.params["negative_gradient_method"] == "bh"  # 90 points: Barnes-Hut, also in 2-D
    assert p.params["pca_dims"] is None  # 20 dimensions: nothing to reduce


def test_tsne_clips_perplexity_for_small_sets():
    x, _ = _blobs(per_class=3)
    p = project(x, "tsne", perplexity=30)
    assert p.params["perplexity"] == pytest.approx((9 - 1) / 3)
    assert np.isfinite(p.embedding).all()


def test_quality_is_computed_on_a_seeded_subsample(monkeypatch):
    from featlib.analysis import projection as project_module

    monkeypatch.setattr(project_module, "_QUALITY_SAMPLE", 50)
    x = _low_rank(n=120)
    a, b = project(x, "pca"), project(x, "pca")
    assert a.quality == b.quality
    assert 0 <= a.quality["knn_preservation"] <= 1


def _wide_blobs(per_class=40, d=80, seed=0):
    """Three blobs in more dimensions than pca_dims=10 leaves, as float32."""
    return _blobs(per_class=per_class, d=d, seed=seed)


def _normalized_pca(x, dims):
    # Row lengths as featlib computes them (float32 einsum): t-SNE magnifies a last-bit change.
    data = x / np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
    return PCA(dims, random_state=0).fit_transform(data).astype(np.float32)


def test_tsne_on_pca_dims_is_tsne_of_the_pca_reduced_vectors():
    x, y = _wide_blobs()
    p = project(x, "tsne", perplexity=10, pca_dims=10)
    assert p.params["pca_dims"] == 10
    reference = project(_normalized_pca(x, 10), "tsne", perplexity=10, normalize=False)
    assert reference.params["pca_dims"] is None  # 10 dimensions: nothing to reduce
    np.testing.assert_array_equal(p.embedding, reference.embedding)
    assert _knn_accuracy(p.embedding, y) > 0.9
    off = project(x, "tsne", perplexity=10, pca_dims=None)
    assert off.params["pca_dims"] is None
    assert not np.array_equal(off.embedding, p.embedding)


def test_pca_dims_takes_the_chunked_path_for_large_inputs(monkeypatch):
    from featlib.analysis import projection as project_module

    calls = []
    chunked = project_module._pca_chunked
    monkeypatch.setattr(
        project_module, "_pca_chunked", lambda *a: calls.append(a[1]) or chunked(*a)
    )
    x, y = _wide_blobs()
    p = project(x, "tsne", perplexity=10, pca_dims=10, max_dense_size=1000)
    assert calls == [10] and p.params["pca_dims"] == 10
    assert _knn_accuracy(p.embedding, y) > 0.9


def test_tsne_is_seeded():
    x, _ = _wide_blobs(per_class=20)
    a, b = (project(x, "tsne", perplexity=10, random_state=3) for _ in range(2))
    np.testing.assert_array_equal(a.embedding, b.embedding)


def _recorder():
    calls = []
    return calls, lambda done, total, stage: calls.append((done, total, stage))


def _check_progress(calls):
    done = [c[0] for c in calls]
    assert done == sorted(done) and done[0] == 0
    assert len({c[1] for c in calls}) == 1  # one total throughout
    assert calls[-1] == (calls[-1][1], calls[-1][1], "done")
    return [c[2] for c in calls]


def test_tsne_progress_counts_every_step_and_changes_nothing():
    x, _ = _wide_blobs()
    calls, progress = _recorder()
    p = project(x, "tsne", perplexity=10, pca_dims=10, progress=progress)
    stages = _check_progress(calls)
    assert calls[-1][1] == 1 + 1 + 250 + 500  # PCA, neighbours, openTSNE's two phases
    assert stages[:3] == ["start", "pca", "neighbours"]
    assert stages.count("exaggeration") == 250 // 25 and stages.count("optimisation") == 20
    quiet = project(x, "tsne", perplexity=10, pca_dims=10)
    np.testing.assert_array_equal(p.embedding, quiet.embedding)


def test_pca_progress():
    calls, progress = _recorder()
    project(_low_rank(), "pca", progress=progress)
    assert calls == [(0, 1, "start"), (1, 1, "done")]


def test_tsne_uses_fft_above_10000_points_in_2d(monkeypatch):
    from featlib.analysis import projection as project_module

    monkeypatch.setattr(project_module, "_FFT_ABOVE", 50)  # 90 points count as many
    x, _ = _blobs()
    assert project(x, "tsne", 2, perplexity=10).params["negative_gradient_method"] == "fft"
    assert project(x, "tsne", 3, perplexity=10).params["negative_gradient_method"] == "bh"


@pytest.mark.slow
def test_umap_progress_reports_the_neighbour_graph(monkeypatch):
    from featlib.analysis import projection as project_module

    x, y = _wide_blobs()
    calls, progress = _recorder()
    small = project(x, "umap", n_neighbors=10, pca_dims=10, progress=progress)
    assert _check_progress(calls) == ["start", "pca", "done"]  # graph built inside the fit
    # From 4,096 points on (here from 50) the graph is built first, through precomputed_knn.
    monkeypatch.setattr(project_module, "_UMAP_EXACT_BELOW", 50)
    calls.clear()
    large = project(x, "umap", n_neighbors=10, pca_dims=10, progress=progress)
    assert _check_progress(calls) == ["start", "pca", "neighbours", "done"]
    assert calls[-1][1] == 3
    for p in (small, large):
        assert p.params["pca_dims"] == 10 and _knn_accuracy(p.embedding, y) > 0.9


@pytest.mark.slow
def test_umap_separates_blobs_without_tensorflow():
    had_tensorflow = "tensorflow" in sys.modules
    x, y = _blobs()
    for n_components in (2, 3):
        p = project(x, "umap", n_components, n_neighbors=10)
        assert p.embedding.shape == (90, n_components)
        assert _knn_accuracy(p.embedding, y) > 0.9
        assert p.quality["trustworthiness"] > 0.9
    small = project(x[:4], "umap", 3)
    assert small.params["n_neighbors"] == 3 and small.params["init"] == "random"
    assert np.isfinite(small.embedding).all()
    if not had_tensorflow:
        assert "tensorflow" not in sys.modules


def test_warm_up_compiles_both_of_umaps_neighbour_paths(monkeypatch):
    from featlib.analysis import projection as project_module

    sizes = []
    monkeypatch.setattr(project_module, "_umap", lambda x, *args: sizes.append(len(x)))
    warm_up_umap()
    # umap-learn finds exact neighbours below 4,096 points and uses NN-descent above.
    assert min(sizes) < 4_096 < max(sizes)


def test_modules_do_not_import_tensorflow():
    code = (
        "import sys, featlib\n"
        "before = 'tensorflow' in sys.modules\n"
        "import featlib.analysis.projection, featlib.analysis.neighbors, featlib.analysis.checks\n"
        "featlib.analysis.projection._umap_class()\n"
        "print(before or 'tensorflow' not in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


@pytest.mark.parametrize("reflect", [False, True])
def test_procrustes_recovers_a_known_transform(reflect):
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(40, 3))
    rotation = Rotation.from_euler("xyz", [30, -50, 120], degrees=True).as_matrix()
    if reflect:
        rotation[:, 0] *= -1
    moving = 2.5 * ref @ rotation + np.array([4.0, -1.0, 7.0])
    aligned = procrustes_align(ref, moving)
    assert aligned.dtype == np.float32 and aligned.shape == ref.shape
    np.testing.assert_allclose(aligned, ref, atol=1e-5)
    unscaled = procrustes_align(ref, moving, scale=False)
    np.testing.assert_allclose(unscaled - unscaled.mean(0), 2.5 * (ref - ref.mean(0)), atol=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "lda"}, "method must be one of .* Received: method='lda'"),
        ({"n_components": 1}, "n_components must be 2 or 3"),
        ({"n_components": True}, "n_components must be 2 or 3"),
        ({"features": np.ones((2, 4))}, "at least 3 samples"),
        ({"features": np.ones(4)}, "2-D"),
        ({"features": np.full((5, 4), np.nan)}, "NaN or infinite"),
        ({"features": np.ones((5, 2)), "n_components": 3}, "at least 3 features"),
        ({"perplexity": 0}, "perplexity must be a positive number"),
        ({"perplexity": float("nan")}, "perplexity must be a positive number"),
        ({"min_dist": -0.1}, "min_dist"),
        ({"n_neighbors": 1}, "at least 2"),
        ({"n_neighbors": 5.5}, "must be an integer"),
        ({"pca_dims": 1}, "pca_dims must be None or an integer of at least n_components=2"),
        ({"pca_dims": 2.0}, "Received: pca_dims=2.0"),
        ({"pca_dims": True}, "Received: pca_dims=True"),
        ({"progress": "bar"}, "progress must be a callable"),
    ],
)
def test_bad_inputs_raise(kwargs, match):
    kwargs = {"features": _blobs()[0], **kwargs}
    with pytest.raises(FeatlibError, match=match):
        project(**kwargs)


@pytest.mark.parametrize(
    ("reference", "moving"),
    [(np.ones((4, 2)), np.ones((4, 3))), (np.ones(4), np.ones(4)), (np.ones((3, 2)), None)],
)
def test_procrustes_bad_inputs_raise(reference, moving):
    moving = np.full((3, 2), np.inf) if moving is None else moving
    with pytest.raises(FeatlibError):
        procrustes_align(reference, moving)
