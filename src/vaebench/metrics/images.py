"""Image metrics: per-image reconstruction metrics and set-level generation metrics.

The only module that imports lpips, and with vaebench.metrics.formula (HaarPSI, MDSI, VSI,
FSIMc, MS-GMSD, also computed here per image) the only ones that import piq. Images are
N x 3 x H x W arrays (numpy, memmap or torch); uint8 is divided by 255, float must already
be in [0, 1]. The candidate image is clamped to [0, 1] before any metric: piq asserts the
range, and decoder outputs overshoot.
Work runs in chunks (config metrics.batch_size, default 64: the fastest on 2 CPU cores) under
inference mode with every network in eval(); per-metric costs and the batched-vs-one-at-a-time
ratio: benchmarks/bench_metrics.py.

Per-image columns (float64), candidate x_hat against reference x:
  bce      sum over C*H*W of torch's binary_cross_entropy(x_hat, x) in nats, as Pythae's
           'bce' loss. No extra eps: torch clamps each log term at -100, so a pixel costs at
           most 100 nats (the same as clamping x_hat to [e^-100, 1 - e^-100] inside the logs).
           Per-pixel terms in float32 (as in training) by torch's own formula,
           (x - 1) max(log1p(-x_hat), -100) - x max(log(x_hat), -100), with vectorised logs
           (torch's CPU kernel is scalar and 2.5x slower; the sums agree within 1e-8
           relative), summed in float64: within 1e-6 relative of an all-float64 computation.
           On continuous pixels this includes the target's own entropy: sum BCE(x_hat, x) =
           sum H(x) + sum KL(Bern(x) || Bern(x_hat)), and on photo crops sum H(x) is most of
           it, so across images bce ranks image content, not reconstruction quality.
  bce_excess
           bce - sum over C*H*W of H(x), H the binary entropy of the target pixel (0 log 0 =
           0): the KL part, >= 0 and exactly 0 for identical images. H(x) is the same torch
           formula evaluated at x_hat = x (the -100 clamp gives 0 log 0 = 0), so identity
           gives 0 bitwise; float rounding below 0 is clipped at 0. Use it, not bce, to
           compare reconstructions of different images (agreement, paired comparisons).
  mse      mean over C*H*W of (x - x_hat)^2, squared differences summed in float64.
  psnr     piq's definition with data_range=1: -10 log10(mse + 1e-8), from the float64 mse;
           identical images give 80 dB (piq's eps), not inf, so means stay finite.
  ssim     piq.ssim's numbers: data_range=1, Gaussian kernel 11 / sigma 1.5, k1=0.01,
           k2=0.03, mean over channels. piq's automatic downsampling starts at 384 px, so at
           64 px this equals skimage structural_similarity(gaussian_weights=True, sigma=1.5,
           use_sample_covariance=False, data_range=1). Computed by pixel.ssim_cs
           (separable window as two matrix products, ~2x faster than piq's grouped
           convolution on CPU); the tests hold it to piq.ssim and scikit-image.
  ms_ssim  piq.multi_scale_ssim's numbers, data_range=1, with a configurable kernel and number
           of scales (config key metrics.ms_ssim). The paper's 11 / 5 scales needs >= 161 px;
           the default keeps SSIM's 11-px window with 3 scales (41 px), so the finest scale is
           the SSIM column's computation, reused. With s scales we use the first s of the
           paper's weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333) renormalised to sum to 1
           (piq renormalises any weights it is given). Tested against piq.multi_scale_ssim.
  gmsd     piq.gmsd's numbers, data_range=1: YIQ luminance, 2x2 average pooling (zero-padded
           when odd), Prewitt gradients (zero padding), t = 170/255^2. Computed by
           pixel.gmsd (only the luminance, both images through one convolution:
           ~2.5x faster than piq, which converts all three YIQ channels and checks its
           inputs); the tests hold it to piq.gmsd. piq takes the population std of the
           similarity map (divides by n, not n - 1): ~0.05% below the authors' MATLAB GMSD
           at 64 px.
  lpips    lpips 0.1.4, AlexNet trunk, version 0.1, inputs scaled to [-1, 1]: the LPIPS that
           papers report. Alex and VGG scores are not comparable.
  dists    DISTS (Ding et al. 2020) as torchmetrics 1.9.0 computes it (DISTSNetwork: the
           authors' network, L2 pooling in a VGG16 trunk, inputs in [0, 1] normalised with
           ImageNet's mean and std inside), with torchvision's VGG16 file and the authors' α, β
           (weights.pt, which torchmetrics ships: sha256 DISTS_AB_SHA256). A distance: 0 for
           identical images. piq.DISTS computes the same numbers from the same files (tested).
  lpips_vgg  LPIPS v0.1 on torchvision's VGG16 trunk (the file DISTS uses), an option
           (metrics.lpips_vgg): the variant piq's human-agreement table lists.

Set-level generation metrics: vaebench.metrics.features (feature extractors) and
vaebench.metrics.sets (formulas).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd
import torch

from vaebench import VaebenchError
from vaebench.io import sha256_file
from vaebench.metrics import formula, registry
from vaebench.metrics import pixel as px
from vaebench.metrics.pixel import GMSD_T, SSIM_KERNEL, SSIM_SIGMA
from vaebench.metrics.weights import (
    ALEXNET,
    VGG16,
    offline_load,
)

if TYPE_CHECKING:  # lpips and piq import torchvision (~2 s): only the jobs that use them pay
    import lpips
    from torchmetrics.functional.image.dists import DISTSNetwork

# the per-image columns this module computes, in the registry's order
METRIC_COLUMNS = registry.IMAGE
MS_SSIM_PAPER_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
PSNR_EPS = 1e-8  # piq.psnr's constant
# the authors' DISTS α and β (github.com/dingkeyan93/DISTS, weights.pt), as torchmetrics ships it
DISTS_AB_SHA256 = "f5e65c96230b7f6ca995691647d482237e4cab8a50c5c4a5784f219ef0748218"


class Learned(NamedTuple):
    """The per-image metrics' networks (load_learned): LPIPS-AlexNet, DISTS, LPIPS-VGG."""

    lpips: lpips.LPIPS
    dists: DISTSNetwork | None  # None: not computed (metrics.dists: false)
    lpips_vgg: lpips.LPIPS | None = None  # None: not computed (metrics.lpips_vgg: false)


