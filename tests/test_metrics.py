"""Metric properties on real photo crops, offline, with randomly initialised network weights.

The LPIPS trunk and the Inception are random stand-ins (write_random_weights), so tests check
properties (identity, monotonicity, batching, agreement with independent implementations),
never numbers of the real networks.
"""

from __future__ import annotations

import socket

import numpy as np
import piq
import pytest
import scipy.linalg
import torch
import torchvision.transforms.functional as TF
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from vaebench import VaebenchError
from vaebench.metrics import features, registry
from vaebench.metrics import images as M
from vaebench.metrics import pixel as px
from vaebench.metrics import sets as FM
from vaebench.metrics.standins import write_random_weights

NOISE = (0.02, 0.05, 0.1, 0.2)
BLUR = (0.6, 1.0, 1.6, 2.5)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any connection attempt fails the test: metric code must never reach the network."""

    def refuse(*args, **kwargs):
        raise AssertionError("metric code tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


@pytest.fixture(scope="session")
def weights_cache(tmp_path_factory):
    """A torch-hub cache holding random stand-ins for the AlexNet and Inception files."""
    cache = tmp_path_factory.mktemp("weights")
    write_random_weights(cache)
    return cache


@pytest.fixture(scope="session")
def learned(weights_cache):
    """Every per-image network, the optional LPIPS-VGG included."""
    torch.set_num_threads(2)
    return M.load_learned(weights_cache, lpips_vgg=True)


@pytest.fixture(scope="session")
def crops() -> np.ndarray:
    """16 RGB 64 x 64 uint8 crops (N x 3 x H x W) of scikit-image's bundled photos."""
    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    out = [p[i : i + 64, j : j + 64] for p in photos for i in (40, 150) for j in (60, 200)]
    return np.stack(out).transpose(0, 3, 1, 2).copy()


def _unit(u8: np.ndarray) -> np.ndarray:
    return u8.astype(np.float64) / 255


