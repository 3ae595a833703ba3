"""`make bench`: every benchmark, one after the other, into results/bench/bench.{json,md}.

    .venv/bin/python benchmarks/run_all.py [--out-dir results/bench]
    .venv/bin/python benchmarks/run_all.py --smoke      # `make bench-smoke`, under 2 minutes

Each benchmark measures a step of the study against the fastest thing that does the same
work, side by side in one process (see each script's docstring). bench.json has one key per
ratio with its bound, the raw figures of every benchmark, and the machine. The machines this
runs on are shared and noisy: the ratios are the result, the seconds are context.

--smoke runs every benchmark at its smallest size (SMOKE_ARGS) into results/bench-smoke, so
that CI notices a benchmark that no longer runs. It checks that each script exits cleanly and
writes every key it owes, never the ratios: at these sizes, and on a shared machine, they mean
nothing, and its bench.md says so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from vaebench.io import atomic_path, save_json, versions

HERE = Path(__file__).resolve().parent
# bench_<step>.py each
STEPS = ("train", "prepare", "metrics", "sampling", "spaces", "orchestration", "memory")

# the smallest sizes at which each script still runs every code path it times
SMOKE_ARGS = {
    "train": ["--n-train", "128", "--epochs", "1", "--repeats", "1"],
    "prepare": ["--n", "48", "--repeats", "1"],
    "metrics": ["--n", "16", "--batch-size", "8", "--repeats", "1"],
    "sampling": ["--gmm-sizes", "300x16", "--pr-n", "200"],
    "spaces": ["--n", "2", "--batch-size", "2"],
    "orchestration": ["--repeats", "1", "--seeds", "1"],
    "memory": ["--n-train", "320", "--n-samples", "16", "--models", "vqvae"],
}

# key -> (bound, "min" | "max", what it compares)
BOUNDS = {
    "train_throughput_ratio_vae": (0.9, "min", "pipeline / bare PyTorch training, images/s"),
    "train_throughput_ratio_vqvae": (0.9, "min", "pipeline / bare PyTorch training, images/s"),
    "train_throughput_ratio_vaegan": (None, "min", "pipeline / bare (reported, no bound)"),
    "prepare_speedup": (1.7, "min", "JPEG decode/crop/resize, all cores / one core"),
    "metrics_speedup": (10.0, "min", "per-image suite batched / one image at a time"),
    "lpips_overhead": (1.2, "max", "LPIPS inside the suite / a bare lpips forward"),
    "gmm_speedup_demo_cpu": (None, "min", "sklearn GMM fit / vaebench.gmm (torch), CPU"),
    "pr_speedup_cpu": (None, "min", "precision/recall k-NN, NumPy / torch, CPU"),
    "space_cost_ratio_dinov2_vits14": (None, "max", "s/image, DINOv2 ViT-S/14 / Inception"),
    "space_cost_ratio_dinov2_vitl14": (None, "max", "s/image, DINOv2 ViT-L/14 / Inception"),
    "space_cost_ratio_clip_vitl14_336": (None, "max", "s/image, CLIP ViT-L/14@336 / Inception"),
    "dry_run_seconds": (5.0, "max", "`snakemake -n`, 55-run grid (~390 jobs)"),
    "noop_rerun_seconds": (5.0, "max", "second `snakemake`, nothing to do, same grid"),
    "peak_rss_mb_max": (4000.0, "max", "largest peak RSS of any job type, 10k images"),
}


def machine() -> dict:
    load = os.getloadavg()
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg_at_start": list(load),
    }


def verdict(value: float, bound: float | None, kind: str) -> str:
    if bound is None:
        return "reported"
    ok = value >= bound if kind == "min" else value <= bound
    return "meets" if ok else "MISSES"


def markdown(result: dict) -> str:
    lines = [
        "| measure | value | bound | verdict | compares |",
        "|---|---:|---:|---|---|",
    ]
    for key, (bound, kind, what) in BOUNDS.items():
        value = result[key]
        b = "—" if bound is None else f"{'≥' if kind == 'min' else '≤'} {bound:g}"
        lines.append(f"| `{key}` | {value:.3g} | {b} | {verdict(value, bound, kind)} | {what} |")
    lines += ["", "Peak RSS per job type (MB): " + ", ".join(
        f"{k} {v:.0f}" for k, v in result["peak_rss_mb"].items())]  # fmt: skip
    m = result["machine"]
    lines += ["", f"Machine: {m['cpu']}, {m['cpu_count']} cores, {m['platform']}; "
              f"load average at start {m['loadavg_at_start'][0]:.2f}. "
              f"Total {result['seconds']:.0f} s. Command: `{result['command']}`."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", help="default: results/bench, or results/bench-smoke")
    ap.add_argument("--smoke", action="store_true", help="smallest sizes; check, not measure")
    args = ap.parse_args()
    t0 = time.perf_counter()
    result: dict = {"machine": machine(), "smoke": args.smoke}
    out = Path(args.out_dir or ("results/bench-smoke" if args.smoke else "results/bench"))
    for name in STEPS:
        # each in a fresh process, as the study's jobs run: no torch threads, memory or
        # imports left over from the previous benchmark
        print(f"[bench] {name} ...", flush=True)
        s = time.perf_counter()
        script, raw_json = HERE / f"bench_{name}.py", out / f"{name}.json"
        raw_json.unlink(missing_ok=True)  # a JSON left by an earlier run proves nothing
        extra = SMOKE_ARGS[name] if args.smoke else []
        done = subprocess.run([sys.executable, str(script), "--out", str(raw_json), *extra])
        if done.returncode != 0:
            raise SystemExit(f"[bench] {script.name} failed (exit {done.returncode})")
        raw = json.loads(raw_json.read_text())
        result[name] = raw
        for key in BOUNDS:
            if key in raw:
                result[key] = raw[key]
        print(f"[bench] {name}: {time.perf_counter() - s:.0f} s", flush=True)
    missing = [k for k in BOUNDS if k not in result]
    if missing:
        raise SystemExit(f"[bench] no benchmark wrote {', '.join(missing)}")
    result["peak_rss_mb"] = result["memory"]["peak_rss_mb"]
    result["bounds"] = {k: {"bound": b, "kind": kind} for k, (b, kind, _) in BOUNDS.items()}
    result["verdicts"] = {k: verdict(result[k], b, kind) for k, (b, kind, _) in BOUNDS.items()}
    result["versions"] = versions()
    result["seconds"] = time.perf_counter() - t0
    result["command"] = "make bench-smoke" if args.smoke else "make bench"
    save_json(out / "bench.json", result)
    md = markdown(result)
    if args.smoke:
        md = ("**Smoke run** (`make bench-smoke`): every benchmark at its smallest size, to check\n"
              "that each one runs. These ratios are not measurements; `make bench` measures.\n\n"
              + md)  # fmt: skip
    with atomic_path(out / "bench.md") as tmp:
        tmp.write_text(md)
    print(md)


if __name__ == "__main__":
    main()
