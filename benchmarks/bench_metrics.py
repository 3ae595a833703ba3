"""Benchmark: the per-image metric suite batched vs one image at a time, and LPIPS overhead.

    .venv/bin/python benchmarks/bench_metrics.py --out results/bench/metrics.json

Both variants run on the same images in one process, interleaved, --repeats times. Each
ratio is the median over the repeats of the ratio within one repeat, whose runs are seconds
apart: this shared host's speed drifts by up to 30% from minute to minute, so best-of-each
can pair a lucky run of one kind with an ordinary run of the other (best-of-each ratios are
recorded too). Weights are random stand-ins in a temporary cache: speed does not depend on
their values.

batched        vaebench.metrics.reconstruction_metrics in chunks of --batch-size.
one at a time  what one writes with the libraries directly: for each image, torch's BCE and
               MSE, piq.psnr, piq.ssim, piq.multi_scale_ssim, piq.gmsd, an lpips.LPIPS
               forward (the library's default memory layout), torchmetrics' DISTS network and
               piq's HaarPSI, MDSI, VSI, FSIMc and MS-GMSD at their defaults, each on that one
               image. Its
               numbers must equal the suite's (checked: the run fails otherwise).

metrics_speedup = one-at-a-time seconds / batched seconds (target >= 10 on 2 CPU cores).
lpips_overhead  = seconds of LPIPS inside the batched suite / a bare lpips_model(x, y)
                  forward over the same chunks already on the device in [-1, 1] and in the
                  suite's channels-last layout (target <= 1.2).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time

import numpy as np
import pandas as pd
import piq
import torch
import torch.nn.functional as F
from skimage import data

from vaebench.io import save_json, versions
from vaebench.metrics import images
from vaebench.metrics.standins import write_random_weights


def photo_crops(n: int, seed: int = 0) -> np.ndarray:
    """n random RGB 64 x 64 uint8 crops (N x 3 x H x W) of scikit-image's bundled photos."""
    rng = np.random.default_rng(seed)
    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    out = []
    for k in range(n):
        p = photos[k % len(photos)]
        i, j = rng.integers(0, p.shape[0] - 64), rng.integers(0, p.shape[1] - 64)
        out.append(p[i : i + 64, j : j + 64])
    return np.stack(out).transpose(0, 3, 1, 2).copy()


