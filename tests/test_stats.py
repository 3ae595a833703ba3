"""vaebench.stats: Holm, seed intervals, the crossed seeds x images intervals and tests, FID∞.

Pure numpy/scipy and fixed seeds: every test is deterministic and takes well under a second.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg
import scipy.stats

from vaebench.stats import (
    CROSSED_NOTE,
    ONE_SEED_NOTE,
    SEED_INTERVAL_NOTE,
    crossed_interval,
    crossed_paired,
    default_sizes,
    fid_curve,
    fid_infinity,
    frechet_distance,
    holm,
    holm_note,
    seed_interval,
    seed_t_weights,
)

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


def test_holm_note_names_the_family():
    assert "147 comparisons" in holm_note(147)


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
    assert "\n" not in CROSSED_NOTE


# --- seeds x images: crossed_interval, crossed_paired, seed_t_weights ------------------
# (their calibration on simulated studies, through the table functions: test_calibration.py)


def test_crossed_interval_hand_computed():
    # Two seeds, three images. Seed means 2 and 4 -> mean 3, v_seed = var([2, 4]) / 2 = 1.
    # Image means over seeds [2, 3, 4] -> v_img = var([2, 3, 4]) / 3 = 1/3.
    # half = sqrt((t_1·1)² + (t_2·sqrt(1/3))²), t_1 = 12.7062, t_2 = 4.3027.
    x = np.array([[1.0, 2, 3], [3, 4, 5]])
    mean, lo, hi = crossed_interval(x)
    t1, t2 = scipy.stats.t.ppf(0.975, 1), scipy.stats.t.ppf(0.975, 2)
    half = np.sqrt(t1**2 + t2**2 / 3)
    np.testing.assert_allclose([mean[0], lo[0], hi[0]], [3, 3 - half, 3 + half])


def test_crossed_interval_one_seed_is_the_t_interval_over_images():
    x = np.random.default_rng(0).normal(size=(1, 40, 2))
    mean, lo, hi = crossed_interval(x)
    for k in range(2):
        want = scipy.stats.t.interval(0.95, 39, x[0, :, k].mean(), scipy.stats.sem(x[0, :, k]))
        np.testing.assert_allclose([lo[k], hi[k]], want)
    np.testing.assert_allclose(mean, x[0].mean(axis=0))


def test_crossed_interval_seed_part_ignores_shared_image_difficulty():
    """Image difficulty shared by the seeds is image variance, not seed variance: scaling it
    widens the interval through the image part only, by the t interval over images."""
    rng = np.random.default_rng(1)
    hard, seeds = rng.normal(size=60), rng.normal(0, 0.1, (3, 1))
    x = seeds + 0 * hard + rng.normal(0, 0.01, (3, 60))
    m0, lo0, _ = crossed_interval(x)
    m1, lo1, _ = crossed_interval(x + 1000 * hard)
    t_img = scipy.stats.t.ppf(0.975, 59) * 1000 * hard.std(ddof=1) / np.sqrt(60)
    assert m0 - lo0 < 1 and (m1 - lo1)[0] == pytest.approx(t_img, rel=1e-3)


def test_crossed_paired_one_seed_each_is_the_paired_t_test():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(1, 50)), rng.normal(0.3, 1, size=(1, 50))
    d, lo, hi, p = crossed_paired(a, b)
    want = scipy.stats.ttest_rel(a[0], b[0])
    assert p[0] == pytest.approx(want.pvalue, rel=1e-9)
    ci = want.confidence_interval(0.95)
    np.testing.assert_allclose([lo[0], hi[0]], [ci.low, ci.high])


def test_crossed_paired_images_cancel_and_seeds_use_welch():
    """Shared image difficulty cancels exactly; with the image part negligible, p is
    Welch's t test on the rows' per-seed means."""
    rng = np.random.default_rng(3)
    hard = rng.normal(size=200)
    sa, sb = np.array([[0.0], [0.4], [0.9]]), np.array([[-0.6], [-0.2], [0.1]])
    a, b = sa + hard + 1e-6 * rng.normal(size=(3, 200)), sb + hard
    for scale in (1.0, 1000.0):
        d, _, _, p = crossed_paired(a + (scale - 1) * hard, b + (scale - 1) * hard)
        welch = scipy.stats.ttest_ind(sa[:, 0], sb[:, 0], equal_var=False).pvalue
        assert d[0] == pytest.approx(sa.mean() - sb.mean(), abs=1e-5)
        assert p[0] == pytest.approx(welch, rel=1e-3)


def test_crossed_paired_p_agrees_with_its_interval():
    """p < α exactly when the (1 − α) interval excludes 0, for many random cases."""
    rng = np.random.default_rng(4)
    for _ in range(50):
        s = rng.integers(2, 5)
        a = rng.normal(rng.normal(0, 0.3), 0.3, (s, 1)) + rng.normal(size=(s, 80))
        b = rng.normal(0, 0.3, (s, 1)) + rng.normal(size=(s, 80))
        _, lo, hi, p = crossed_paired(a, b)
        assert (p[0] < 0.05) == (lo[0] > 0 or hi[0] < 0)
    d, lo, hi, p = crossed_paired(np.ones((2, 5)), np.ones((2, 5)))
    assert (d[0], lo[0], hi[0], p[0]) == (0, 0, 0, 1)  # identical rows
    with pytest.raises(ValueError):
        crossed_paired(np.zeros((2, 25)), np.zeros((2, 24)))


def test_seed_t_weights_give_student_t_spread():
    """Σ w_s v_s over draws: centred on the seeds' mean, spread sd/√S · t(S − 1)."""
    v = np.array([1.0, 2.0, 6.0])
    w = seed_t_weights(np.random.default_rng(5), 3, 200_000)
    draws = w @ v
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    z = (draws - v.mean()) / (v.std(ddof=1) / np.sqrt(3))
    qs = np.quantile(z, [0.025, 0.975])
    np.testing.assert_allclose(qs, scipy.stats.t.ppf([0.025, 0.975], 2), rtol=0.03)
    assert (seed_t_weights(np.random.default_rng(5), 1, 4) == 1).all()


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