def _noisy(u8: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(u8.shape)
    return np.clip(_unit(u8) + sigma * noise, 0, 1).astype(np.float32)


def _blurred(u8: np.ndarray, sigma: float) -> np.ndarray:
    size = 2 * int(np.ceil(3 * sigma)) + 1
    return TF.gaussian_blur(
        torch.from_numpy(_unit(u8)).float(), [size, size], [sigma, sigma]
    ).numpy()


def test_identical_images(crops, learned):
    df = M.reconstruction_metrics(crops, crops, learned=learned)
    assert list(df.columns) == list(M.METRIC_COLUMNS) and len(df) == len(crops)
    assert (df.dtypes == np.float64).all()
    assert (df["mse"] == 0).all()
    assert np.allclose(df["ssim"], 1, atol=1e-6) and np.allclose(df["ms_ssim"], 1, atol=1e-6)
    assert np.allclose(df["gmsd"], 0, atol=1e-6) and np.allclose(df["lpips"], 0, atol=1e-6)
    # piq's eps caps PSNR of identical images at -10 log10(1e-8) = 80 dB instead of inf.
    assert np.allclose(df["psnr"], 80.0)
    # BCE of x against itself is the (positive) entropy of x, not 0; the excess is 0.
    assert (df["bce"] > 0).all()
    assert (df["bce_excess"] == 0).all()


@pytest.mark.parametrize("kind", ["noise", "blur"])
def test_every_metric_worsens_monotonically(crops, learned, kind):
    make, levels = (_noisy, NOISE) if kind == "noise" else (_blurred, BLUR)
    dfs = [M.reconstruction_metrics(crops, make(crops, s), learned=learned) for s in levels]
    # every per-image metric of the registry, in the direction it declares
    higher_is_worse = {m: -1 if m in registry.HIGHER_IS_BETTER else 1 for m in registry.IMAGE}
    assert higher_is_worse["ssim"] == -1 and higher_is_worse["mdsi"] == 1
    for col, sign in higher_is_worse.items():
        values = np.stack([sign * df[col].to_numpy() for df in dfs])  # levels x images
        assert (np.diff(values, axis=0) > 0).all(), f"{col} is not monotone in {kind}"


def test_formula_metrics_score_identical_images_as_perfect(crops, learned):
    """piq's formula-only metrics through the suite: identical images get the perfect score of
    the metric's declared kind (similarities 1, deviations 0), and distinct images do not."""
    same = M.reconstruction_metrics(crops, crops, learned=learned)
    noisy = M.reconstruction_metrics(crops, _noisy(crops, 0.1), learned=learned)
    for key in ("haarpsi", "mdsi", "vsi", "fsimc", "ms_gmsd"):
        perfect = 1.0 if key in registry.HIGHER_IS_BETTER else 0.0
        np.testing.assert_allclose(same[key], perfect, atol=1e-5, err_msg=key)
        assert (abs(noisy[key] - perfect) > 1e-3).all(), key


def test_images_too_small_for_the_formula_metrics_name_the_config_key(learned):
    x = np.zeros((2, 3, 16, 16), np.uint8)
    with pytest.raises(VaebenchError, match=r"dataset\.image_size.*17 px"):
        M.reconstruction_metrics(x, x, learned=learned, ms_ssim_kernel=3,
                                 ms_ssim_scales=1)  # fmt: skip


def test_ssim_and_psnr_agree_with_scikit_image(crops, learned):
    x_hat = _noisy(crops, 0.1)
    df = M.reconstruction_metrics(crops, x_hat, learned=learned)
    for i in range(len(crops)):
        ref = _unit(crops[i]).transpose(1, 2, 0)
        rec = x_hat[i].astype(np.float64).transpose(1, 2, 0)
        ssim = structural_similarity(
            ref,
            rec,
            channel_axis=-1,
            data_range=1,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
        assert abs(df["ssim"][i] - ssim) < 1e-4
        assert abs(df["psnr"][i] - peak_signal_noise_ratio(ref, rec, data_range=1)) < 1e-4
    as_torch = torch.from_numpy(x_hat), torch.from_numpy(_unit(crops)).float()
    np.testing.assert_allclose(df["psnr"], piq.psnr(*as_torch, reduction="none"), atol=1e-4)


def test_bce_is_torch_binary_cross_entropy_summed_per_image(crops, learned):
    x_hat = _noisy(crops, 0.3)  # clipping puts exact 0s and 1s in x_hat: the log clamp matters
    df = M.reconstruction_metrics(crops, x_hat, learned=learned)
    for i in range(len(crops)):
        ref = torch.from_numpy(_unit(crops[i]))
        rec = torch.from_numpy(x_hat[i]).double()
        expected = torch.nn.functional.binary_cross_entropy(rec, ref, reduction="sum").item()
        assert df["bce"][i] == pytest.approx(expected, rel=1e-6)
        in_float32 = torch.nn.functional.binary_cross_entropy(
            rec.float(), ref.float(), reduction="none"
        )
        assert df["bce"][i] == pytest.approx(in_float32.double().sum().item(), rel=1e-8)


def test_bce_excess_is_bce_minus_target_entropy(crops, learned):
    """bce_excess = bce - sum H(x) = sum KL(Bern(x) || Bern(x_hat)) >= 0, by scipy's entr."""
    from scipy.special import entr, rel_entr

    x_hat = _noisy(crops, 0.3)  # exact 0s and 1s in x_hat, and x has 0s and 1s: 0 log 0 = 0
    df = M.reconstruction_metrics(crops, x_hat, learned=learned)
    x, r = _unit(crops), x_hat.astype(np.float64)
    entropy = (entr(x) + entr(1 - x)).sum((1, 2, 3))
    assert (df["bce_excess"] >= 0).all()
    diff = np.abs(df["bce_excess"] - (df["bce"] - entropy))
    assert (diff <= 2e-6 * df["bce"]).all(), diff.max()
    # Where x_hat is not 0 or 1 (no -100 clamp), the excess is the Bernoulli KL itself.
    r32 = np.clip(r, 1e-3, 1 - 1e-3).astype(np.float32)
    r = r32.astype(np.float64)
    kl = (rel_entr(x, r) + rel_entr(1 - x, 1 - r)).sum((1, 2, 3))
    soft = M.reconstruction_metrics(crops, r32, learned=learned)
    np.testing.assert_allclose(soft["bce_excess"], kl, rtol=1e-4)


def _many_crops() -> np.ndarray:
    """Every 64 x 64 tile of five bundled photos (270 crops of faces, fur, food, sky, tissue)."""
    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(),
              data.immunohistochemistry()]  # fmt: skip
    tiles = []
    for p in photos:
        for i in range(0, p.shape[0] - 63, 64):
            tiles += [p[i : i + 64, j : j + 64] for j in range(0, p.shape[1] - 63, 64)]
    return np.stack(tiles).transpose(0, 3, 1, 2).copy()


def test_bce_excess_ranks_reconstruction_quality_where_bce_ranks_content(learned):
    """Across images, bce follows each target's own entropy; bce_excess follows the error.

    Each crop gets its own blur or noise of moderate, random strength (like a model's
    reconstructions of different test images): Kendall tau with MSE across images is > 0.5
    for bce_excess and is not for bce.
    """
    from scipy.stats import kendalltau

    x = _many_crops()
    rng = np.random.default_rng(0)
    x_hat = np.empty(x.shape, np.float32)
    for i in range(len(x)):
        if i % 2:
            x_hat[i] = _blurred(x[i : i + 1], float(rng.uniform(0.6, 1.6)))[0]
        else:
            x_hat[i] = _noisy(x[i : i + 1], float(rng.uniform(0.02, 0.08)), seed=i)[0]
    df = M.reconstruction_metrics(x, x_hat, learned=learned)
    tau_excess = kendalltau(df["bce_excess"], df["mse"]).statistic
    tau_bce = kendalltau(df["bce"], df["mse"]).statistic
    assert len(x) >= 200 and tau_excess > 0.5 and not tau_bce > 0.5, (tau_excess, tau_bce)


def test_batched_equals_one_at_a_time(crops, learned):
    x, x_hat = crops[:12], _noisy(crops[:12], 0.1)  # chunks of 8 + 4, then 12 of 1
    batched = M.reconstruction_metrics(x, x_hat, learned=learned, batch_size=8)
    single = M.reconstruction_metrics(x, x_hat, learned=learned, batch_size=1)
    for col in M.METRIC_COLUMNS:
        np.testing.assert_allclose(batched[col], single[col], rtol=1e-9, atol=1e-5, err_msg=col)


def test_inputs_uint8_float_torch_and_clamping(crops, learned):
    x_hat = _noisy(crops[:4], 0.1)
    ref = M.reconstruction_metrics(crops[:4], x_hat, learned=learned)
    as_float = M.reconstruction_metrics(
        torch.from_numpy(_unit(crops[:4])), torch.from_numpy(x_hat), learned=learned
    )
    np.testing.assert_allclose(ref.to_numpy(), as_float.to_numpy(), rtol=1e-6, atol=1e-6)
    overshoot = x_hat * 1.3 - 0.15  # decoder outputs outside [0, 1] are clamped, not rejected
    clamped = M.reconstruction_metrics(crops[:4], np.clip(overshoot, 0, 1), learned=learned)
    raw = M.reconstruction_metrics(crops[:4], overshoot, learned=learned)
    np.testing.assert_allclose(raw.to_numpy(), clamped.to_numpy())
    with pytest.raises(ValueError, match="reference"):
        M.reconstruction_metrics(_unit(crops[:4]) * 2, x_hat, learned=learned)


def test_ms_ssim_settings_too_large_for_64px_name_the_config_key(crops, learned):
    with pytest.raises(VaebenchError, match=r"metrics\.ms_ssim.*161x161"):
        M.reconstruction_metrics(
            crops[:2], crops[:2], learned=learned, ms_ssim_kernel=11, ms_ssim_scales=5
        )
    ok = M.reconstruction_metrics(
        crops[:2],
        _noisy(crops[:2], 0.1),
        learned=learned,
        ms_ssim_kernel=11,
        ms_ssim_scales=3,
    )
    assert ok["ms_ssim"].between(0, 1).all()
    assert M.ms_ssim_weights(5) == pytest.approx(M.MS_SSIM_PAPER_WEIGHTS, rel=1e-3)
    assert sum(M.ms_ssim_weights(4)) == pytest.approx(1.0)


def test_metric_settings_record_versions_and_ms_ssim():
    s = M.metric_settings(7, 4)
    assert s["ms_ssim"]["min_size"] == 49 and len(s["ms_ssim"]["scale_weights"]) == 4
    assert s["lpips"] == {"net": "alex", "version": "0.1", "input_range": [-1, 1]}
    assert s["versions"]["lpips"] == "0.1.4" and s["versions"]["piq"] == "0.8.0"


def test_inception_features_offline(crops, weights_cache):
    feats = features.extract("inception", crops[:3], weights_cache, batch_size=2)
    assert feats.shape == (3, 2048) and feats.dtype == np.float64 and np.isfinite(feats).all()
    assert feats.std(0).max() > 0  # random weights still separate different images
    assert abs(FM.frechet_distance(feats, feats)) < 1e-6


def _reference_fid(f1, f2):
    """pytorch-fid's formula with scipy.linalg.sqrtm (well-conditioned inputs only)."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_frechet_distance():
    rng = np.random.default_rng(0)
    f1 = rng.standard_normal((500, 32)) @ rng.standard_normal((32, 32))
    f2 = rng.standard_normal((400, 32)) * 1.5 + 0.3
    assert abs(FM.frechet_distance(f1, f1)) < 1e-6
    shift = rng.standard_normal(32)
    assert FM.frechet_distance(f1, f1 + shift) == pytest.approx(shift @ shift, rel=1e-9)
    assert FM.frechet_distance(f1, f2) == pytest.approx(_reference_fid(f1, f2), rel=1e-8)
    assert FM.frechet_distance(f1, f2) == pytest.approx(FM.frechet_distance(f2, f1), rel=1e-10)
    # Fewer samples than dimensions (the test and demo regime): singular covariances.
    g1 = rng.standard_normal((20, 2048)) * 3
    assert abs(FM.frechet_distance(g1, g1)) < 1e-6
    assert FM.frechet_distance(g1, g1 - 2.0) == pytest.approx(4.0 * 2048, rel=1e-9)
    g1, g2 = rng.standard_normal((20, 128)) * 3, rng.standard_normal((30, 128)) + 1
    s1, s2 = np.cov(g1, rowvar=False), np.cov(g2, rowvar=False)
    eig = np.sqrt(np.clip(np.linalg.eigvals(s1 @ s2).real, 0, None)).sum()  # slow route
    mu = g1.mean(0) - g2.mean(0)
    expected = mu @ mu + np.trace(s1) + np.trace(s2) - 2 * eig
    assert FM.frechet_distance(g1, g2) == pytest.approx(expected, rel=1e-6)


def test_kid():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((600, 64)), rng.standard_normal((500, 64))
    same_mean, same_std = FM.kid(a, b, subset_size=200, n_subsets=20, seed=0)
    shifted_mean, _ = FM.kid(a, b + 0.5, subset_size=200, n_subsets=20, seed=0)
    assert abs(same_mean) < 3 * same_std + 1e-3  # unbiased: ~0 for one distribution
    assert shifted_mean > 20 * max(abs(same_mean), same_std)
    assert FM.kid(a, b, 200, 20, seed=0) == FM.kid(a, b, 200, 20, seed=0)
    # One subset of everything is deterministic: same estimator as piq.KID.
    ours, _ = FM.kid(a[:300], b[:300] + 0.2, subset_size=300, n_subsets=1)
    theirs = piq.KID()(torch.from_numpy(a[:300]), torch.from_numpy(b[:300] + 0.2)).item()
    assert ours == pytest.approx(theirs, rel=1e-9)
    with pytest.raises(VaebenchError, match=r"metrics\.kid\.subset_size"):
        FM.kid(a, b, subset_size=501, n_subsets=2)


def test_precision_recall():
    rng = np.random.default_rng(2)
    real = rng.standard_normal((300, 16))
    assert FM.precision_recall(real, real, k=3) == (1.0, 1.0)
    assert FM.precision_recall(real, real + 100.0, k=3) == (0.0, 0.0)
    # Fakes squeezed to a small ball around the real mean: faithful, but poor coverage.
    precision, recall = FM.precision_recall(real, 0.05 * rng.standard_normal((300, 16)), k=3)
    assert precision == 1.0 and recall < 0.2
    with pytest.raises(VaebenchError, match=r"metrics\.pr_k"):
        FM.precision_recall(real[:3], real[:3], k=3)


def test_precision_recall_equals_the_definition_computed_naively():
    """The chunked torch k-NN (float64, one chunk per ~128 MB of distances) counts exactly
    what the definition says, computed here on full distance matrices with np.sort."""

    def naive(real, fake, k):
        d = lambda a, b: np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1))  # noqa: E731
        r_real = np.sort(d(real, real), 1)[:, k]
        r_fake = np.sort(d(fake, fake), 1)[:, k]
        precision = (d(fake, real) <= r_real[None]).any(1).mean()
        recall = (d(real, fake) <= r_fake[None]).any(1).mean()
        return precision, recall

    rng = np.random.default_rng(5)
    real = rng.standard_normal((400, 8))
    fake = 1.3 * rng.standard_normal((250, 8)) + 0.4  # partly overlapping: values inside (0, 1)
    for k in (1, 3, 5):
        ours = FM.precision_recall(real, fake, k=k)
        assert 0 < ours[0] < 1 and 0 < ours[1] < 1
        assert ours == pytest.approx(naive(real, fake, k), abs=1e-12)


@pytest.mark.parametrize("kernel, scales", [(11, 3), (7, 4)])
def test_ssim_ms_ssim_and_lpips_equal_the_libraries(crops, learned, kernel, scales):
    """The suite's faster SSIM / MS-SSIM / GMSD / LPIPS paths give piq's and lpips' numbers.

    piq's SSIMs run in float64 here: in float32 both implementations carry ~1e-5 of rounding
    (E[x^2] - mu^2 cancels), ours the less of the two.
    """
    ref = torch.from_numpy(_unit(crops)).float()
    rec = torch.from_numpy(_noisy(crops, 0.1))
    df = M.reconstruction_metrics(
        crops, rec.numpy(), learned=learned, ms_ssim_kernel=kernel, ms_ssim_scales=scales
    )
    weights = torch.tensor(M.ms_ssim_weights(scales))
    rec64, ref64 = rec.double(), ref.double()
    expected = {
        "ssim": piq.ssim(rec64, ref64, data_range=1.0, reduction="none"),
        "ms_ssim": piq.multi_scale_ssim(
            rec64,
            ref64,
            kernel_size=kernel,
            data_range=1.0,
            reduction="none",
            scale_weights=weights.double(),
        ),
        "gmsd": piq.gmsd(rec, ref, data_range=1.0, reduction="none"),
    }
    with torch.inference_mode():
        expected["lpips"] = learned.lpips(rec * 2 - 1, ref * 2 - 1).flatten()
    for col, values in expected.items():
        np.testing.assert_allclose(df[col], values.double(), rtol=0, atol=3e-5, err_msg=col)


def test_gmsd_equals_piq_on_odd_sizes_and_flat_images():
    """Odd sides take piq's zero padding before pooling; flat images give 0 exactly as piq."""
    rng = np.random.default_rng(4)
    ref = torch.from_numpy(rng.random((5, 3, 45, 38), dtype=np.float32))
    rec = (ref + 0.1 * torch.from_numpy(rng.standard_normal(ref.shape, dtype=np.float32))).clamp(
        0, 1
    )
    ref[0], rec[0] = 0.5, 0.5  # no gradients at all: similarity t / t = 1 everywhere
    expected = piq.gmsd(rec, ref, data_range=1.0, reduction="none")
    np.testing.assert_allclose(px.gmsd(rec, ref), expected, rtol=0, atol=1e-6)
    assert px.gmsd(rec, ref)[0] == 0


def test_density_coverage_equal_the_authors_prdc_package():
    """Density and coverage against prdc 0.2's compute_prdc (Naeem et al.'s own code) on
    fixed features: the same counts, so equal to float rounding of the final mean."""
    from prdc import compute_prdc

    rng = np.random.default_rng(7)
    real = rng.standard_normal((300, 12))
    for fake in (1.2 * rng.standard_normal((200, 12)) + 0.3, real[:150] + 1e-3):
        for k in (3, 5):
            ours = FM.density_coverage(real, fake, k=k)
            theirs = compute_prdc(real, fake, nearest_k=k)
            assert ours == pytest.approx((theirs["density"], theirs["coverage"]), abs=1e-12)
    # the properties that tell the two apart from precision and recall
    same = FM.density_coverage(real, real, k=5)
    assert same[1] == 1.0 and 0.5 < same[0] < 1.5  # density ~1 for one distribution
    squeezed = FM.density_coverage(real, 0.05 * rng.standard_normal((300, 12)), k=5)
    assert squeezed[0] > 1.5 and squeezed[1] < 0.3  # crowded in a dense region: poor coverage
    with pytest.raises(VaebenchError, match=r"metrics\.dc_k"):
        FM.density_coverage(real[:5], real[:5], k=5)


def test_the_readme_shows_the_metric_registry():
    """The README's metric table is the registry's (`python -m vaebench.metrics.registry`)."""
    from pathlib import Path

    from vaebench.metrics import registry

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert registry.markdown_table() in readme


def test_lpips_vgg_equals_the_lpips_package_on_the_same_files(crops, weights_cache):
    """LPIPS-VGG through the suite (one batched trunk pass) equals lpips' own forward with
    net="vgg", both on the same VGG16 file (a stand-in: the formula is what is checked)."""
    import lpips

    from vaebench.metrics.weights import hub_dir

    rec = _noisy(crops, 0.1)
    learned = M.load_learned(weights_cache, lpips_vgg=True)
    ours = M.reconstruction_metrics(crops, rec, learned=learned)["lpips_vgg"]
    with hub_dir(weights_cache), torch.inference_mode():
        net = lpips.LPIPS(net="vgg", version="0.1", verbose=False).eval()
        theirs = net(torch.from_numpy(rec).float() * 2 - 1,
                     torch.from_numpy(_unit(crops)).float() * 2 - 1).flatten()  # fmt: skip
    assert ours.notna().all() and (ours > 0).all()
    np.testing.assert_allclose(ours, theirs.double(), rtol=0, atol=1e-5)  # batched vs not
    off = M.reconstruction_metrics(crops[:2], rec[:2], learned=M.load_learned(weights_cache))
    assert off["lpips_vgg"].isna().all()  # off by default: a null column, never a number


def test_dists_equals_torchmetrics_and_piq_on_the_same_files(crops, weights_cache, tmp_path):
    """DISTS through the suite equals torchmetrics' own function and piq.DISTS, all three
    reading the same VGG16 file (a stand-in; the values do not matter, the formula does) and
    the authors' α, β (piq downloads its own copy of them; here it is given torchmetrics'
    file under piq's cache name, so this checks piq's formula, not piq's file)."""
    import shutil

    from torchmetrics.functional.image import dists as tm_dists

    from vaebench.metrics.weights import VGG16, hub_dir, weight_path

    cache = tmp_path / "cache"
    shutil.copytree(weights_cache, cache)
    shutil.copy(tm_dists._PATH_WEIGHT_DISTS, weight_path(cache, VGG16).parent / "dists_weights.pt")
    assert M.sha256_file(tm_dists._PATH_WEIGHT_DISTS) == M.DISTS_AB_SHA256
    ref = torch.from_numpy(_unit(crops)).float()
    rec = torch.from_numpy(_noisy(crops, 0.1))
    learned = M.load_learned(cache)
    ours = M.reconstruction_metrics(crops, rec.numpy(), learned=learned)["dists"]
    with hub_dir(cache), torch.inference_mode():
        theirs = tm_dists.deep_image_structure_and_texture_similarity(rec, ref, reduction="none")
        piqs = piq.DISTS(reduction="none")(rec, ref)
    assert ours.notna().all() and (ours > 0).all()
    np.testing.assert_allclose(ours, theirs.double(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(ours, piqs.double(), rtol=0, atol=1e-5)
    same = M.reconstruction_metrics(crops[:4], crops[:4], learned=learned)["dists"]
    np.testing.assert_allclose(same, 0, atol=1e-5)
