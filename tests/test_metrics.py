"""Behaviour of the pure metric functions against closed forms (no networks involved)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fewgan.metrics import (
    PRDC,
    bootstrap_ci,
    bootstrap_fd_ci,
    bootstrap_kid_ci,
    closest_pairs,
    fd_from_features,
    feature_stats,
    frechet_distance,
    inception_score,
    kernel_matrices,
    kid_from_features,
    kid_from_kernels,
    memorisation_report,
    mmd2_unbiased,
    prdc,
)
from fewgan.metrics.fd import fd_low_rank, fd_low_rank_weighted


def _random_orthogonal(d: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return q * np.sign(np.diag(r))


def _random_spd(d: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def _trace_sqrt_product(s1: np.ndarray, s2: np.ndarray) -> float:
    """tr((S1 S2)^1/2) = tr((S1^1/2 S2 S1^1/2)^1/2), via symmetric eigendecompositions only."""
    w, v = np.linalg.eigh(s1)
    r1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = r1 @ s2 @ r1
    return float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum())


# ----------------------------------------------------------------------------- FD


def test_fd_diagonal_gaussians_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)  # = 7.25 + 4 + 1
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, abs=1e-10)
    assert expected == pytest.approx(12.25)


def test_fd_commuting_nondiagonal_closed_form():
    rng = np.random.default_rng(0)
    d = 6
    q = _random_orthogonal(d, rng)
    a, b = rng.uniform(0.1, 3.0, d), rng.uniform(0.1, 3.0, d)
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    assert np.abs(s1 - np.diag(np.diag(s1))).max() > 0.1  # really non-diagonal
    assert np.allclose(s1 @ s2, s2 @ s1)  # and commuting
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    # tr(S1 + S2 - 2 (S1 S2)^1/2) = sum (sqrt(a) - sqrt(b))^2 when S1, S2 share eigenvectors
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_fd_general_covariances_match_symmetric_formula_and_torchmetrics():
    rng = np.random.default_rng(1)
    d = 10
    s1, s2 = _random_spd(d, rng), _random_spd(d, rng)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * _trace_sqrt_product(s1, s2)
    ours = frechet_distance(mu1, s1, mu2, s2)
    assert ours == pytest.approx(expected, rel=1e-9)

    tm_fid = pytest.importorskip("torchmetrics.image.fid")
    compute = getattr(tm_fid, "_compute_fid", None)
    if compute is None:
        pytest.skip("torchmetrics has no _compute_fid helper in this version")
    t = lambda x: torch.as_tensor(x, dtype=torch.float64)  # noqa: E731
    assert float(compute(t(mu1), t(s1), t(mu2), t(s2))) == pytest.approx(ours, rel=1e-8)


def test_fd_of_identical_gaussians_is_zero():
    rng = np.random.default_rng(2)
    d = 32
    s = _random_spd(d, rng)
    mu = rng.normal(size=d)
    assert abs(frechet_distance(mu, s, mu, s)) < 1e-6
    feats = rng.normal(size=(200, 16))
    assert abs(fd_from_features(feats, feats)) < 1e-6
    assert abs(fd_from_features(torch.from_numpy(feats).float(), torch.from_numpy(feats).float())) < 1e-6


def test_fd_samples_of_shifted_unit_gaussians_approx_squared_shift():
    rng = np.random.default_rng(3)
    d, n = 4, 20_000
    m = np.array([1.0, -0.5, 0.5, 2.0])  # ||m||^2 = 5.5
    x = rng.normal(size=(n, d))
    y = rng.normal(size=(n, d)) + m
    assert fd_from_features(x, y) == pytest.approx(float(m @ m), rel=0.02)


def test_fd_singular_covariance_uses_eps_fallback_and_stays_finite():
    rng = np.random.default_rng(4)
    d = 20
    x, y = rng.normal(size=(5, d)), rng.normal(size=(5, d))  # N < D: rank-deficient covariances
    mu1, s1 = feature_stats(x)
    mu2, s2 = feature_stats(y)
    assert np.linalg.matrix_rank(s1) < d
    val = frechet_distance(mu1, s1, mu2, s2)
    assert np.isfinite(val)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * _trace_sqrt_product(s1, s2)
    assert val == pytest.approx(expected, rel=1e-3)
    z = np.zeros((3, 3))  # degenerate point masses: FD = ||mu1 - mu2||^2
    assert frechet_distance(np.zeros(3), z, np.ones(3), z) == pytest.approx(3.0, abs=1e-5)


def test_fd_eps_offset_fallback_when_sqrtm_fails(monkeypatch):
    from fewgan.metrics import fd as fd_mod

    real_sqrtm = fd_mod.linalg.sqrtm
    seen = []

    def flaky_sqrtm(a):
        seen.append(a.copy())
        if len(seen) == 1:  # first attempt "fails" like a singular product can
            return np.full_like(a, np.nan)
        return real_sqrtm(a)

    monkeypatch.setattr(fd_mod.linalg, "sqrtm", flaky_sqrtm)
    s1, s2 = np.diag([1.0, 4.0]), np.diag([9.0, 1.0])
    val = frechet_distance(np.zeros(2), s1, np.zeros(2), s2, eps=1e-6)
    assert len(seen) == 2
    np.testing.assert_allclose(seen[1], (s1 + 1e-6 * np.eye(2)) @ (s2 + 1e-6 * np.eye(2)))
    assert val == pytest.approx(4.0 + 1.0, abs=1e-5)  # (1-3)^2 + (2-1)^2


def test_fd_large_imaginary_component_raises():
    with pytest.raises(ValueError, match="imaginary"):
        frechet_distance(np.zeros(2), np.diag([-1.0, 1.0]), np.zeros(2), np.eye(2))


def test_feature_stats_and_shape_errors():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    mu, sigma = feature_stats(x)
    assert mu.dtype == np.float64 and sigma.shape == (3, 3)
    np.testing.assert_allclose(sigma, np.cov(x.astype(np.float64), rowvar=False))
    with pytest.raises(ValueError):
        feature_stats(x[:1])
    with pytest.raises(ValueError):
        fd_from_features(x, x[:, :2])
    with pytest.raises(ValueError):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


# ----------------------------------------------------------------------------- KID


def test_mmd2_unbiased_matches_torchmetrics_and_is_symmetric():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(64, 8)), rng.normal(size=(64, 8)) + 0.3
    ours = mmd2_unbiased(x, y)
    assert ours == pytest.approx(mmd2_unbiased(y, x), rel=1e-12)
    tm_kid = pytest.importorskip("torchmetrics.image.kid")
    poly_mmd = getattr(tm_kid, "poly_mmd", None)
    if poly_mmd is None:
        pytest.skip("torchmetrics has no poly_mmd helper in this version")
    ref = float(poly_mmd(torch.from_numpy(x), torch.from_numpy(y)))
    assert ours == pytest.approx(ref, rel=1e-10)


def test_mmd2_unbiased_unequal_sizes_brute_force():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(5, 3))
    k = lambda a, b: (a @ b / 3 + 1.0) ** 3  # noqa: E731
    xx = np.mean([k(x[i], x[j]) for i in range(7) for j in range(7) if i != j])
    yy = np.mean([k(y[i], y[j]) for i in range(5) for j in range(5) if i != j])
    xy = np.mean([k(x[i], y[j]) for i in range(7) for j in range(5)])
    assert mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_kid_same_distribution_near_zero_shifted_clearly_positive():
    rng = np.random.default_rng(7)
    d, n = 16, 1000
    real = rng.normal(size=(n, d))
    same = rng.normal(size=(n, d))
    shifted = rng.normal(size=(n, d)) + 0.5
    kid_same, std_same = kid_from_features(real, same, n_subsets=20, subset_size=500, seed=0)
    kid_shift, std_shift = kid_from_features(real, shifted, n_subsets=20, subset_size=500, seed=0)
    assert kid_shift > 0.1
    assert kid_shift > 10 * std_shift
    assert abs(kid_same) < 0.02 * kid_shift
    assert std_same >= 0.0


def test_kid_is_seeded_and_accepts_generator():
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(300, 8)), rng.normal(size=(300, 8)) + 0.2
    r1 = kid_from_features(a, b, n_subsets=5, subset_size=100, seed=3)
    r2 = kid_from_features(a, b, n_subsets=5, subset_size=100, seed=3)
    r3 = kid_from_features(a, b, n_subsets=5, subset_size=100, generator=torch.Generator().manual_seed(3))
    r4 = kid_from_features(a, b, n_subsets=5, subset_size=100, seed=4)
    assert r1 == r2 == r3
    assert r1 != r4


def test_kid_subset_size_error_message():
    real, fake = np.zeros((1000, 4)), np.zeros((500, 4))
    with pytest.raises(ValueError, match=r"KID subset_size=1000 exceeds the 500 generated samples; lower it"):
        kid_from_features(real, fake, subset_size=1000)
    with pytest.raises(ValueError, match=r"KID subset_size=600 exceeds the 400 real samples; lower it"):
        kid_from_features(np.zeros((400, 4)), np.zeros((700, 4)), subset_size=600)


# ----------------------------------------------------------------------------- IS


def test_is_uniform_predictions_is_one():
    probs = torch.full((100, 10), 0.1)
    mean, std = inception_score(probs, splits=10)
    assert mean == pytest.approx(1.0, abs=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("k", [2, 7, 10])
def test_is_one_hot_evenly_spread_is_num_classes(k):
    n = k * 10 * 3  # every contiguous split holds each class 3 times
    probs = torch.nn.functional.one_hot(torch.arange(n) % k, k).double()
    mean, std = inception_score(probs, splits=10)
    assert mean == pytest.approx(k, rel=1e-12)
    assert std == pytest.approx(0.0, abs=1e-9)


def test_is_independent_of_batch_order():
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(3 * torch.randn(2000, 20, generator=g), dim=1)
    perm = torch.randperm(2000, generator=g)
    # one split: exactly permutation invariant
    assert inception_score(probs, splits=1)[0] == pytest.approx(inception_score(probs[perm], splits=1)[0], rel=1e-12)
    # several splits: the partition changes, the score does not beyond split noise
    m1, s1 = inception_score(probs, splits=10)
    m2, s2 = inception_score(probs[perm], splits=10)
    assert m1 == pytest.approx(m2, abs=2 * max(s1, s2))
    # computing from batches concatenated in another order gives the same
    batches = list(torch.split(probs, 100))
    assert inception_score(torch.cat(batches[::-1]), splits=1)[0] == pytest.approx(inception_score(probs, splits=1)[0], rel=1e-12)


def test_is_errors():
    with pytest.raises(ValueError, match="splits"):
        inception_score(torch.full((5, 3), 1 / 3), splits=10)
    with pytest.raises(ValueError, match="softmax"):
        inception_score(torch.randn(20, 3), splits=2)


# ----------------------------------------------------------------------------- PRDC


def _prdc_reference(real: np.ndarray, fake: np.ndarray, k: int) -> dict:
    """Direct transcription of the formulas (full distance matrices)."""
    def dist(a, b):
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))

    real_r = np.sort(dist(real, real), axis=1)[:, k]  # index 0 is self
    fake_r = np.sort(dist(fake, fake), axis=1)[:, k]
    d = dist(real, fake)  # (N, M)
    return {
        "precision": (d < real_r[:, None]).any(axis=0).mean(),
        "recall": (d < fake_r[None, :]).any(axis=1).mean(),
        "density": (1.0 / k) * (d < real_r[:, None]).sum(axis=0).mean(),
        "coverage": (d.min(axis=1) < real_r).mean(),
    }


def test_prdc_matches_reference_formulas_and_is_chunk_independent():
    rng = np.random.default_rng(9)
    real, fake = rng.normal(size=(120, 5)), rng.normal(size=(90, 5)) * 1.3 + 0.3
    ref = _prdc_reference(real, fake, k=5)
    for chunk in (7, 1024):
        r = prdc(real, fake, k=5, chunk_size=chunk)
        assert isinstance(r, PRDC)
        for key, val in ref.items():
            assert getattr(r, key) == pytest.approx(val, abs=1e-12), key


def test_prdc_identical_sets():
    x = np.random.default_rng(10).normal(size=(300, 8))
    r = prdc(x, x.copy(), k=5)
    assert r.precision == 1.0 and r.recall == 1.0 and r.coverage == 1.0
    assert r.density == pytest.approx(1.0, abs=0.02)  # k-th neighbour sits on the ball's boundary


def test_prdc_far_apart_sets_are_zero():
    rng = np.random.default_rng(11)
    r = prdc(rng.normal(size=(200, 8)), rng.normal(size=(200, 8)) + 100.0, k=5)
    assert r.as_dict() == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0, "k": 5}


def test_prdc_same_distribution_and_mode_dropping():
    rng = np.random.default_rng(12)
    d, n = 8, 1000
    r = prdc(rng.normal(size=(n, d)), rng.normal(size=(n, d)), k=5)
    assert r.precision > 0.8 and r.recall > 0.8 and r.coverage > 0.85
    assert 0.8 < r.density < 1.25
    # real = two far clusters; fake covers only one: fidelity kept, diversity halved
    centre = np.zeros(d)
    centre[0] = 50.0
    real = np.concatenate([rng.normal(size=(n // 2, d)), rng.normal(size=(n // 2, d)) + centre])
    fake = rng.normal(size=(n, d))
    r = prdc(real, fake, k=5)
    assert r.precision > 0.8
    assert r.recall == pytest.approx(0.5, abs=0.08)
    assert r.coverage == pytest.approx(0.5, abs=0.08)


def test_prdc_k_too_large():
    with pytest.raises(ValueError, match="k=5"):
        prdc(np.zeros((5, 2)), np.zeros((10, 2)), k=5)


# ----------------------------------------------------------------------------- memorisation


def test_memorisation_copies_are_detected_with_indices():
    rng = np.random.default_rng(13)
    train = rng.normal(size=(200, 64))
    idx = rng.integers(0, 200, size=50)
    rep = memorisation_report(train[idx], train)
    assert rep.near_copy_fraction == 1.0
    assert torch.equal(rep.nn_index, torch.as_tensor(idx))
    assert float(rep.nn_distance.max()) < 1e-6
    assert float(rep.train_nn_distance.min()) > 1.0  # self excluded: distinct points are far apart
    assert rep.near_copy_mask.all()
    pairs = closest_pairs(rep, k=5)
    assert len(pairs) == 5
    for g, t, dist in pairs:
        assert t == idx[g] and dist < 1e-6


def test_memorisation_fresh_sample_has_no_near_copies():
    rng = np.random.default_rng(14)
    train, fresh = rng.normal(size=(500, 64)), rng.normal(size=(300, 64))
    rep = memorisation_report(fresh, train)
    assert rep.near_copy_fraction == pytest.approx(0.0, abs=0.01)
    assert 0.8 < float(rep.ratio.median()) < 1.1  # new samples sit at the usual training spacing
    s = rep.summary()
    assert s["n_generated"] == 300 and s["n_train"] == 500 and s["threshold"] == 0.5


def test_memorisation_mixed_and_closest_pairs_order():
    rng = np.random.default_rng(15)
    train = rng.normal(size=(300, 32))
    copies = train[[3, 10, 42]] + 0.01 * rng.normal(size=(3, 32))  # slightly perturbed copies
    gen = np.concatenate([rng.normal(size=(97, 32)), copies])
    rep = memorisation_report(gen, train)
    assert rep.near_copy_fraction == pytest.approx(0.03)
    pairs = closest_pairs(rep, k=3)
    assert sorted(p[0] for p in pairs) == [97, 98, 99]
    assert sorted(p[1] for p in pairs) == [3, 10, 42]
    dists = [p[2] for p in pairs]
    assert dists == sorted(dists)
    # exact duplicates inside the training set count as distance 0 (self excluded by index only)
    rep2 = memorisation_report(gen, np.concatenate([train, train[:1]]))
    assert float(rep2.train_nn_distance[0]) < 1e-6


# ----------------------------------------------------------------------------- bootstrap


def test_bootstrap_fd_ci_contains_point_estimate_and_is_seeded():
    rng = np.random.default_rng(16)
    real = rng.normal(size=(400, 8))
    for fake in (rng.normal(size=(400, 8)) + 0.5, rng.normal(size=(400, 8))):
        point = fd_from_features(real, fake)
        lo, hi = bootstrap_fd_ci(real, fake, n_boot=100, level=0.95, seed=0)
        assert lo < point < hi
        assert bootstrap_fd_ci(real, fake, n_boot=100, seed=0) == (lo, hi)
        lo90, hi90 = bootstrap_fd_ci(real, fake, n_boot=100, level=0.90, seed=0)
        assert lo <= lo90 and hi90 <= hi


def test_bootstrap_percentile_fd_shows_resampling_bias():
    """Documented caveat: bootstrap FDs sit above the estimate (duplicates add bias), so for
    similar distributions the plain percentile interval misses the point estimate."""
    rng = np.random.default_rng(17)
    real, fake = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    point = fd_from_features(real, fake)
    lo, _ = bootstrap_fd_ci(real, fake, n_boot=100, seed=0, method="percentile")
    assert lo > point
    lo_r, hi_r = bootstrap_fd_ci(real, fake, n_boot=100, seed=0)  # recentered default
    assert lo_r < point < hi_r


def test_bootstrap_kid_ci_contains_point_estimate():
    rng = np.random.default_rng(18)
    real, fake = rng.normal(size=(300, 8)), rng.normal(size=(300, 8)) + 0.5
    point = kid_from_features(real, fake, n_subsets=10, subset_size=150, seed=0)[0]
    lo, hi = bootstrap_kid_ci(real, fake, n_boot=30, seed=0, n_subsets=10, subset_size=150)
    assert lo < point < hi
    assert lo > 0


def test_bootstrap_generic_mean_difference():
    rng = np.random.default_rng(19)
    a, b = rng.normal(size=(500, 1)), rng.normal(size=(500, 1)) + 1.0
    stat = lambda x, y: float(y.mean() - x.mean())  # noqa: E731
    for method in ("recentered", "percentile", "basic"):
        lo, hi = bootstrap_ci(stat, a, b, n_boot=200, seed=1, method=method)
        assert lo < stat(a, b) < hi
        assert 0.05 < hi - lo < 0.5  # ~ 2 * 1.96 * sqrt(2/500) = 0.35
    with pytest.raises(ValueError):
        bootstrap_ci(stat, a, b, method="bca")


def test_low_rank_fd_equals_sqrtm_fd():
    """The nuclear-norm route (few samples, many dims) equals the sqrtm formula."""
    import numpy as np

    from fewgan.metrics.fd import fd_low_rank, feature_stats, frechet_distance

    r = np.random.default_rng(3)
    a = r.normal(size=(60, 80))
    b = r.normal(size=(70, 80)) * 1.3 + 0.2
    m1, s1 = feature_stats(a)
    m2, s2 = feature_stats(b)
    assert fd_low_rank(a, b) == pytest.approx(frechet_distance(m1, s1, m2, s2), rel=1e-5)
    assert abs(fd_low_rank(a, a)) < 1e-8


# ----------------------------------------------------------------------------- fast paths equal the plain recipes


def _few_many(seed: int, n_a: int = 60, n_b: int = 50, d: int = 80):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_a, d)), rng.normal(0.3, 1.2, size=(n_b, d))


def test_kid_from_kernels_equals_recomputing_the_kernel_per_subset():
    a, b = _few_many(0)
    g = torch.Generator().manual_seed(5)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    ref = []
    for _ in range(7):  # the subset recipe of torch-fidelity, kernel recomputed on every subset
        ia = torch.randperm(len(a), generator=g)[:30]
        ib = torch.randperm(len(b), generator=g)[:30]
        ref.append(mmd2_unbiased(ta[ia], tb[ib]))
    mean, std = kid_from_features(a, b, n_subsets=7, subset_size=30, seed=5)
    assert mean == pytest.approx(np.mean(ref), rel=1e-10, abs=1e-14)
    assert std == pytest.approx(np.std(ref), rel=1e-8, abs=1e-14)


def test_kid_subsets_of_a_resample_index_the_kernels_with_repeats():
    a, b = _few_many(1)
    rows_a, rows_b = torch.tensor([0, 0, 3, 5, 5, 5, 9, 2]), torch.tensor([1, 4, 4, 7, 8, 8])
    kernels = kernel_matrices(a, b)
    fast = kid_from_kernels(*kernels, n_subsets=4, subset_size=5, seed=2, rows_a=rows_a, rows_b=rows_b)
    slow = kid_from_features(a[rows_a.numpy()], b[rows_b.numpy()], n_subsets=4, subset_size=5, seed=2)
    assert fast == pytest.approx(slow, rel=1e-10, abs=1e-14)


def test_fd_low_rank_weighted_equals_fd_of_the_copied_resample():
    a, b = _few_many(2)
    rng = np.random.default_rng(0)
    ia, ib = rng.integers(0, len(a), len(a)), rng.integers(0, len(b), len(b))
    wa, wb = np.bincount(ia, minlength=len(a)), np.bincount(ib, minlength=len(b))
    assert fd_low_rank_weighted(a, wa, b, wb) == pytest.approx(fd_low_rank(a[ia], b[ib]), rel=1e-10)
    assert fd_low_rank_weighted(a, np.ones(len(a)), b, np.ones(len(b))) == pytest.approx(fd_low_rank(a, b), rel=1e-12)
    with pytest.raises(ValueError, match="non-negative counts"):
        fd_low_rank_weighted(a, -np.ones(len(a)), b, np.ones(len(b)))


@pytest.mark.parametrize("method", ["recentered", "percentile", "basic"])
def test_fast_bootstrap_intervals_equal_the_plain_resample_and_recompute(method):
    import itertools

    a, b = _few_many(3)  # fewer samples than dimensions: the low-rank FD route
    fd_fast = bootstrap_fd_ci(a, b, n_boot=20, seed=4, method=method)
    fd_slow = bootstrap_ci(fd_from_features, a, b, n_boot=20, seed=4, method=method)
    assert fd_fast == pytest.approx(fd_slow, rel=1e-9)

    calls = itertools.count(1)  # the plain KID bootstrap: copy each resample, recompute kernels

    def kid_stat(x, y):
        return kid_from_features(x, y, n_subsets=6, subset_size=40, seed=4 * 1_000_003 + next(calls))[0]

    theta = kid_from_features(a, b, n_subsets=6, subset_size=40, seed=4)[0]
    kid_slow = bootstrap_ci(kid_stat, a, b, n_boot=20, seed=4, method=method, theta=theta)
    kid_fast = bootstrap_kid_ci(a, b, n_boot=20, seed=4, n_subsets=6, subset_size=40, method=method)
    assert kid_fast == pytest.approx(kid_slow, rel=1e-9, abs=1e-14)


# ----------------------------------------------------------------------------- sharpness (blur)


def test_laplacian_variance_closed_form_and_blur():
    from fewgan.metrics.sharpness import laplacian_variance, sharpness

    flat = torch.full((2, 3, 8, 8), 77, dtype=torch.uint8)
    assert torch.equal(laplacian_variance(flat), torch.zeros(2, dtype=torch.float64))
    # a grey checkerboard of 0 / 255: every interior Laplacian is ±4 (4 neighbours of the other
    # colour), half of each sign: variance 16
    ij = torch.arange(8)
    board = (((ij[:, None] + ij[None, :]) % 2) * 255).to(torch.uint8).view(1, 1, 8, 8)
    assert laplacian_variance(board).item() == pytest.approx(16.0)
    # RGB uses BT.601 luma: an all-red board has luma 0.299 of the grey one, variance 0.299^2 of it
    red = torch.zeros(1, 3, 8, 8, dtype=torch.uint8)
    red[:, 0] = board[:, 0]
    assert laplacian_variance(red).item() == pytest.approx(16.0 * 0.299 ** 2)
    # blurring lowers it; the ratio against the sharp originals is below 1
    g = torch.Generator().manual_seed(0)
    sharp = torch.randint(0, 256, (16, 3, 16, 16), generator=g, dtype=torch.uint8)
    blurred = torch.nn.functional.avg_pool2d(sharp.float(), 3, stride=1, padding=1).round().to(torch.uint8)
    s = sharpness(blurred, sharp)
    assert s["sharpness_ratio"] < 0.5 and s["sharpness_real"] > s["sharpness"] > 0
    assert sharpness(sharp, sharp)["sharpness_ratio"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="expected uint8 images"):
        laplacian_variance(torch.zeros(2, 8, 8, dtype=torch.uint8))


def test_spectral_bands_closed_form_blur_and_noise():
    from fewgan.metrics.sharpness import band_powers, spectral_bands

    # a grey cosine of k cycles across 32 pixels: its power at radial frequency k/32, i.e. in one
    # band; by Parseval the bands' powers sum to the image's variance times H W
    ij = torch.arange(32, dtype=torch.float64)
    for k, band in ((2, "spec_low"), (6, "spec_mid"), (12, "spec_high")):
        img = (127.5 + 100 * torch.cos(2 * math.pi * k * ij / 32)).round()[None, :].expand(32, 32)
        x = img.to(torch.uint8).view(1, 1, 32, 32)
        p = band_powers(x)
        var = ((x.double() / 255) - (x.double() / 255).mean()).pow(2).sum().item()
        assert sum(p.values()) == pytest.approx(var, rel=1e-9)  # every non-zero frequency is in a band
        assert p[band] > 0.9999 * var  # all but the uint8 rounding's share
    # the same images score 1 in every band; a 3x3 box blur of white noise keeps the low band
    # nearly whole and removes more the higher the band; white noise on smooth images raises high
    g = torch.Generator().manual_seed(0)
    white = torch.randint(0, 256, (16, 3, 32, 32), generator=g, dtype=torch.uint8)
    assert all(v == pytest.approx(1.0) for v in spectral_bands(white, white).values())
    blurred = torch.nn.functional.avg_pool2d(white.float(), 3, stride=1, padding=1, count_include_pad=False)
    s = spectral_bands(blurred.round().to(torch.uint8), white)
    assert s["spec_high"] < s["spec_mid"] < s["spec_low"] < 1 and s["spec_low"] > 0.5
    base = torch.nn.functional.interpolate(torch.rand(16, 3, 8, 8, generator=g), size=32, mode="bilinear")
    real = (base * 255).round().to(torch.uint8)
    noisy = (real.float() + 20 * torch.randn(real.shape, generator=g)).clamp(0, 255).round().to(torch.uint8)
    assert spectral_bands(noisy, real)["spec_high"] > 2
    with pytest.raises(ValueError, match="expected uint8 images"):
        band_powers(torch.zeros(2, 8, 8, dtype=torch.uint8))


# ---- diversity: Vendi score and feature spread -----------------------------------------------

def test_vendi_score_closed_forms():
    from fewgan.metrics import vendi_score
    n = 8
    assert vendi_score(torch.ones(n, 5)) == pytest.approx(1.0, abs=1e-9)  # all identical: one sample
    assert vendi_score(torch.eye(n)) == pytest.approx(float(n), rel=1e-9)  # mutually orthogonal: n
    # 3 equal-sized clusters of identical, mutually orthogonal points: 3 effective samples
    x = torch.eye(3).repeat_interleave(4, dim=0)
    assert vendi_score(x) == pytest.approx(3.0, rel=1e-9)
    # unequal clusters (shares p): exp(entropy of p)
    x = torch.eye(2)[[0, 0, 0, 1]]
    p = np.array([0.75, 0.25])
    assert vendi_score(x) == pytest.approx(math.exp(-(p * np.log(p)).sum()), rel=1e-9)


def test_vendi_score_matches_definition_and_ignores_scale():
    from fewgan.metrics import vendi_score
    g = torch.Generator().manual_seed(0)
    for n, d in [(30, 7), (6, 20)]:  # both the d×d and the n×n route
        x = torch.rand(n, d, generator=g, dtype=torch.float64) + 0.1
        u = x / x.norm(dim=1, keepdim=True)
        lam = np.linalg.eigvalsh((u @ u.T).numpy() / n)
        lam = lam[lam > 1e-12]
        assert vendi_score(x) == pytest.approx(math.exp(-(lam * np.log(lam)).sum()), rel=1e-8)
        assert vendi_score(3.0 * x) == pytest.approx(vendi_score(x), rel=1e-10)
    with pytest.raises(ValueError, match="all zeros"):
        vendi_score(torch.zeros(3, 4))


def test_feature_spread_closed_forms():
    from fewgan.metrics import feature_spread
    g = torch.Generator().manual_seed(1)
    real = torch.randn(50, 6, generator=g)
    assert feature_spread(real, real) == pytest.approx(1.0)
    assert feature_spread(real, 2 * real + 5) == pytest.approx(4.0)  # variance scales with the square
    assert feature_spread(real, real[:1].repeat(10, 1)) == 0.0  # one image repeated
    with pytest.raises(ValueError, match="dims differ"):
        feature_spread(real, torch.zeros(4, 3))
