"""The `gmm` sampler's fit: scikit-learn's EM for a full-covariance Gaussian mixture, step for
step, in torch on the job's device.

Pythae's GaussianMixtureSampler fits `sklearn.mixture.GaussianMixture(covariance_type="full")`
in NumPy. For VQ-VAE's code grids that is a mixture in 1,024 dimensions (4 x 4 codes of 64 at
the study's size): each EM iteration costs about 3·N·K·D² ≈ 3·10¹¹ FLOP at N = 10,000 codes
and K = 10, seconds per iteration on one core while the job's GPU waits. This module runs the
same algorithm (the same k-means initialisation, by scikit-learn itself; the same E and M
steps, regularisation, stopping rule and iteration cap) as dense float64 linear algebra in
torch: on the GPU where the job holds one, else on the CPU with the job's threads. It
returns a fitted `GaussianMixture`, so that drawing the samples is scikit-learn's own code.
tests/test_gmm.py checks the parameters and samples against scikit-learn's fit.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from vaebench import VaebenchError

MAX_ITER, TOL, REG_COVAR = 2000, 1e-3, 1e-6  # GaussianMixture's as Pythae's sampler sets them


def _m_step(x: torch.Tensor, resp: torch.Tensor, reg: float):
    """Weights (unnormalised counts), means and regularised full covariances."""
    nk = resp.sum(0) + 10 * torch.finfo(resp.dtype).eps
    means = (resp.T @ x) / nk[:, None]
    eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    covs = torch.stack([((x - m).T * r) @ (x - m) / n + reg * eye
                        for m, r, n in zip(means, resp.T, nk, strict=True)])  # fmt: skip
    return nk, means, covs


def _precision_cholesky(covs: torch.Tensor) -> torch.Tensor:
    """Upper-triangular U with U Uᵀ = Σ⁻¹ per component (scikit-learn's precisions_cholesky_)."""
    chol, info = torch.linalg.cholesky_ex(covs)
    if bool((info > 0).any()):
        raise VaebenchError(
            "the gmm sampler's mixture has a component with a singular covariance (fewer "
            "distinct latents than dimensions in it): lower sampling.gmm.n_components"
        )
    eye = torch.eye(covs.shape[-1], dtype=covs.dtype, device=covs.device).expand_as(covs)
    return torch.linalg.solve_triangular(chol, eye, upper=False).transpose(-1, -2)


def _e_step(x: torch.Tensor, weights, means, prec_chol) -> tuple[float, torch.Tensor]:
    """Mean log-likelihood of the data and the log responsibilities."""
    d = x.shape[1]
    log_det = torch.log(torch.diagonal(prec_chol, dim1=-2, dim2=-1)).sum(-1)
    maha = torch.stack([((x @ u - m @ u) ** 2).sum(1)
                        for m, u in zip(means, prec_chol, strict=True)], 1)  # fmt: skip
    weighted = -0.5 * (d * math.log(2 * math.pi) + maha) + log_det + torch.log(weights)
    norm = torch.logsumexp(weighted, 1)
    return float(norm.mean()), weighted - norm[:, None]


def fit(latents: np.ndarray, n_components: int, seed: int, device="cpu"):
    """A `GaussianMixture(n_components, covariance_type="full", max_iter=2000, tol=1e-3,
    random_state=seed)` fitted on the rows of `latents` as scikit-learn fits it."""
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture

    x_np = np.asarray(latents, dtype=np.float64)
    n, k = len(x_np), min(n_components, len(x_np))
    labels = KMeans(n_clusters=k, n_init=1, random_state=np.random.RandomState(seed)).fit(x_np)
    x = torch.from_numpy(x_np).to(device)
    resp = torch.zeros(n, k, dtype=x.dtype, device=x.device)
    resp[torch.arange(n), torch.from_numpy(labels.labels_).long().to(x.device)] = 1
    weights, means, covs = _m_step(x, resp, REG_COVAR)
    weights = weights / n
    prec_chol = _precision_cholesky(covs)
    lower, converged, iterations = -math.inf, False, 0
    while iterations < MAX_ITER:
        iterations += 1
        previous = lower
        lower, log_resp = _e_step(x, weights, means, prec_chol)
        weights, means, covs = _m_step(x, log_resp.exp(), REG_COVAR)
        weights = weights / weights.sum()
        prec_chol = _precision_cholesky(covs)
        if abs(lower - previous) < TOL:
            converged = True
            break
    gm = GaussianMixture(k, covariance_type="full", max_iter=MAX_ITER, tol=TOL,
                         reg_covar=REG_COVAR, random_state=seed)  # fmt: skip
    as_np = lambda t: t.cpu().numpy()  # noqa: E731
    gm.weights_, gm.means_, gm.covariances_ = as_np(weights), as_np(means), as_np(covs)
    gm.precisions_cholesky_ = as_np(prec_chol)
    gm.precisions_ = as_np(prec_chol @ prec_chol.transpose(-1, -2))
    gm.converged_, gm.n_iter_, gm.lower_bound_ = converged, iterations, lower
    gm.n_features_in_ = x_np.shape[1]
    return gm