# ---------------------------------------------------------------------------- settings


def ms_ssim_min_size(kernel: int, scales: int) -> int:
    """Smallest side MS-SSIM accepts: the kernel must fit the coarsest of `scales` levels."""
    return (kernel - 1) * 2 ** (scales - 1) + 1


def ms_ssim_weights(scales: int) -> tuple[float, ...]:
    """The first `scales` weights of the MS-SSIM paper, renormalised to sum to 1."""
    w = MS_SSIM_PAPER_WEIGHTS[:scales]
    return tuple(v / sum(w) for v in w)


def check_ms_ssim(kernel: int, scales: int, height: int, width: int) -> None:
    """Raise a VaebenchError naming metrics.ms_ssim if the settings do not fit the images."""
    if kernel < 3 or kernel % 2 == 0 or not 1 <= scales <= len(MS_SSIM_PAPER_WEIGHTS):
        raise VaebenchError(
            f"config key metrics.ms_ssim: kernel must be odd and >= 3 and scales in 1..5, got "
            f"kernel {kernel}, scales {scales}"
        )
    need = ms_ssim_min_size(kernel, scales)
    if min(height, width) < need:
        raise VaebenchError(
            f"config key metrics.ms_ssim: kernel {kernel} with {scales} scales needs images of "
            f"at least {need}x{need} px, got {height}x{width}; at 64 px use kernel 11 with 3 "
            f"scales (41 px, SSIM's window) or kernel 7 with 4 scales (49 px)"
        )


def metric_settings(ms_ssim_kernel: int = 11, ms_ssim_scales: int = 3, dists: bool = True,
                    lpips_vgg: bool = False) -> dict:  # fmt: skip
    """Everything that defines the numbers, for Parquet metadata and table headers.

    The tables refuse to mix files whose settings differ, so this text is kept verbatim
    across refactors: "vaebench.pixel_metrics" is today's vaebench.metrics.pixel."""
    return {
        "input": "x_hat clamped to [0, 1]; uint8 / 255",
        "bce": "sum over C*H*W of torch binary_cross_entropy's terms, logs clamped at -100, "
        "nats; Bernoulli cross-entropy on continuous pixels; includes the target's own entropy; "
        "not a normalised likelihood",
        "bce_excess": "bce - sum over C*H*W of the binary entropy H(x) of the target (0 log 0 = "
        "0), clipped at 0: sum KL(Bern(x) || Bern(x_hat)); 0 for identical images",
        "mse": "mean over C*H*W",
        "psnr": {"data_range": 1.0, "eps": PSNR_EPS, "identical_images_db": 80.0},
        "ssim": {
            "impl": "piq.ssim's formula (vaebench.pixel_metrics.ssim_cs, tested equal)",
            "data_range": 1.0,
            "kernel_size": SSIM_KERNEL,
            "kernel_sigma": SSIM_SIGMA,
            "k1": 0.01,
            "k2": 0.03,
            "downsample": "piq default (none below 384 px)",
        },
        "ms_ssim": {
            "impl": "piq.multi_scale_ssim's formula (vaebench.pixel_metrics.ms_ssim, tested equal)",
            "data_range": 1.0,
            "kernel_size": ms_ssim_kernel,
            "kernel_sigma": SSIM_SIGMA,
            "scales": ms_ssim_scales,
            "scale_weights": list(ms_ssim_weights(ms_ssim_scales)),
            "min_size": ms_ssim_min_size(ms_ssim_kernel, ms_ssim_scales),
        },
        "gmsd": {
            "impl": "piq.gmsd's formula (vaebench.pixel_metrics.gmsd, tested equal)",
            "data_range": 1.0,
            "t": GMSD_T,
            "std": "population (piq); sqrt((n-1)/n) below the MATLAB reference",
        },
        "lpips": {"net": "alex", "version": "0.1", "input_range": [-1, 1]},
        "dists": {"impl": "torchmetrics DISTSNetwork", "trunk": VGG16.name,
                  "alpha_beta_sha256": DISTS_AB_SHA256, "input_range": [0, 1]}
        if dists else {"computed": False, "switch": "metrics.dists"},
        "lpips_vgg": {"net": "vgg", "trunk": VGG16.name, "version": "0.1",
                      "input_range": [-1, 1]}
        if lpips_vgg else {"computed": False, "switch": "metrics.lpips_vgg"},
        **{k: {"impl": f"piq ({registry.BY_KEY[k].reference})", "data_range": 1.0, **v}
           for k, v in formula.SETTINGS.items()},
        "versions": {p: metadata.version(p)
                     for p in ("lpips", "piq", "torch", "torchmetrics", "torchvision")},
    }


