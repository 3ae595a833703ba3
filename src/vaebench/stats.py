"""Statistics that hold up: multiplicity, intervals and tests for seeds x images, FID∞.

The tables' verdicts ("β=4 is worse than β=1") must survive three things that a single
95% interval per cell ignores: training variance (a second seed can move a metric by more
than an image-bootstrap interval), multiple comparisons (dozens of pairs × metrics tested
at once) and FID's c/N bias (rankings can flip with the sample size N). This module holds
the pure functions for each; the table code decides what to apply them to.

numpy and scipy only, never torch: `vaebench.tables` and the Snakemake parse import this.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.linalg
import scipy.stats

# Footnotes, one line each, for tables that use these methods.
SEED_INTERVAL_NOTE = (
    "Set-level metrics: mean over n training seeds ± t(n−1, 0.975)·sd/√n (Student-t 95% "
    "interval over seeds, sd with n−1); with one seed no interval is shown."
)
ONE_SEED_NOTE = (
    "One training seed: intervals cover test images only, not training variance."
)
CROSSED_NOTE = (
    "Cells: mean over seeds (weighted equally) of the mean over the images [95% interval]. "
    "Seeds and images are crossed (every seed is scored on the same images), so the interval "
    "has two parts: the seeds' (Student t with S−1 df on the spread of the S per-seed means) "
    "and the images' (Student t with n−1 df on the spread of the n per-image means over "
    "seeds); its half-width is the root sum of squares of the two parts' half-widths. With "
    "one seed, the images' part alone."
)


def holm_note(family_size: int, alpha: float = 0.05) -> str:
    """The footnote of a comparisons table: the family size and the correction it used."""
    return (
        f"p: two-sided, the α at which A − B's (1 − α) interval reaches 0; p_holm: Holm "
        f"step-down over the family of {family_size} comparisons; verdicts need p_holm < "
        f"{alpha:g}."
    )


# ---------------------------------------------------------------------------------------
# Bootstrap means (the tables' percentile intervals and every paired bootstrap)


def resample_counts(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """How often each of n items is drawn in `size` resamples of n with replacement."""
    idx = rng.integers(0, n, size=(size, n)) + np.arange(size)[:, None] * n
    return np.bincount(idx.ravel(), minlength=size * n).reshape(size, n).astype(np.float64)


def boot_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap means of the columns of `values` (n x k): an (n_boot x k) array.

    Rows are resampled together, so columns stay paired (the same images for every metric or
    run). Computed as count-matrix products in chunks: fast, and memory stays ~16 MB whatever n.
    A column holding NaN gives NaN means without touching the other columns.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    out = np.empty((n_boot, values.shape[1]))
    chunk = max(1, 2_000_000 // max(n, 1))
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        out[start : start + size] = resample_counts(rng, n, size) @ values / n
    return out


# ---------------------------------------------------------------------------------------
# Seeds x images: intervals and tests for the study's crossed design
#
# Every seed of every model is scored on the same n test images: seeds and images are
# crossed. A row's estimate is the mean over its S seeds of the mean over the images, and its
# error has a training part (seed to seed) and an image part (which images were drawn),
# shared by every seed. Both parts are estimated from the data:
#   seed part   v_seed = var(per-seed means) / S, S − 1 degrees of freedom (the images'
#               difficulty is common to all seeds and cancels in it);
#   image part  v_img = var(per-image means over the seeds) / n, n − 1 degrees of freedom.
# (Each part also holds seed × image noise / (S n), so together they count it twice: a small,
# conservative excess.) With S = 3 the seed part's variance is estimated from two degrees of
# freedom, so a normal or bootstrap interval on it is far too narrow (a percentile bootstrap
# over three seeds has ten distinct resamples), and a Welch-Satterthwaite t that pools it
# with the well-estimated image part still undercovers when the seeds dominate a little
# (measured: 0.93 at S = 3, 0.87 at S = 2). The interval therefore gives each part its own
# Student t and adds the two half-widths in quadrature, h = sqrt(h_seed² + h_img²): exact at
# either extreme (all seed variance: the t interval over seeds; all image variance: the t
# interval over images), conservative in between. In a comparison A − B the two rows' seed
# parts (independent seeds) are first combined by Welch's t, which is well calibrated for
# two small samples; the image part is that of the per-image differences, in which the
# images' difficulty cancels. The p-value is the smallest α whose (1 − α) interval excludes
# 0, so a verdict and the interval always agree. tests/test_calibration.py measures coverage
# and false positives of these through the table functions on simulated studies.


def _t_half(var: np.ndarray, df: np.ndarray | float, alpha: np.ndarray | float) -> np.ndarray:
    """Half-width t_{df, 1 − α/2}·sqrt(var) (0 where var is 0; isf keeps tiny α finite)."""
    with np.errstate(invalid="ignore"):
        q = scipy.stats.t.isf(np.asarray(alpha) / 2, df)
    return np.where(np.asarray(var) > 0, q * np.sqrt(np.maximum(var, 0)), 0.0)


def _two_part_half(
    alpha: np.ndarray | float, v_img: np.ndarray, n: int, v_seed: np.ndarray, df_seed
) -> np.ndarray:
    """sqrt(h_img² + h_seed²): each part's Student-t half-width, added in quadrature."""
    return np.sqrt(_t_half(v_img, n - 1, alpha) ** 2 + _t_half(v_seed, df_seed, alpha) ** 2)


