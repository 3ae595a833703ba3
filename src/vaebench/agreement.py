"""Do the metrics agree? Rank agreement between metrics, at two levels.

The study exists because pixel losses (BCE, MSE), structural scores (SSIM, MS-SSIM, GMSD) and
learned ones (LPIPS) can order models differently. Two questions, two levels:

- model level: do two metrics rank the table rows (model/β, each the mean over its seeds and
  the test images) the same way? Kendall τ between the rows' means.
- image level: do two metrics find the same images hard? Kendall τ between per-image scores
  within each run, averaged over each row's seeds, then over rows.

All metrics are oriented so that lower is better before ranking (PSNR, SSIM, MS-SSIM,
precision and recall are negated), so τ = +1 means "same verdict", -1 "opposite verdict",
whatever the metrics' own directions. KL has no better direction and is ranked as is. BCE
excess replaces BCE: per-image BCE is dominated by the target's own entropy and ranks image
content, not reconstruction quality. Intervals are percentile bootstraps that resample the
test images (shared by every run, so one image resample serves all runs and metrics) and
draw each row's training variation with `stats.seed_t_weights` (Student-t spread from the
row's seeds; resampling two or three seeds with replacement would give a handful of distinct
draws and intervals far too narrow). VAE and β-VAE β=1 are one row (names.sweep_rows), counted once.
Paired comparisons between rows live in `vaebench.paired` (re-exported here).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from vaebench import VaebenchError
from vaebench.metrics.files import checkpoint_note, seed_notes
from vaebench.paired import (
    DEFAULT_METRICS,
    Cube,
    cube,
    default_metrics,
    orientation,
    paired_comparisons,
)
from vaebench.stats import boot_means, seed_t_weights

__all__ = [
    "DEFAULT_METRICS",
    "image_rank_agreement",
    "metric_agreement",
    "orientation",
    "paired_comparisons",
    "run_rank_agreement",
    "tau_b",
    "tau_matrix",
]


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


def _seed_weights(c: Cube, n_boot: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Per row, (n_boot, S) weights of its seeds (stats.seed_t_weights; 1 with one seed)."""
    return [seed_t_weights(rng, len(idx), n_boot) for idx in c.rows["runs"]]


def _row_values(c: Cube, per_run: np.ndarray, weights: list[np.ndarray] | None) -> np.ndarray:
    """(..., R) per-run values -> (..., G) per-row means over seeds, weighted per replicate
    (weights[g]: (B, S_g), per_run: (B, ..., R)) or equally (weights None)."""
    out = []
    for g, idx in enumerate(c.rows["runs"]):
        vals = per_run[..., idx]
        if weights is None:
            out.append(vals.mean(axis=-1))
        else:
            w = weights[g].reshape(weights[g].shape[0], *([1] * (vals.ndim - 2)), len(idx))
            out.append((vals * w).sum(axis=-1))
    return np.stack(out, axis=-1)


def _row(level: str, a: str, b: str, tau: float, lo: float, hi: float, c: Cube, ok) -> dict:
    seeds = c.rows["n_seeds"].to_numpy()[ok]
    return {
        "level": level,
        "metric_a": a,
        "metric_b": b,
        "tau": tau,
        "tau_lo": lo,
        "tau_hi": hi,
        "n_rows": int(np.sum(ok)),
        "n_seeds": int(seeds.min()) if seeds.size else 0,
        "n_images": len(c.images),
    }


def run_rank_agreement(
    per_image: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    vae_in_sweep: bool | None = None,
) -> pd.DataFrame:
    """Kendall τ between the rankings of table rows by each pair of metrics (level "model").

    Each row (model/β) is one item, ranked by its mean over seeds of the mean over images. A
    replicate resamples the images (the same for every run), each row's seeds, recomputes the
    row means and τ (each row's seeds by stats.seed_t_weights). Rows where either metric is
    undefined (KL of VQ-VAE) are left out of
    that pair; fewer than 3 rows gives NaN. One output row per unordered metric pair: level,
    metric_a, metric_b, tau, tau_lo, tau_hi, n_rows, n_seeds (fewest of a row), n_images.
    """
    metrics = default_metrics(per_image, metrics)
    c = cube(per_image, metrics, vae_in_sweep)
    M, R, N = c.X.shape
    means = _row_values(c, c.X.mean(axis=2), None)  # (M, G)
    rng = np.random.default_rng([seed, 1])
    boot = boot_means(c.X.reshape(M * R, N).T, n_boot, rng).reshape(n_boot, M, R)
    rows_boot = _row_values(c, boot, _seed_weights(c, n_boot, rng))  # (B, M, G)
    out = []
    for i, j in itertools.combinations(range(M), 2):
        ok = np.isfinite(means[i]) & np.isfinite(means[j])
        tau = lo = hi = np.nan
        if ok.sum() >= 3:
            tau = _kendall(means[i, ok], means[j, ok])
            lo, hi = _interval(tau_b(rows_boot[:, i, ok], rows_boot[:, j, ok]))
        out.append(_row("model", metrics[i], metrics[j], tau, lo, hi, c, ok))
    return pd.DataFrame(out)


