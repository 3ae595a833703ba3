"""The gmm sampler's torch EM (vaebench.gmm) against scikit-learn's GaussianMixture itself."""

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture

from vaebench import VaebenchError, gmm


def _blobs(n: int, d: int, k: int, seed: int) -> np.ndarray:
    """k anisotropic Gaussian clusters in d dimensions: EM needs several iterations."""
    rng = np.random.default_rng(seed)
    centres = 3 * rng.standard_normal((k, d))
    mix = rng.standard_normal((k, d, d)) / np.sqrt(d)
    labels = rng.integers(k, size=n)
    return centres[labels] + np.einsum("nd,nde->ne", rng.standard_normal((n, d)), mix[labels])


@pytest.mark.parametrize("n, d, k, seed", [(600, 8, 5, 0), (400, 24, 3, 1), (300, 4, 10, 2)])
def test_the_torch_em_is_scikit_learns_fit(n, d, k, seed):
    """Same k-means start, same steps and stopping rule: the same mixture and the same draws.
    The tolerances cover the two BLAS libraries' summation order, nothing more: both run in
    float64, and EM is a contraction near its fixed point."""
    x = _blobs(n, d, k, seed)
    ours = gmm.fit(x, k, seed)
    ref = GaussianMixture(k, covariance_type="full", max_iter=2000, tol=1e-3,
                          random_state=seed).fit(x)  # fmt: skip
    assert ours.n_iter_ == ref.n_iter_ > 1 and ours.converged_ == ref.converged_
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-9)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(ref, name), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.sample(50)[0], ref.sample(50)[0], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ours.score_samples(x), ref.score_samples(x), rtol=1e-8)


def test_a_singular_component_names_the_config_key():
    """scikit-learn's ill-defined covariance: here rank one at a scale where reg_covar (1e-6)
    is below the rounding of the rest, so the Cholesky factorisation fails."""
    x = np.random.default_rng(0).standard_normal((60, 1)) * 1e9 @ np.ones((1, 2))
    with pytest.raises(VaebenchError, match=r"sampling\.gmm\.n_components"):
        gmm.fit(x, 2, 0)
