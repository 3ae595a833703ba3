"""Statistics that hold up: multiplicity, bootstrap p-values, seed intervals and FID∞.

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
    "One training seed: intervals cover resampled test images only, not training variance."
)


def holm_note(family_size: int, alpha: float = 0.05) -> str:
    """The footnote of a comparisons table: the family size and the correction it used."""
    return (
        f"p: two-sided bootstrap p-value; p_holm: Holm step-down correction over the family of "
        f"{family_size} comparisons in this table; verdicts need p_holm < {alpha:g}."
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


def hierarchical_boot_means(
    groups: list[np.ndarray], n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """Bootstrap the mean of per-seed means: resample seeds, then images within each seed.

    Each of the S draws of a replicate gets its own image resample, so a seed drawn twice is
    not counted as one identical sample twice. With one seed this is the plain image bootstrap.
    """
    if len(groups) == 1:
        return boot_means(groups[0], n_boot, rng)
    total = np.zeros((n_boot, groups[0].shape[1]))
    for _ in range(len(groups)):
        pick = rng.integers(0, len(groups), n_boot)
        for s, values in enumerate(groups):
            rows = np.flatnonzero(pick == s)
            if rows.size:
                total[rows] += boot_means(values, rows.size, rng)
    return total / len(groups)


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


def bootstrap_p_two_sided(boot: np.ndarray, null: float = 0.0) -> np.ndarray | float:
    """Two-sided bootstrap p-value for H0: mean difference = `null`, per column of `boot`.

    `boot` holds B bootstrap replicates of a (paired) mean difference, shape (B,) or (B, k).
    p = min(1, 2·min((#{d* ≤ null} + 1)/(B + 1), (#{d* ≥ null} + 1)/(B + 1))): the smallest
    α at which the percentile (1 − α) interval excludes `null`, so a verdict and the
    table's percentile interval agree (up to the +1 and the percentile interpolation).
    The +1 counts the observed sample as one replicate (Davison & Hinkley 1997, §4.4): p is
    never 0, and its floor 2/(B + 1) is the resolution B buys; see `min_n_boot` before
    Holm-correcting a large family. A column holding NaN gives NaN. Identical runs (all
    d* = 0) give p = 1.
    """
    d = np.asarray(boot, dtype=np.float64)
    col = d.reshape(len(d), -1)
    b = col.shape[0]
    if b < 1:
        raise ValueError("need at least one bootstrap replicate")
    below = np.sum(col <= null, axis=0)
    above = np.sum(col >= null, axis=0)
    p = np.minimum(1.0, 2.0 * (np.minimum(below, above) + 1) / (b + 1))
    p[np.isnan(col).any(axis=0)] = np.nan
    return float(p[0]) if d.ndim == 1 else p.reshape(d.shape[1:])


def min_n_boot(family_size: int, alpha: float = 0.05) -> int:
    """Smallest B for which a Holm-corrected bootstrap p can fall below `alpha` at all.

    The strongest comparison's adjusted p is at least family_size·2/(B + 1), so with
    B = 1,000 and 147 comparisons (21 pairs × 7 metrics) nothing could ever be significant.
    This is a floor, not a recommendation: weaker comparisons need several times more.
    """
    b = int(np.floor(2 * family_size / alpha))
    return b if 2 * family_size / (b + 1) < alpha else b + 1


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


def hierarchical_paired_boot(
    a: np.ndarray, b: np.ndarray, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """Bootstrap replicates of mean(a) − mean(b) over seeds and shared test images.

    a: (S_a, n) or (S_a, n, k) per-image values of model A, one row per training seed (k
    metrics); b likewise for model B on the same n images in the same order. Returns
    (n_boot,) or (n_boot, k).

    Every seed of every model is scored on the same test images, so seeds and images are
    crossed, not nested. Each replicate therefore draws one image resample shared by all
    seeds of both models (the pairs stay paired and image difficulty cancels in A − B),
    and, independently, S_a seeds of A and S_b seeds of B with replacement: seed s of A has
    no link to seed s of B, so seeds are not paired. Resampling both crossed factors is
    Owen's (2007) pigeonhole bootstrap, mildly conservative. With one seed each it is the
    plain paired image bootstrap. The estimate itself is
    mean over seeds of the mean over images (seeds weighted equally), as in the tables.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim not in (2, 3) or a.shape[1:] != b.shape[1:] or b.ndim != a.ndim:
        raise ValueError(
            f"a and b must be (seeds, images[, metrics]) on the same images: {a.shape} {b.shape}"
        )
    squeeze = a.ndim == 2
    if squeeze:
        a, b = a[..., None], b[..., None]
    (s_a, n, k), s_b = a.shape, b.shape[0]
    # Columns = (seed, metric) of A then of B; rows (images) are resampled together.
    cols = np.concatenate(
        [a.transpose(1, 0, 2).reshape(n, -1), b.transpose(1, 0, 2).reshape(n, -1)], axis=1
    )
    per_seed = boot_means(cols, n_boot, rng)  # (B, (S_a + S_b)·k)
    mean_a = per_seed[:, : s_a * k].reshape(n_boot, s_a, k)
    mean_b = per_seed[:, s_a * k :].reshape(n_boot, s_b, k)
    w_a = resample_counts(rng, s_a, n_boot)[:, :, None] / s_a
    w_b = resample_counts(rng, s_b, n_boot)[:, :, None] / s_b
    diff = (w_a * mean_a).sum(axis=1) - (w_b * mean_b).sum(axis=1)
    return diff[:, 0] if squeeze else diff


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
    `frechet(f_real, f_fake_subset)` may be given (e.g. feature_metrics.frechet_distance); the
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