def degrade(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """A stand-in reconstruction: 3x3 box blur plus Gaussian noise, float32 in [0, 1]."""
    t = torch.from_numpy(x).float() / 255
    t = torch.nn.functional.avg_pool2d(t, 3, stride=1, padding=1, count_include_pad=False)
    g = torch.Generator().manual_seed(seed)
    return (t + 0.03 * torch.randn(t.shape, generator=g)).clamp(0, 1).numpy()


@torch.inference_mode()
def one_at_a_time(x, x_hat, lpips_model, dists_model, kernel: int, scales: int,
                  timings: dict) -> pd.DataFrame:  # fmt: skip
    """Each metric from its library, called on one image at a time (the baseline)."""
    weights = torch.tensor(images.ms_ssim_weights(scales))
    fns = {
        "bce": lambda r, t: F.binary_cross_entropy(r.double(), t.double(), reduction="sum"),
        "bce_excess": lambda r, t: (
            F.binary_cross_entropy(r.double(), t.double(), reduction="sum")
            - F.binary_cross_entropy(t.double(), t.double(), reduction="sum")
        ).clamp(min=0),
        "mse": lambda r, t: (r.double() - t.double()).square().mean(),
        "psnr": lambda r, t: piq.psnr(r, t, data_range=1.0),
        "ssim": lambda r, t: piq.ssim(r, t, data_range=1.0),
        "ms_ssim": lambda r, t: piq.multi_scale_ssim(
            r, t, kernel_size=kernel, data_range=1.0, scale_weights=weights
        ),
        "gmsd": lambda r, t: piq.gmsd(r, t, data_range=1.0),
        "lpips": lambda r, t: lpips_model(r * 2 - 1, t * 2 - 1),
        "dists": lambda r, t: dists_model(r, t),
        # piq's formula-only metrics at piq's own defaults (vaebench.metrics.formula uses them)
        "haarpsi": lambda r, t: piq.haarpsi(r, t, data_range=1.0),
        "mdsi": lambda r, t: piq.mdsi(r, t, data_range=1.0),
        "vsi": lambda r, t: piq.vsi(r, t, data_range=1.0),
        "fsimc": lambda r, t: piq.fsim(r, t, data_range=1.0, chromatic=True),
        "ms_gmsd": lambda r, t: piq.multi_scale_gmsd(r, t, data_range=1.0),
    }
    rows = []
    for i in range(len(x)):
        ref = torch.from_numpy(x[i : i + 1]).float() / 255
        rec = torch.from_numpy(x_hat[i : i + 1]).clamp(0, 1)
        row = {}
        for name, fn in fns.items():
            t0 = time.perf_counter()
            row[name] = float(fn(rec, ref))
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0
        rows.append(row)
    return pd.DataFrame(rows)


def measure(n: int = 512, batch_size: int = 64, threads: int = 2, repeats: int = 7) -> dict:
    torch.set_num_threads(threads)
    x = photo_crops(n)
    x_hat = degrade(x)
    with tempfile.TemporaryDirectory() as cache:
        write_random_weights(cache)
        learned = images.load_learned(cache)
    model = learned.lpips
    plain_model = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
    bs, kernel, scales = batch_size, 11, 3  # the config's default MS-SSIM settings
    frames = {}

    def suite() -> tuple[float, dict]:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        frames["batched"] = images.reconstruction_metrics(
            x,
            x_hat,
            learned=learned,
            batch_size=bs,
            ms_ssim_kernel=kernel,
            ms_ssim_scales=scales,
            timings=timings,
        )
        return time.perf_counter() - t0, timings

    def single() -> tuple[float, dict]:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        frames["single"] = one_at_a_time(x, x_hat, plain_model, learned.dists, kernel, scales,
                                         timings)  # fmt: skip
        return time.perf_counter() - t0, timings

    def layout(t: torch.Tensor) -> torch.Tensor:
        return t.contiguous(memory_format=torch.channels_last)

    chunks = [
        (
            layout(torch.from_numpy(x_hat[i : i + bs]) * 2 - 1),
            layout(torch.from_numpy(x[i : i + bs]) / 127.5 - 1),
        )
        for i in range(0, n, bs)
    ]

    @torch.inference_mode()
    def bare_lpips() -> float:
        t0 = time.perf_counter()
        for a, b in chunks:
            model(a, b)
        return time.perf_counter() - t0

    suite(), single(), bare_lpips()  # warm-up: first calls allocate and pick kernels
    max_abs_diff = {  # the metrics both sides compute (not the optional LPIPS-VGG)
        c: float((frames["batched"][c] - frames["single"][c]).abs().max())
        for c in images.METRIC_COLUMNS
        if c in frames["single"]
    }
    if max(max_abs_diff.values()) > 1e-4 * max(1.0, frames["single"]["bce"].abs().max()):
        raise SystemExit(f"the batched suite and the baseline disagree: {max_abs_diff}")
    load_before = os.getloadavg()
    runs: dict[str, list] = {"batched": [], "single": [], "bare": []}
    for _ in range(repeats):
        runs["batched"].append(suite())
        runs["single"].append(single())
        runs["bare"].append(bare_lpips())
    batched_s, batched_t = min(runs["batched"], key=lambda r: r[0])
    single_s, single_t = min(runs["single"], key=lambda r: r[0])
    lpips_in_suite = min(t["lpips"] for _, t in runs["batched"])
    bare_s = min(runs["bare"])
    speedups = [o[0] / b[0] for o, b in zip(runs["single"], runs["batched"], strict=True)]
    overheads = [b[1]["lpips"] / t for b, t in zip(runs["batched"], runs["bare"], strict=True)]

    return {
        "n_images": n,
        "image_shape": list(x.shape[1:]),
        "batch_size": bs,
        "ms_ssim": {"kernel": kernel, "scales": scales},
        "max_abs_difference_batched_vs_baseline": max_abs_diff,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "repeats": repeats,
        "loadavg_1min_before_after": [load_before[0], os.getloadavg()[0]],
        "seconds_batched": batched_s,
        "seconds_one_at_a_time": single_s,
        "metrics_speedup": statistics.median(speedups),
        "metrics_speedup_per_repeat": speedups,
        "metrics_speedup_best_of_each": single_s / batched_s,
        "images_per_second_batched": n / batched_s,
        "images_per_second_one_at_a_time": n / single_s,
        "per_metric_seconds_batched": batched_t,
        "per_metric_seconds_one_at_a_time": single_t,
        "seconds_lpips_in_suite": lpips_in_suite,
        "seconds_lpips_bare": bare_s,
        "lpips_overhead": statistics.median(overheads),
        "lpips_overhead_per_repeat": overheads,
        "lpips_overhead_best_of_each": lpips_in_suite / bare_s,
        "all_seconds": {
            "batched": [r[0] for r in runs["batched"]],
            "one_at_a_time": [r[0] for r in runs["single"]],
            "lpips_bare": runs["bare"],
        },
        "versions": versions(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512, help="number of images")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()
    result = measure(args.n, args.batch_size, args.threads, args.repeats)
    batched_t = result["per_metric_seconds_batched"]
    single_t = result["per_metric_seconds_one_at_a_time"]
    width = max(map(len, result))
    for k, v in result.items():
        if isinstance(v, float):
            print(f"{k:<{width}}  {v:.4g}")
        elif not isinstance(v, dict):
            print(f"{k:<{width}}  {v}")
    print("per metric, batched       :", {k: round(v, 3) for k, v in batched_t.items()})
    print("per metric, one at a time :", {k: round(v, 3) for k, v in single_t.items()})
    if args.out:
        save_json(args.out, result)


if __name__ == "__main__":
    main()