def _kendall_batch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """τ-b of each row pair of a, b (B x n): vectorised for short rows, scipy otherwise."""
    if a.shape[1] <= 128:
        return np.concatenate([tau_b(a[k : k + 64], b[k : k + 64]) for k in range(0, len(a), 64)])
    return np.array([_kendall(x, y) for x, y in zip(a, b, strict=True)])


def image_rank_agreement(
    per_image: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    n_boot: int = 200,
    seed: int = 0,
    pooled: bool = False,
    max_images: int | None = 2000,
    vae_in_sweep: bool | None = None,
) -> pd.DataFrame:
    """Kendall τ between per-image scores of each pair of metrics, with bootstrap intervals.

    Default (pooled=False): τ over the images of each run, averaged over each row's seeds and
    then over rows. This asks "do the metrics agree on which images a model reconstructs
    badly?" without the differences between models, which the model level covers. A replicate
    resamples the images (the same for every run) and each row's seeds. pooled=True ranks all
    (run, image) pairs together, which mixes both questions and is dominated by differences
    between runs (no seed resampling). Costs n_boot x runs x pairs τ computations, so above
    `max_images` a fixed random subset of images is used (seeded; n_images says how many).
    """
    metrics = default_metrics(per_image, metrics)
    c = cube(per_image, metrics, vae_in_sweep)
    X = c.X
    rng = np.random.default_rng([seed, 2])
    if max_images is not None and X.shape[2] > max_images:
        keep = np.sort(rng.choice(X.shape[2], max_images, replace=False))
        X = X[:, :, keep]
    M, R, N = X.shape
    idx = rng.integers(0, N, size=(n_boot, N))
    weights = _seed_weights(c, n_boot, rng)
    defined = np.isfinite(X).all(axis=2)  # (M, R)
    row_defined = np.array([[defined[m, r].all() for r in c.rows["runs"]] for m in range(M)])
    out = []
    for i, j in itertools.combinations(range(M), 2):
        ok = row_defined[i] & row_defined[j]
        tau = lo = hi = np.nan
        if ok.any():
            runs = np.flatnonzero(defined[i] & defined[j])
            if pooled:
                a, b = X[i, runs], X[j, runs]  # (R', N)
                tau = _kendall(a.ravel(), b.ravel())
                boot = _kendall_batch(
                    a[:, idx].transpose(1, 0, 2).reshape(n_boot, -1),
                    b[:, idx].transpose(1, 0, 2).reshape(n_boot, -1),
                )
            else:
                per_run = np.full(R, np.nan)
                per_boot = np.full((n_boot, R), np.nan)
                for r in runs:
                    per_run[r] = _kendall(X[i, r], X[j, r])
                    per_boot[:, r] = _kendall_batch(X[i, r][idx], X[j, r][idx])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    tau = float(np.nanmean(_row_values(c, per_run, None)[ok]))
                    boot = np.nanmean(_row_values(c, per_boot, weights)[:, ok], axis=1)
            lo, hi = _interval(boot)
        level = "image (pooled)" if pooled else "image"
        row = _row(level, metrics[i], metrics[j], tau, lo, hi, c, ok)
        out.append({**row, "n_images": N})
    return pd.DataFrame(out)


def metric_agreement(
    per_image: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    n_boot: int = 1000,
    n_boot_images: int = 200,
    seed: int = 0,
    max_images: int | None = 2000,
    vae_in_sweep: bool | None = None,
) -> pd.DataFrame:
    """Model-level and image-level τ in one long table (tables/metric_agreement.*)."""
    metrics = default_metrics(per_image, metrics)
    out = pd.concat(
        [
            run_rank_agreement(per_image, metrics, n_boot, seed, vae_in_sweep),
            image_rank_agreement(
                per_image,
                metrics,
                n_boot_images,
                seed,
                max_images=max_images,
                vae_in_sweep=vae_in_sweep,
            ),
        ],
        ignore_index=True,
    )
    c = cube(per_image, metrics[:1], vae_in_sweep)
    out.attrs["footnotes"] = [
        "Kendall τ-b between metrics, all oriented so lower = better (PSNR, SSIM, MS-SSIM "
        "negated): +1 = same ranking, −1 = reversed. BCE excess, not BCE: per-image BCE "
        "includes each target's own entropy and ranks image content.",
        f"level 'model': table rows (VAE and β-VAE β=1 counted once) ranked by their mean over "
        f"seeds and images; 95% interval from {n_boot} bootstrap resamples of the images (the "
        "same images for every run), each with a draw of every row's training variation "
        "(Student t with S−1 df from its seeds' spread). Rows closer than about 1.5 sd of a "
        "row mean bias τ itself towards 0 (noise scrambles their order), which no interval "
        "undoes.",
        f"level 'image': τ over the images of each run, averaged over each row's seeds and then "
        f"over rows; 95% interval from {n_boot_images} resamples of images, with seeds drawn as "
        "at the model level"
        + (f" (a fixed random subset of at most {max_images} images)." if max_images else "."),
        *c.notes,
        *checkpoint_note(per_image.attrs.get("metadata", {})),
        *seed_notes(c.rows["n_seeds"], c.rows["label"]),
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