# ---------------------------------------------------------------------------- networks


def load_lpips(cache: str | os.PathLike, device: str | torch.device = "cpu",
               net: str = "alex") -> lpips.LPIPS:  # fmt: skip
    """LPIPS v0.1 with the AlexNet (or, net="vgg", VGG16) trunk from `<cache>/hub/checkpoints`,
    in eval mode. lpips ships only the linear layers; the trunk is torchvision's file.

    eval() matters: the linear layers have dropout. Give it inputs in [-1, 1].
    """
    import lpips

    with offline_load(cache, ALEXNET if net == "alex" else VGG16):
        model = lpips.LPIPS(net=net, version="0.1", verbose=False)
    # channels-last: the AlexNet convolutions run ~1.3x faster on CPU in that layout
    model = model.to(device, memory_format=torch.channels_last)
    return model.eval().requires_grad_(False)


def load_dists(cache: str | os.PathLike, device: str | torch.device = "cpu") -> DISTSNetwork:
    """torchmetrics' DISTS network with the VGG16 trunk from `<cache>/hub/checkpoints`, in
    eval mode; its α, β file is checked to be the authors' (a one-line error otherwise)."""
    from torchmetrics.functional.image import dists

    ab = Path(dists._PATH_WEIGHT_DISTS)
    if sha256_file(ab) != DISTS_AB_SHA256:
        raise VaebenchError(f"{ab}: not the DISTS authors' α, β (sha256 {DISTS_AB_SHA256}); "
                            "reinstall torchmetrics==1.9.0")  # fmt: skip
    with offline_load(cache, VGG16):
        model = dists.DISTSNetwork(load_weights=True)
    return model.to(device).eval().requires_grad_(False)


def load_learned(
    cache: str | os.PathLike, device: str | torch.device = "cpu", dists: bool = True,
    lpips_vgg: bool = False,
) -> Learned:
    """Every network the per-image metrics need, from the weights cache (DISTS's and
    LPIPS-VGG's only where they are computed: metrics.dists, metrics.lpips_vgg)."""
    return Learned(load_lpips(cache, device), load_dists(cache, device) if dists else None,
                   load_lpips(cache, device, "vgg") if lpips_vgg else None)  # fmt: skip


