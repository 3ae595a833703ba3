"""Do the metrics agree? Rank agreement between metrics and paired differences between runs.

The study exists because pixel losses (BCE, MSE), structural scores (SSIM, MS-SSIM, GMSD) and
learned ones (LPIPS) can order models differently. Two questions, two levels:

- run level: do two metrics rank the runs the same way? Kendall τ between the runs' means.
- image level: do two metrics find the same images hard? Kendall τ between per-image scores.

All metrics are oriented so that lower is better before ranking (PSNR, SSIM, MS-SSIM,
precision and recall are negated), so τ = +1 means "same verdict", -1 "opposite verdict",
whatever the metrics' own directions. KL has no better direction and is ranked as is.
Intervals are percentile bootstraps over images, which are shared by all runs (the same test
set), so every replicate resamples the same images for every run and metric.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from vaebench import VaebenchError
from vaebench.tables import HIGHER_IS_BETTER, NO_DIRECTION, boot_means, diverged_mask, order_rows

# Quality metrics: neg_elbo/objective are BCE plus KL and would only echo BCE and KL.
DEFAULT_METRICS = ("bce", "mse", "psnr", "ssim", "ms_ssim", "gmsd", "lpips")


def orientation(metric: str) -> float:
    """+1 if lower is better (or no direction), -1 if higher is better."""
    return -1.0 if metric in HIGHER_IS_BETTER else 1.0


def _cube(
    per_image: pd.DataFrame, metrics: Sequence[str]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(runs, images, X) with X[m, r, i] the oriented score of metric m, run r, image i.

    Diverged runs are left out. Every remaining run must have the same images: pairing by
    image is what makes the paired bootstrap and the shared resampling valid.
    """
    missing = [c for c in ("run", "image", *metrics) if c not in per_image.columns]
    if missing:
        raise VaebenchError(f"per-image metrics lack column(s) {missing}")
    df = per_image[~diverged_mask(per_image)]
    if df.duplicated(["run", "image"]).any():
        raise VaebenchError("per-image metrics have duplicate (run, image) rows")
    keys = [c for c in ("model", "beta", "seed") if c in df.columns]
    if len(keys) == 3:
        runs = order_rows(df[["run", *keys]].drop_duplicates("run"))["run"].tolist()
    else:
        runs = sorted(df["run"].unique())
    images = np.sort(df["image"].unique())
    sets = df.groupby("run")["image"].nunique()
    short = sets[sets != len(images)]
    if len(short):
        raise VaebenchError(
            f"runs {short.index.tolist()} have {short.tolist()} images, others {len(images)}; "
            "agreement and paired comparisons need every run evaluated on the same images"
        )
    X = np.stack(
        [
            df.pivot(index="run", columns="image", values=m).loc[runs, images].to_numpy(np.float64)
            * orientation(m)
            for m in metrics
        ]
    )
    return runs, images, X


