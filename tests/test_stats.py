"""vaebench.stats: Holm, bootstrap p-values, seed intervals, hierarchical paired bootstrap, FID∞.

Pure numpy/scipy and fixed seeds: every test is deterministic and takes well under a second.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg

from vaebench.stats import (
    ONE_SEED_NOTE,
    SEED_INTERVAL_NOTE,
    bootstrap_p_two_sided,
    default_sizes,
    fid_curve,
    fid_infinity,
    frechet_distance,
    hierarchical_paired_boot,
    holm,
    holm_note,
    min_n_boot,
    seed_interval,
)
from vaebench.tables import boot_means

# --- Holm ------------------------------------------------------------------------------


def test_holm_hand_computed():
    # m = 4. Sorted: 0.005, 0.01, 0.03, 0.04, multiplied by m - i + 1 = 4, 3, 2, 1:
    #   0.005 * 4 = 0.02, 0.01 * 3 = 0.03, 0.03 * 2 = 0.06, 0.04 * 1 = 0.04.
    # Running maximum (step-down monotonicity): 0.02, 0.03, 0.06, max(0.06, 0.04) = 0.06.
    # Back in input order [0.01, 0.04, 0.03, 0.005] -> [0.03, 0.06, 0.06, 0.02].
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])


def test_holm_nan_stays_nan_and_is_not_counted():
    # Same four p-values plus two NaN: m is still 4, so the values are those above.
    out = holm([0.01, np.nan, 0.04, 0.03, np.nan, 0.005])
    np.testing.assert_allclose(out, [0.03, np.nan, 0.06, 0.06, np.nan, 0.02])
    assert np.isnan(holm([np.nan, np.nan])).all()
    assert holm([]).shape == (0,)


def test_holm_caps_at_one_and_keeps_shape():
    # [0.5, 0.6]: 0.5 * 2 = 1.0, 0.6 * 1 = 0.6 -> running max 1.0 -> [1, 1].
    np.testing.assert_allclose(holm([0.5, 0.6]), [1.0, 1.0])
    # [0.9, 0.8, 0.7]: 0.7 * 3 = 2.1 -> capped at 1; then everything after is 1.
    np.testing.assert_allclose(holm([0.9, 0.8, 0.7]), [1.0, 1.0, 1.0])
    assert holm(np.full((3, 2), 0.01)).shape == (3, 2)
    with pytest.raises(ValueError):
        holm([0.1, 1.5])


def test_holm_matches_sequential_procedure():
    """adjusted <= alpha rejects exactly what Holm's sequential test rejects at alpha, and the
    adjusted values keep the raw order and are never below the raw p."""
    rng = np.random.default_rng(7)
    for _ in range(50):
        p = rng.uniform(0, 0.2, size=rng.integers(1, 30)) ** 2
        adj = holm(p)
        assert np.all(adj >= p - 1e-15) and np.all(adj <= 1)
        order = np.argsort(p, kind="stable")
        assert np.all(np.diff(adj[order]) >= -1e-15)
        for alpha in (0.01, 0.05):
            rejected = np.zeros(len(p), bool)
            for i, j in enumerate(order):  # reject while p_(i) <= alpha / (m - i)
                if p[j] > alpha / (len(p) - i):
                    break
                rejected[j] = True
            np.testing.assert_array_equal(adj <= alpha, rejected)


def test_min_n_boot_is_the_resolution_floor():
    # 147 comparisons: the smallest bootstrap p is 2/(B+1); Holm multiplies it by 147.
    # B = 5880: 294 / 5881 = 0.04999 < 0.05 (B = 5879 gives exactly 0.05, a rounding-level
    # tie, so the test uses B = 5800: 294 / 5801 = 0.0507 > 0.05).
    assert min_n_boot(147) == 5880 and min_n_boot(1) == 40
    for b, ok in ((5880, True), (5800, False)):
        floor = bootstrap_p_two_sided(np.ones(b))  # every replicate > 0: the floor 2/(B+1)
        assert bool(holm(np.full(147, floor)).min() < 0.05) is ok
    assert "147 comparisons" in holm_note(147)


# --- bootstrap p-value -------------------------------------------------------------------


def test_bootstrap_p_hand_computed():
    # B = 4, d* = [-1, 1, 2, 3]: #(d* <= 0) = 1, #(d* >= 0) = 3.
    # p = 2 * (min(1, 3) + 1) / (4 + 1) = 2 * 2 / 5 = 0.8.
    assert bootstrap_p_two_sided(np.array([-1.0, 1, 2, 3])) == pytest.approx(0.8)
    # All 999 replicates > 0: p = 2 * (0 + 1) / 1000 = 0.002, never 0.
    assert bootstrap_p_two_sided(np.linspace(1, 2, 999)) == pytest.approx(0.002)
    # Identical runs (every d* = 0): both counts are B, p = min(1, 2) = 1.
    assert bootstrap_p_two_sided(np.zeros(100)) == 1.0
    # H0 at another value: d* = [-1, 1, 2, 3] against 2.5: #(<=) = 3, #(>=) = 1 -> 0.8.
    assert bootstrap_p_two_sided(np.array([-1.0, 1, 2, 3]), null=2.5) == pytest.approx(0.8)


def test_bootstrap_p_columns_and_nan():
    boot = np.stack([np.linspace(1, 2, 99), np.linspace(-1, 1, 99), np.full(99, np.nan)], 1)
    p = bootstrap_p_two_sided(boot)
    assert p.shape == (3,)
    # Column 0: 2 * 1 / 100 = 0.02. Column 1: 50 of 99 are <= 0 and 50 >= 0 (0 is one of
    # them): 2 * 51 / 100 = 1.02 -> capped at 1. Column 2: NaN.
    np.testing.assert_allclose(p, [0.02, 1.0, np.nan])


def test_bootstrap_p_is_calibrated_under_h0():
    """400 data sets of 60 values with true mean 0: about 5% get p < 0.05."""
    x = np.random.default_rng(11).standard_normal((60, 400))
    p = bootstrap_p_two_sided(boot_means(x, 999, np.random.default_rng(12)))
    assert 0.02 <= np.mean(p < 0.05) <= 0.10
    # And it has power: a true shift of 3 standard errors is detected most of the time.
    shifted = bootstrap_p_two_sided(boot_means(x + 3 / np.sqrt(60), 999, np.random.default_rng(12)))
    assert np.mean(shifted < 0.05) > 0.75


# --- seed interval ---------------------------------------------------------------------


def test_seed_interval_hand_computed():
    # [1, 2, 3]: mean 2, sd (n-1) = 1, t(2, 0.975) = 4.302653, half = 4.302653 / sqrt(3)
    # = 2.484138 -> (2, -0.484138, 4.484138).
    mean, lo, hi = seed_interval([1.0, 2.0, 3.0])
    assert (mean, lo, hi) == pytest.approx((2.0, -0.484138, 4.484138), abs=1e-6)
    # NaN is left out: the same three seeds plus a NaN give the same interval.
    assert seed_interval([1.0, np.nan, 2.0, 3.0]) == pytest.approx((mean, lo, hi))


def test_seed_interval_one_seed_is_not_fabricated():
    mean, lo, hi = seed_interval([12.5])
    assert mean == 12.5 and np.isnan(lo) and np.isnan(hi)
    assert all(np.isnan(seed_interval([np.nan])))
    assert seed_interval([3.0, 3.0]) == (3.0, 3.0, 3.0)


def test_seed_interval_coverage():
    """With 3 normal seeds the t interval covers the true mean ~95% of the time."""
    draws = np.random.default_rng(5).normal(10.0, 2.0, size=(2000, 3))
    covered = [lo <= 10.0 <= hi for _, lo, hi in map(seed_interval, draws)]
    assert 0.93 <= np.mean(covered) <= 0.97


def test_notes_are_one_line():
    for note in (SEED_INTERVAL_NOTE, ONE_SEED_NOTE, holm_note(12)):
        assert "\n" not in note and len(note) < 200


# --- hierarchical paired bootstrap -----------------------------------------------------


def test_hierarchical_one_seed_is_the_paired_image_bootstrap():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(1, 50)), rng.normal(size=(1, 50))
    got = hierarchical_paired_boot(a, b, 300, np.random.default_rng(1))
    want = boot_means((a - b).T, 300, np.random.default_rng(1))[:, 0]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_hierarchical_keeps_images_paired():
    """Image difficulty is shared by every seed of both models and cancels exactly: scaling
    it by 1000 leaves every replicate unchanged."""
    rng = np.random.default_rng(2)
    difficulty = rng.normal(size=40)
    noise_a, noise_b = rng.normal(size=(3, 40)), rng.normal(size=(2, 40))
    reps = [
        hierarchical_paired_boot(
            s * difficulty + 0.5 + noise_a, s * difficulty + noise_b, 500, np.random.default_rng(3)
        )
        for s in (1.0, 1000.0)
    ]
    np.testing.assert_allclose(reps[0], reps[1], atol=1e-8)
    assert np.mean(reps[0]) == pytest.approx(0.5 + noise_a.mean() - noise_b.mean(), abs=0.05)


def test_hierarchical_includes_seed_variance():
    """Seed offsets and no image noise: the replicates' variance is the seed bootstrap's,
    pop_var(offsets) / S_a (B is independent of A; S_a = 3 != S_b = 1 is allowed)."""
    offsets = np.array([0.0, 1.0, 5.0])
    a = np.repeat(offsets[:, None], 30, axis=1)
    b = np.zeros((1, 30))
    reps = hierarchical_paired_boot(a, b, 8000, np.random.default_rng(4))
    assert np.var(reps) == pytest.approx(np.var(offsets) / 3, rel=0.05)
    assert np.mean(reps) == pytest.approx(offsets.mean(), rel=0.02)


def test_hierarchical_metric_axis_shares_resamples():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(2, 25, 1)), rng.normal(size=(3, 25, 1))
    reps = hierarchical_paired_boot(np.tile(a, 3), np.tile(b, 3), 200, np.random.default_rng(8))
    assert reps.shape == (200, 3)
    np.testing.assert_allclose(reps[:, 0], reps[:, 2])  # same data -> same replicates
    with pytest.raises(ValueError):
        hierarchical_paired_boot(np.zeros((2, 25)), np.zeros((2, 24)), 10, rng)


# --- Fréchet distance and FID∞ ---------------------------------------------------------


def test_frechet_matches_sqrtm_and_is_zero_on_itself():
    rng = np.random.default_rng(9)
    f1 = rng.exponential(size=(200, 16))
    f2 = rng.normal(size=(150, 16)) @ rng.normal(size=(16, 16))
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    d = f1.mean(0) - f2.mean(0)
    want = d @ d + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(f1, f2) == pytest.approx(want, rel=1e-9)
    assert abs(frechet_distance(f1, f1)) < 1e-9


def test_fid_infinity_recovers_exact_line():
    sizes = np.array([200, 400, 600, 800, 1000])
    fid_inf, k, rms = fid_infinity(sizes, 3.0 + 500.0 / sizes)
    assert (fid_inf, k) == pytest.approx((3.0, 500.0)) and rms < 1e-10
    wobble = np.array([0.1, -0.1, 0.1, -0.1, 0.1])
    assert fid_infinity(sizes, 3.0 + 500.0 / sizes + wobble)[2] > 0.05
    with pytest.raises(ValueError):
        fid_infinity([500, 1000], [4.0, 3.5])  # two points always fit: no residual to report


def test_default_sizes_and_fid_curve_mechanics():
    np.testing.assert_array_equal(default_sizes(1000), [200, 400, 600, 800, 1000])
    rng = np.random.default_rng(10)
    real, fake = rng.normal(size=(300, 8)), rng.normal(0.2, 1.0, size=(100, 8))
    sizes, fids = fid_curve(real, fake, seed=3)
    assert len(sizes) >= 5 and sizes.min() == 20 and sizes.max() == 100
    assert fids[-1] == pytest.approx(frechet_distance(real, fake))  # largest size = FID@N
    np.testing.assert_array_equal(fid_curve(real, fake, seed=3)[1], fids)  # fixed seed
    seen = []

    def spy(f_real, sub):
        seen.append((len(f_real), len(sub)))
        return frechet_distance(f_real, sub)

    np.testing.assert_allclose(fid_curve(real, fake, seed=3, frechet=spy)[1], fids, rtol=1e-9)
    assert seen == [(300, int(s)) for s in sizes]
    with pytest.raises(ValueError):
        fid_curve(real, fake, sizes=[50, 200])


def test_fid_infinity_beats_fid_at_n_on_gaussians_with_known_distance():
    """Real ~ N(0, diag(a²)), fake ~ N(m, diag(b²)), both rotated by one orthogonal Q (the
    distance is rotation invariant, and the rotation makes the covariances non-diagonal):
    d² = |m|² + Σ (a_i − b_i)² in closed form. D = 64, 20,000 reference features.
    The bounds hold with margin for 60 of 60 other seeds (checked), not just this one."""
    d = 64
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    a = np.linspace(0.5, 1.5, d)
    b, m = 1.1 * a, np.full(d, 0.05)
    true = m @ m + np.sum((a - b) ** 2)  # 0.16 + 0.01 * sum(a²) = 0.855

    real = (rng.standard_normal((20_000, d)) * a) @ q.T
    err = {}
    for n in (500, 4000):
        fake = (rng.standard_normal((n, d)) * b + m) @ q.T
        sizes, fids = fid_curve(real, fake, seed=1)
        fid_inf, k, _ = fid_infinity(sizes, fids)
        err[n] = (abs(fids[-1] - true), abs(fid_inf - true))
        assert k > 0  # FID falls with N

    # N = 500: FID@N is ~3.7x the truth (bias ~1200/N); FID∞ is far closer.
    assert err[500][1] < err[500][0] / 2
    # As N grows both approach the closed form; FID@N's bias shrinks roughly like 1/N.
    assert err[4000][0] < err[500][0] / 4
    assert err[4000][0] < 0.5 and err[4000][1] < 0.25
    assert err[4000][1] < err[4000][0]


def test_stats_imports_no_torch():
    code = "import sys, vaebench.stats; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
