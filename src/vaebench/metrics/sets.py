"""Set-level generation metrics on Inception feature arrays.

FID with our own scipy Frechet distance (stats.frechet_distance; piq's iterative matrix
square root stops early and gives FID(x, x) ~ 1.5), unbiased KID over equal-size subsets, and
k-NN precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020) in
torch on the job's device.
The features: vaebench.metrics.features, on any space of vaebench.metrics.spaces.
"""

from __future__ import annotations

import numpy as np
import torch

from vaebench import VaebenchError


def _features(f, name: str) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"{name}: expected an (N >= 2, D) feature array, got shape {f.shape}")
    return f


def frechet_distance(f1, f2) -> float:
    """FID of two Inception feature sets: stats.frechet_distance (one implementation, torch
    free, so that the FID∞ curve uses the same arithmetic) after checking their shapes."""
    from vaebench import stats

    f1, f2 = _features(f1, "f1"), _features(f2, "f2")
    if f1.shape[1] != f2.shape[1]:
        raise ValueError(f"feature dimensions differ: {f1.shape[1]} vs {f2.shape[1]}")
    return stats.frechet_distance(f1, f2)


def kid(f1, f2, subset_size: int, n_subsets: int, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance: mean and std (ddof=0) of unbiased MMD^2 over subsets.

    Kernel k(x, y) = (x.y / D + 1)^3. Each subset draws `subset_size` rows from each set
    without replacement, so subset_size <= min(N1, N2): a row drawn twice would pair with
    itself in the within-set sums and bias them. Equal sizes keep the estimator unbiased
    whatever N1 and N2 are (piq.KID instead asserts or truncates on unequal N).
    """
    f1, f2 = _features(f1, "f1"), _features(f2, "f2")
    m, d = subset_size, f1.shape[1]
    if not 2 <= m <= min(len(f1), len(f2)):
        raise VaebenchError(
            f"config key metrics.kid.subset_size = {m} must be between 2 and min(N_real, "
            f"N_generated) = {min(len(f1), len(f2))}: lower it or evaluate more images"
        )
    rng = np.random.default_rng(seed)
    values = np.empty(n_subsets)
    for s in range(n_subsets):
        x = f1[rng.choice(len(f1), m, replace=False)]
        y = f2[rng.choice(len(f2), m, replace=False)]
        kxx, kyy, kxy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        values[s] = within - 2 * kxy.mean()
    return float(values.mean()), float(values.std())


def _sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return d2.clamp_(min=0.0)


def _row_step(n_cols: int) -> int:
    return max(1, (1 << 24) // max(n_cols, 1))  # ~128 MB of float64 distances per chunk


def _dist_chunks(query: torch.Tensor, ref: torch.Tensor):
    """Squared distances of the query rows to every ref row, one row chunk at a time."""
    step = _row_step(len(ref))
    for i in range(0, len(query), step):
        yield _sq_dists(query[i : i + step], ref)


def _knn_radii2(f: torch.Tensor, k: int) -> torch.Tensor:
    """Squared distance of each row to its k-th nearest other row (the row itself is 0th)."""
    return torch.cat([d.kthvalue(k + 1, dim=1).values for d in _dist_chunks(f, f)])


def _inside(query: torch.Tensor, ref: torch.Tensor, radii2: torch.Tensor) -> float:
    """Fraction of query rows inside at least one ball (ref_j, radius_j)."""
    hits = sum(int((d <= radii2[None, :]).any(1).sum()) for d in _dist_chunks(query, ref))
    return hits / len(query)


def precision_recall(
    real, fake, k: int = 3, device: str | torch.device = "cpu"
) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) on feature vectors.

    Each set's manifold is the union of balls around its points with radius the distance to
    the k-th nearest neighbour in the same set. Precision: share of fake points inside the
    real manifold (fidelity); recall: share of real points inside the fake manifold
    (coverage).

    The N x N distance matrices (four of 10,000 x 10,000 x 2,048 at the study's size, about
    1.6e12 FLOP) run in torch, in float64 and in row chunks, on the job's device: on the GPU
    where the job holds one, else on the CPU with the job's threads (NumPy here took minutes
    on one core while the job's GPU waited).
    """
    real, fake = _features(real, "real"), _features(fake, "fake")
    if not 1 <= k < min(len(real), len(fake)):
        raise VaebenchError(
            f"config key metrics.pr_k = {k} must be between 1 and "
            f"min(N_real, N_generated) - 1 = {min(len(real), len(fake)) - 1}"
        )
    r = torch.from_numpy(real).to(device)
    f = torch.from_numpy(fake).to(device)
    precision = _inside(f, r, _knn_radii2(r, k))
    recall = _inside(r, f, _knn_radii2(f, k))
    return precision, recall


def density_coverage(
    real, fake, k: int = 5, device: str | torch.device = "cpu"
) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020), as the authors' `prdc` package computes them.

    The real manifold is the union of balls around each real point with radius its distance
    to the k-th nearest other real point (as precision's). Density: the mean number of real
    balls that contain a fake point, over k (about 1 when the sets match, above 1 where fake
    points crowd dense real regions; it does not saturate at 1 as precision does, so one
    outlying real point cannot inflate it). Coverage: the share of real balls that contain at
    least one fake point (recall measured from the real side, robust to fake outliers). prdc's
    strict `<` at the ball's edge is kept. The same chunked torch distances as precision's.
    """
    real, fake = _features(real, "real"), _features(fake, "fake")
    if not 1 <= k < len(real):
        raise VaebenchError(
            f"config key metrics.dc_k = {k} must be between 1 and N_real - 1 = {len(real) - 1}"
        )
    r = torch.from_numpy(real).to(device)
    f = torch.from_numpy(fake).to(device)
    radii2 = _knn_radii2(r, k)
    inside_count = 0
    covered = torch.zeros(len(r), dtype=torch.bool, device=r.device)
    for d in _dist_chunks(f, r):
        inside = d < radii2[None, :]
        inside_count += int(inside.sum())
        covered |= inside.any(0)
    return inside_count / (k * len(f)), float(covered.double().mean())


# CMMD's constants, as google-research/cmmd's distance.py sets them
CMMD_SIGMA = 10.0
CMMD_SCALE = 1000.0


def _mean_kernel(a: torch.Tensor, b: torch.Tensor, gamma: float) -> float:
    """Mean of exp(-gamma * |a_i - b_j|^2) over all pairs (diagonal included), by row chunks."""
    total = sum(float(torch.exp(-gamma * d).sum()) for d in _dist_chunks(a, b))
    return total / (len(a) * len(b))


def cmmd(real, fake, device: str | torch.device = "cpu") -> float:
    """CMMD (Jayasumana et al. 2024): 1000 · MMD² with a Gaussian kernel of bandwidth σ = 10 on
    L2-normalised CLIP embeddings.

    The estimator is google-research/cmmd's: the minimum-variance one of Gretton et al. 2012,
    Eq. 5, whose kernel means include the diagonal (k(x, x) = 1), not the unbiased U-statistic;
    the paper's point that CMMD does not depend on N holds for it up to O(1/N). Float64, in row
    chunks, on the job's device.
    """
    real, fake = _features(real, "real"), _features(fake, "fake")
    x, y = torch.from_numpy(real).to(device), torch.from_numpy(fake).to(device)
    gamma = 1.0 / (2 * CMMD_SIGMA**2)
    k_xx, k_yy, k_xy = (_mean_kernel(a, b, gamma) for a, b in ((x, x), (y, y), (x, y)))
    return CMMD_SCALE * (k_xx + k_yy - 2 * k_xy)


def scores(real, fake, *, pr_k: int, dc_k: int, kid_subset: int, kid_n: int, seed: int,
           device: str | torch.device = "cpu", with_cmmd: bool = False) -> dict:
    """Every set-level metric of one sample set against the reference set on one feature
    space: FD@N, FD∞ (FD(N) = FD∞ + k/N fitted on subsets, stats.fid_curve, with the fit's
    RMS), KD (KID's estimator, mean and std over subsets), precision/recall (k = pr_k),
    density/coverage (k = dc_k) and, where asked, CMMD. The same formulas on every space."""
    from vaebench import stats

    kd_mean, kd_std = kid(real, fake, kid_subset, kid_n, seed=seed)
    precision, recall = precision_recall(real, fake, pr_k, device)
    density, coverage = density_coverage(real, fake, dc_k, device)
    sizes, fds = stats.fid_curve(real, fake, seed=seed)
    fd_inf, _, fd_inf_residual = stats.fid_infinity(sizes, fds)
    return {
        "fd": frechet_distance(real, fake),
        "fd_inf": fd_inf,
        "fd_inf_residual": fd_inf_residual,
        "kd_mean": kd_mean,
        "kd_std": kd_std,
        "precision": precision,
        "recall": recall,
        "density": density,
        "coverage": coverage,
        "cmmd": cmmd(real, fake, device) if with_cmmd else float("nan"),
        "fd_sizes": [int(n) for n in sizes],
    }


def scored(real, fake, mcfg: dict, seed: int, device: str | torch.device = "cpu",
           with_cmmd: bool = False) -> tuple[dict, dict]:
    """`scores` at a study's metric settings (`mcfg`: pr_k, dc_k, kid), and those settings as
    the metric files record them; KID's subsets no larger than either set. One place for
    the Inception job (jobs_metrics) and the other spaces' (jobs_spaces)."""
    subset = min(mcfg["kid"]["subset_size"], len(real), len(fake))
    s = scores(real, fake, pr_k=mcfg["pr_k"], dc_k=mcfg["dc_k"], kid_subset=subset,
               kid_n=mcfg["kid"]["n_subsets"], seed=seed, device=device,
               with_cmmd=with_cmmd)  # fmt: skip
    settings = {
        "pr_k": mcfg["pr_k"],
        "dc_k": mcfg["dc_k"],
        "kid_subset_size": subset,
        "kid_n_subsets": mcfg["kid"]["n_subsets"],
        "fid_sizes": s.pop("fd_sizes"),
        "fid_subset_seed": seed,
    }
    return s, settings