def _seed_part(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(mean over seeds of the per-seed means, v_seed, S) of x (S, n, k); v_seed 0 for S = 1."""
    s = x.shape[0]
    means = x.mean(axis=1)
    v = means.var(axis=0, ddof=1) / s if s > 1 else np.zeros(x.shape[2])
    return means.mean(axis=0), v, s


def _as_cube(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3 or x.shape[1] < 2:
        raise ValueError(f"{name} must be (seeds, images[, metrics]) with 2+ images: {x.shape}")
    return x


def crossed_interval(
    values: np.ndarray, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, lo, hi) per metric of one row: values (S, n[, k]), seed s's scores on the n
    shared images in the same order (the block comment above says how and why)."""
    x = _as_cube(values, "values")
    n = x.shape[1]
    mean, v_seed, s = _seed_part(x)  # one seed: v_seed is 0, so no seed part
    v_img = x.mean(axis=0).var(axis=0, ddof=1) / n
    half = _two_part_half(1 - level, v_img, n, v_seed, max(s - 1, 1))
    return mean, mean - half, mean + half


def crossed_paired(
    a: np.ndarray, b: np.ndarray, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(diff, lo, hi, p) per metric of mean(A) − mean(B), two rows scored on the same images.

    a: (S_a, n[, k]) per-image values of row A, one row per training seed; b: (S_b, n[, k])
    on the same n images in the same order. Seeds are not paired (seed s of A has no link
    to seed s of B); images are. p is two-sided: the smallest α at which the (1 − α)
    interval excludes 0, found by bisection on log α (60 steps: far finer than any table).
    """
    a, b = _as_cube(a, "a"), _as_cube(b, "b")
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"a and b must be scored on the same images: {a.shape} {b.shape}")
    n = a.shape[1]
    mean_a, v_a, s_a = _seed_part(a)
    mean_b, v_b, s_b = _seed_part(b)
    diff = mean_a - mean_b
    v_img = (a.mean(axis=0) - b.mean(axis=0)).var(axis=0, ddof=1) / n
    v_seed = v_a + v_b
    den = (v_a**2 / (s_a - 1) if s_a > 1 else 0.0) + (v_b**2 / (s_b - 1) if s_b > 1 else 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        df_seed = np.where(den > 0, v_seed**2 / np.where(den > 0, den, 1.0), 1.0)  # Welch

    def half(alpha: np.ndarray | float) -> np.ndarray:
        return _two_part_half(alpha, v_img, n, v_seed, df_seed)

    h = half(1 - level)
    if not np.any(v_seed > 0):  # the image part alone: the paired t test's own p
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.abs(diff) / np.sqrt(v_img)
        p = np.where(np.abs(diff) > 0, np.nan_to_num(2 * scipy.stats.t.sf(t, n - 1)), 1.0)
        return diff, diff - h, diff + h, p
    # bisection on log10 α in [-300, 0]: half(α) falls as α grows; p is where it meets |d|
    lo_log, hi_log = np.full(diff.shape, -300.0), np.zeros(diff.shape)
    for _ in range(60):
        mid = (lo_log + hi_log) / 2
        wide = half(10.0**mid) > np.abs(diff)  # the interval still holds 0: p is larger
        lo_log, hi_log = np.where(wide, mid, lo_log), np.where(wide, hi_log, mid)
    p = np.where(np.abs(diff) > 0, 10.0 ** ((lo_log + hi_log) / 2), 1.0)
    return diff, diff - h, diff + h, np.minimum(p, 1.0)


def seed_t_weights(rng: np.random.Generator, n_seeds: int, size: int) -> np.ndarray:
    """(size, S) weights w with Σ_s w_s·v_s a draw of a row's mean over seeds (bootstraps
    of statistics of several rows, such as Kendall τ between metrics' rankings).

    Resampling S = 2-5 seeds with replacement gives a handful of distinct draws and far too
    little spread. Instead w_s = 1/S + c_s − mean(c), c_s = z_s·sqrt((S − 1)/χ²)/sqrt(S(S −
    1)) with z ~ N(0, 1) per seed and χ² ~ χ²(S − 1) per draw: the draw's deviation from the
    mean, Σ_s (c_s − c̄) v_s, then has the seeds' spread sd/√S times a Student t with S − 1
    df, the same small-sample reference as crossed_interval's seed part, and keeps the
    correlation between metrics measured on the same seeds. One seed: weight 1 (no training
    variance is fabricated)."""
    if n_seeds == 1:
        return np.ones((size, 1))
    z = rng.standard_normal((size, n_seeds))
    k = np.sqrt((n_seeds - 1) / rng.chisquare(n_seeds - 1, size)) / np.sqrt(n_seeds * (n_seeds - 1))
    c = z * k[:, None]
    return 1 / n_seeds + c - c.mean(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------
# Multiple comparisons


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values, in the input's order and shape.

    Sort the m finite p-values, p_(1) ≤ … ≤ p_(m); the adjusted value of p_(j) is
    max_{i ≤ j} min(1, (m − i + 1)·p_(i)). Rejecting where adjusted ≤ α is Holm's (1979)
    procedure: it controls the family-wise error rate at α under any dependence between the
    tests (comparisons sharing a run are dependent), and is uniformly more powerful than
    Bonferroni. NaN (a comparison that could not be made) stays NaN and is not counted in
    m: an untested hypothesis cannot produce a false rejection.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    flat, res = p.ravel(), out.reshape(-1)
    finite = np.flatnonzero(np.isfinite(flat))
    if np.any((flat[finite] < 0) | (flat[finite] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    m = finite.size
    order = finite[np.argsort(flat[finite], kind="stable")]
    scaled = (m - np.arange(m)) * flat[order]
    res[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


# ---------------------------------------------------------------------------------------
# Training variance


def seed_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean over seeds and its Student-t interval: mean ± t_{n−1, (1+level)/2}·sd/√n.

    For set-level metrics (FID, FID∞, KID, precision, recall) there is one value per
    training seed and nothing per image to resample. With 2-5 seeds a bootstrap over seeds
    has a handful of distinct resamples (3 for two seeds, 10 for three) and its percentile
    interval is far too narrow (two seeds: it never reaches beyond the two values); the t
    interval accounts for estimating sd from n values. It assumes seed-to-seed values are
    roughly normal: state it (`SEED_INTERVAL_NOTE`). NaN entries are left out; with fewer
    than two seeds left, lo and hi are NaN: one seed says nothing about training variance,
    so none is fabricated.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[~np.isnan(v)]
    if v.size == 0:
        return np.nan, np.nan, np.nan
    mean = float(v.mean())
    if v.size < 2:
        return mean, np.nan, np.nan
    half = scipy.stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
    return mean, float(mean - half), float(mean + half)


# ---------------------------------------------------------------------------------------
# FID at several N and FID∞

Frechet = Callable[[np.ndarray, np.ndarray], float]


def cov_factor(f: np.ndarray) -> np.ndarray:
    """A (k, D) matrix A with A.T @ A == np.cov(f, rowvar=False) and k = min(N, D)."""
    a = (f - f.mean(0)) / np.sqrt(len(f) - 1)
    return a if len(a) <= a.shape[1] else np.linalg.qr(a, mode="r")


def _frechet_factored(mu1, a1, mu2, a2) -> float:
    diff = mu1 - mu2
    tr_sqrt = scipy.linalg.svdvals(a1 @ a2.T).sum()
    return float(diff @ diff + np.sum(a1 * a1) + np.sum(a2 * a2) - 2 * tr_sqrt)


def frechet_distance(f1: np.ndarray, f2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^1/2) of two (N, D) feature sets.

    With S_i = A_i^T A_i (`cov_factor`), the eigenvalues of S1 S2 are the squared singular
    values of A1 A2^T, so tr((S1 S2)^1/2) is that matrix's nuclear norm: real and >= 0 by
    construction, no imaginary parts to discard (pytorch-fid's sqrtm needs that) and no
    early-stopping iteration (piq's). FID(x, x) is 0 to rounding. The SVD is min(N1, D) x
    min(N2, D), so small sets are fast. FID is biased ~c/N: compare only at equal N.
    """
    f1, f2 = np.asarray(f1, dtype=np.float64), np.asarray(f2, dtype=np.float64)
    return _frechet_factored(f1.mean(0), cov_factor(f1), f2.mean(0), cov_factor(f2))


def default_sizes(n: int, num: int = 5) -> np.ndarray:
    """`num` subset sizes evenly spaced from n/5 to n (the last is n itself: FID@N)."""
    return np.unique(np.round(np.linspace(n / 5, n, num)).astype(int))


def fid_curve(
    f_real: np.ndarray,
    f_fake: np.ndarray,
    sizes: np.ndarray | None = None,
    seed: int = 0,
    frechet: Frechet | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """FID of random subsets of the generated features against all reference features.

    For each size N, draw N of the generated features without replacement (a fresh draw
    per size from np.random.default_rng(seed), so the errors at different N are independent
    as the least-squares fit of `fid_infinity` assumes) and compute FID against the full
    reference set. Features are computed once by the caller; only subsets are drawn here.
    The default sizes (`default_sizes`) end at N = len(f_fake), whose value is FID@N.
    `frechet(f_real, f_fake_subset)` may be given (e.g. metrics.sets.frechet_distance); the
    default factors the reference covariance once and reuses it for every size.
    Returns (sizes, fids).
    """
    f_real, f_fake = np.asarray(f_real, dtype=np.float64), np.asarray(f_fake, dtype=np.float64)
    n = len(f_fake)
    sizes = default_sizes(n) if sizes is None else np.asarray(sizes, dtype=int)
    if sizes.size == 0 or sizes.min() < 2 or sizes.max() > n:
        raise ValueError(f"subset sizes must lie in [2, {n}], got {sizes.tolist()}")
    rng = np.random.default_rng(seed)
    if frechet is None:
        mu_r, a_r = f_real.mean(0), cov_factor(f_real)

        def frechet(_real: np.ndarray, sub: np.ndarray) -> float:  # reference factored once
            return _frechet_factored(mu_r, a_r, sub.mean(0), cov_factor(sub))

    fids = [frechet(f_real, f_fake[rng.choice(n, size=int(s), replace=False)]) for s in sizes]
    return sizes, np.asarray(fids, dtype=np.float64)


def fid_infinity(sizes: np.ndarray, fids: np.ndarray) -> tuple[float, float, float]:
    """Least-squares fit FID(N) = FID∞ + k/N; returns (FID∞, k, residual RMS).

    FID's bias in the generated sample size is ≈ c/N with a model-dependent c (Chong &
    Forsyth, CVPR 2020), so models compared at one N can swap ranks. Extrapolating the fit
    to 1/N = 0 removes that term; the reference set's own bias (fixed N_ref) remains, the
    same N_ref for every model. The residual RMS, sqrt(mean(residual²)), says whether the
    curve is in fact linear in 1/N: report it beside FID∞. Needs ≥ 3 distinct sizes (two
    points always fit exactly).
    """
    x = 1.0 / np.asarray(sizes, dtype=np.float64)
    y = np.asarray(fids, dtype=np.float64)
    if x.shape != y.shape or np.unique(x).size < 3 or not np.isfinite(y).all():
        raise ValueError("need finite FIDs at >= 3 distinct sizes, one FID per size")
    design = np.stack([np.ones_like(x), x], axis=1)
    (fid_inf, k), *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ np.array([fid_inf, k])
    return float(fid_inf), float(k), float(np.sqrt(np.mean(resid**2)))