def dists_pair(model: DISTSNetwork, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """DISTS per image for inputs in [0, 1] (torchmetrics' forward, one value per image)."""
    return model(x0, x1).reshape(-1)


# ---------------------------------------------------------------------------- per image


def _unit(a, device: str | torch.device, name: str) -> torch.Tensor:
    """A chunk as float32 on `device`: uint8 / 255, float as is (checked to be in [0, 1])."""
    t = a if torch.is_tensor(a) else torch.from_numpy(np.ascontiguousarray(a))
    if t.dtype == torch.uint8:
        return t.to(device=device, dtype=torch.float32) / 255.0
    t = t.to(device=device, dtype=torch.float32)
    if name == "x" and t.numel() and (t.min() < 0 or t.max() > 1):
        raise ValueError(
            f"reference images x must be uint8 or float in [0, 1], got "
            f"[{t.min().item():.3g}, {t.max().item():.3g}]"
        )
    return t


def _check_images(*arrays) -> None:
    shape = tuple(arrays[0].shape)
    for a in arrays:
        if a.ndim != 4 or a.shape[1] != 3 or tuple(a.shape) != shape:
            raise ValueError(
                f"expected N x 3 x H x W image arrays of equal shape, got "
                f"{[tuple(b.shape) for b in arrays]}"
            )


def lpips_pair(model: lpips.LPIPS, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """model(x0, x1).flatten() for inputs in [-1, 1], with both image sets through the AlexNet
    trunk as one channels-last batch: the same layers and arithmetic as lpips' forward (v0.1,
    not spatial), ~1.2x faster on CPU than its two separate trunk passes."""
    import lpips

    n = len(x0)
    both = torch.cat((x0, x1)).contiguous(memory_format=torch.channels_last)
    value = 0
    for layer, f in zip(model.lins, model.net(model.scaling_layer(both)), strict=True):
        f = lpips.normalize_tensor(f)
        value = value + lpips.spatial_average(layer((f[:n] - f[n:]) ** 2), keepdim=True)
    return value.flatten()


class _Clock:
    """Adds the seconds of each block to `timings[name]` (no-op when timings is None)."""

    def __init__(self, timings: dict | None, device: str | torch.device):
        self.timings = timings
        self.cuda = torch.device(device).type == "cuda"

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self.timings is None:
            yield
            return
        if self.cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        yield
        if self.cuda:
            torch.cuda.synchronize()
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t0


@torch.inference_mode()
def reconstruction_metrics(
    x,
    x_hat,
    *,
    learned: Learned,
    ms_ssim_kernel: int = 11,
    ms_ssim_scales: int = 3,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    timings: dict[str, float] | None = None,
) -> pd.DataFrame:
    """One row per image, float64 columns METRIC_COLUMNS (definitions in the module doc).

    `timings`, if given, accumulates seconds per metric (for benchmarks).
    """
    _check_images(x, x_hat)
    n, _, h, w = x.shape
    check_ms_ssim(ms_ssim_kernel, ms_ssim_scales, h, w)
    if min(h, w) < formula.MIN_SIDE:
        raise VaebenchError(
            f"config key dataset.image_size: MS-GMSD and HaarPSI need images of at least "
            f"{formula.MIN_SIDE} px, got {h}x{w}; use 32 px or more"
        )
    scale_weights = torch.tensor(ms_ssim_weights(ms_ssim_scales), device=device)
    learned.lpips.eval()
    clock = _Clock(timings, device)
    out = {k: np.empty(n, dtype=np.float64) for k in METRIC_COLUMNS}
    formulas = formula.functions()
    for i in range(0, n, batch_size):
        ref = _unit(x[i : i + batch_size], device, "x")
        rec = _unit(x_hat[i : i + batch_size], device, "x_hat").clamp_(0, 1)
        with clock("bce"):
            bce = px.bce_per_image(rec, ref)
        with clock("bce_excess"):
            bce_excess = (bce - px.bce_per_image(ref, ref)).clamp_(min=0)
        with clock("mse"):
            mse = (rec - ref).square().sum((1, 2, 3), dtype=torch.float64) / ref[0].numel()
        with clock("psnr"):
            psnr = -10 * torch.log10(mse + PSNR_EPS)
        with clock("ssim"):
            full_res = px.ssim_cs(rec, ref, SSIM_KERNEL)
            ssim = full_res[0].mean(1)
        with clock("ms_ssim"):
            shared = full_res if ms_ssim_kernel == SSIM_KERNEL else None
            ms_ssim = px.ms_ssim(rec, ref, ms_ssim_kernel, scale_weights, shared)
        with clock("gmsd"):
            gmsd = px.gmsd(rec, ref)
        with clock("lpips"):
            lp = lpips_pair(learned.lpips, rec * 2 - 1, ref * 2 - 1)
        with clock("dists"):
            ds = (dists_pair(learned.dists.eval(), rec, ref) if learned.dists is not None
                  else torch.full((len(rec),), float("nan")))  # fmt: skip
        with clock("lpips_vgg"):
            lv = (lpips_pair(learned.lpips_vgg, rec * 2 - 1, ref * 2 - 1)
                  if learned.lpips_vgg is not None else torch.full((len(rec),), float("nan")))
        values = dict(bce=bce, bce_excess=bce_excess, mse=mse, psnr=psnr, ssim=ssim,
                      ms_ssim=ms_ssim, gmsd=gmsd, lpips=lp, dists=ds, lpips_vgg=lv)  # fmt: skip
        for key, fn in formulas.items():
            with clock(key):
                values[key] = fn(rec, ref)
        for k in METRIC_COLUMNS:
            out[k][i : i + len(values[k])] = values[k].double().cpu().numpy()
    return pd.DataFrame(out)