def tau_b(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Kendall τ-b along the last axis for batches of short vectors (a, b: ... x n).

    The same statistic as scipy.stats.kendalltau (variant 'b'): (concordant - discordant)
    over sqrt of the untied pair counts, from the signs of all pairwise differences. O(n^2)
    memory per batch entry, so only for the run level or small image sets.
    """
    sa = np.sign(a[..., :, None] - a[..., None, :])
    sb = np.sign(b[..., :, None] - b[..., None, :])
    num = (sa * sb).sum(axis=(-1, -2))
    den = np.sqrt((sa * sa).sum(axis=(-1, -2)) * (sb * sb).sum(axis=(-1, -2)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _kendall(a: np.ndarray, b: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: scipy warns and returns NaN
        return float(kendalltau(a, b).statistic)


def _interval(boot: np.ndarray) -> tuple[float, float]:
    boot = boot[np.isfinite(boot)]
    if not boot.size:
        return np.nan, np.nan
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return float(lo), float(hi)


def run_rank_agreement(
    per_image: pd.DataFrame,
    metrics: Sequence[str] = DEFAULT_METRICS,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Kendall τ between the rankings of runs by each pair of metrics, with bootstrap intervals.

    Each run (each seed separately) is one item ranked by its mean over images. A replicate
    resamples the images, recomputes all run means, and recomputes τ. Runs where either metric
    is undefined (KL of VQ-VAE) are left out of that pair; fewer than 3 runs gives NaN.
    One row per unordered pair: level, metric_a, metric_b, tau, tau_lo, tau_hi, n_runs, n_images.
    """
    metrics = list(metrics)
    runs, images, X = _cube(per_image, metrics)
    means = X.mean(axis=2)  # (M, R); NaN where the metric is undefined for the run
    rng = np.random.default_rng([seed, 1])
    M, R, N = X.shape
    boot = boot_means(X.reshape(M * R, N).T, n_boot, rng).reshape(n_boot, M, R)
    rows = []
    for i, j in itertools.combinations(range(M), 2):
        ok = np.isfinite(means[i]) & np.isfinite(means[j])
        tau = lo = hi = np.nan
        if ok.sum() >= 3:
            tau = _kendall(means[i, ok], means[j, ok])
            lo, hi = _interval(tau_b(boot[:, i, ok], boot[:, j, ok]))
        rows.append(
            {
                "level": "run",
                "metric_a": metrics[i],
                "metric_b": metrics[j],
                "tau": tau,
                "tau_lo": lo,
                "tau_hi": hi,
                "n_runs": int(ok.sum()),
                "n_images": len(images),
            }
        )
    return pd.DataFrame(rows)


def _kendall_batch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """τ-b of each row pair of a, b (B x n): vectorised for short rows, scipy otherwise."""
    if a.shape[1] <= 128:
        return np.concatenate([tau_b(a[k : k + 64], b[k : k + 64]) for k in range(0, len(a), 64)])
    return np.array([_kendall(x, y) for x, y in zip(a, b, strict=True)])


def image_rank_agreement(
    per_image: pd.DataFrame,
    metrics: Sequence[str] = DEFAULT_METRICS,
    n_boot: int = 200,
    seed: int = 0,
    pooled: bool = False,
    max_images: int | None = 2000,
) -> pd.DataFrame:
    """Kendall τ between per-image scores of each pair of metrics, with bootstrap intervals.

    Default (pooled=False): τ over the images of each run, averaged over runs. This asks
    "do the metrics agree on which images a model reconstructs badly?" without the run-to-run
    differences, which the run level already covers. pooled=True ranks all (run, image) pairs
    together, which mixes both questions and is dominated by between-run differences.
    A replicate resamples images (the same ones for every run) and recomputes every τ.
    Costs n_boot x runs x pairs scipy calls, so above `max_images` a fixed random subset of
    images is used (seeded; n_images says how many) and n_boot defaults to 200.
    """
    metrics = list(metrics)
    runs, images, X = _cube(per_image, metrics)
    rng = np.random.default_rng([seed, 2])
    if max_images is not None and len(images) > max_images:
        keep = np.sort(rng.choice(len(images), max_images, replace=False))
        X, images = X[:, :, keep], images[keep]
    M, R, N = X.shape
    idx = rng.integers(0, N, size=(n_boot, N))
    defined = np.isfinite(X).all(axis=2)  # (M, R)
    rows = []
    for i, j in itertools.combinations(range(M), 2):
        ok = np.flatnonzero(defined[i] & defined[j])
        tau = lo = hi = np.nan
        if len(ok):
            if pooled:
                a, b = X[i, ok], X[j, ok]  # (R', N)
                tau = _kendall(a.ravel(), b.ravel())
                boot = _kendall_batch(
                    a[:, idx].transpose(1, 0, 2).reshape(n_boot, -1),
                    b[:, idx].transpose(1, 0, 2).reshape(n_boot, -1),
                )
            else:
                tau = float(np.nanmean([_kendall(X[i, r], X[j, r]) for r in ok]))
                per_run = [_kendall_batch(X[i, r][idx], X[j, r][idx]) for r in ok]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    boot = np.nanmean(per_run, axis=0)
            lo, hi = _interval(boot)
        rows.append(
            {
                "level": "image (pooled)" if pooled else "image",
                "metric_a": metrics[i],
                "metric_b": metrics[j],
                "tau": tau,
                "tau_lo": lo,
                "tau_hi": hi,
                "n_runs": len(ok),
                "n_images": N,
            }
        )
    return pd.DataFrame(rows)


def metric_agreement(
    per_image: pd.DataFrame,
    metrics: Sequence[str] = DEFAULT_METRICS,
    n_boot: int = 1000,
    n_boot_images: int = 200,
    seed: int = 0,
    max_images: int | None = 2000,
) -> pd.DataFrame:
    """Run-level and image-level τ in one long table (results/tables/metric_agreement.*)."""
    out = pd.concat(
        [
            run_rank_agreement(per_image, metrics, n_boot, seed),
            image_rank_agreement(per_image, metrics, n_boot_images, seed, max_images=max_images),
        ],
        ignore_index=True,
    )
    out.attrs["footnotes"] = [
        "Kendall τ-b between metrics, all oriented so lower = better (PSNR, SSIM, MS-SSIM "
        "negated): +1 = same ranking, −1 = reversed.",
        f"level 'run': runs ranked by their mean over images; 95% interval from {n_boot} "
        "bootstrap resamples of images (the same images for every run).",
        f"level 'image': τ over the images of each run, averaged over runs; 95% interval from "
        f"{n_boot_images} resamples of images"
        + (f" (a fixed random subset of at most {max_images} images)." if max_images else "."),
    ]
    return out


def tau_matrix(tau: pd.DataFrame, level: str | None = None) -> pd.DataFrame:
    """Square, symmetric τ matrix (diagonal 1) from the long table, for one level."""
    if level is not None:
        tau = tau[tau["level"] == level]
    elif "level" in tau and tau["level"].nunique() > 1:
        raise VaebenchError(f"tau table has levels {tau['level'].unique().tolist()}; pick one")
    names = list(dict.fromkeys([*tau["metric_a"], *tau["metric_b"]]))
    mat = pd.DataFrame(np.nan, index=names, columns=names)
    for a, b, t in zip(tau["metric_a"], tau["metric_b"], tau["tau"], strict=True):
        mat.loc[a, b] = mat.loc[b, a] = t
    for n in names:
        mat.loc[n, n] = 1.0
    return mat


def _pairs(runs: list[str], pairs: str | Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    if pairs == "all":
        return list(itertools.combinations(runs, 2))
    if pairs == "adjacent":
        return list(itertools.pairwise(runs))
    if isinstance(pairs, str):
        raise VaebenchError(
            f"pairs must be 'all', 'adjacent' or a list of run pairs, not {pairs!r}"
        )
    unknown = sorted({r for p in pairs for r in p} - set(runs))
    if unknown:
        raise VaebenchError(f"unknown (or diverged) runs in pairs: {unknown}")
    return [tuple(p) for p in pairs]


def paired_comparisons(
    per_image: pd.DataFrame,
    metrics: Sequence[str] = DEFAULT_METRICS,
    n_boot: int = 1000,
    seed: int = 0,
    pairs: str | Sequence[tuple[str, str]] = "all",
) -> pd.DataFrame:
    """Mean per-image difference A − B for each metric and pair of runs, matched on `image`.

    The 95% interval is a paired bootstrap (resample images, keep each image's A and B
    together), which is far tighter than comparing two separate intervals because the image
    difficulty cancels. `excludes_zero` says the interval leaves out 0; `better` names the
    better run in that case ("n.s." otherwise, "n/a" for KL, which has no better direction).
    Differences are in the metric's own units and direction, not oriented.
    pairs: "all" (every pair, in table order), "adjacent" (neighbours in table order), or an
    explicit list of (run_a, run_b).
    """
    metrics = list(metrics)
    runs, images, X = _cube(per_image, metrics)
    pos = {r: k for k, r in enumerate(runs)}
    chosen = _pairs(runs, pairs)
    keys, diffs = [], []
    for m, metric in enumerate(metrics):
        sign = orientation(metric)
        for a, b in chosen:
            d = (X[m, pos[a]] - X[m, pos[b]]) * sign
            if np.isfinite(d).all():
                keys.append((metric, a, b))
                diffs.append(d)
    if not keys:
        return pd.DataFrame(
            columns=["metric", "run_a", "run_b", "mean_a", "mean_b", "diff", "diff_lo", "diff_hi"]
        )
    D = np.stack(diffs, axis=1)  # (N, K)
    boot = boot_means(D, n_boot, np.random.default_rng([seed, 3]))
    lo, hi = np.percentile(boot, [2.5, 97.5], axis=0)
    rows = []
    for k, (metric, a, b) in enumerate(keys):
        m = metrics.index(metric)
        sign = orientation(metric)
        excludes = bool(lo[k] > 0 or hi[k] < 0)
        if metric in NO_DIRECTION:
            better = "n/a"
        elif not excludes:
            better = "n.s."
        else:
            # Oriented: lower is better, so A is better when A − B < 0.
            better = a if D[:, k].mean() * sign < 0 else b
        rows.append(
            {
                "metric": metric,
                "run_a": a,
                "run_b": b,
                "mean_a": X[m, pos[a]].mean() * sign,
                "mean_b": X[m, pos[b]].mean() * sign,
                "diff": D[:, k].mean(),
                "diff_lo": lo[k],
                "diff_hi": hi[k],
                "excludes_zero": excludes,
                "better": better,
                "n_images": len(images),
            }
        )
    out = pd.DataFrame(rows)
    out.attrs["footnotes"] = [
        f"A − B: mean over {len(images)} images of the per-image difference, in the metric's "
        f"own units; 95% paired-bootstrap interval ({n_boot} resamples of images, seed {seed}).",
        "better: the run favoured by the metric when the interval excludes 0 (n.s. otherwise).",
    ]
    return out
