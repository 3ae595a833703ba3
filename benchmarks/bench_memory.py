"""Benchmark: peak memory of every job type on a full-size data set.

    .venv/bin/python benchmarks/bench_memory.py --out results/bench/memory.json

Runs the real workflow (Snakemake, every rule) in a temporary folder on the study's sizes:
10,000 training, 1,000 validation and 1,000 test images of 64 x 64 (the built-in shapes, so
no download), one run of each job-distinct family (VAE, VQ-VAE, VAE-GAN; β-VAE runs the
VAE's code), one epoch, every sampler. The peak resident memory of each job is read from
the `benchmark:` file Snakemake writes for it (max_rss, MB); peak_rss_mb gives the largest
per job type (sampling per sampler).

Target: every job type under 4,000 MB. --preset celeba64 uses the study's networks (slow on
CPU); the default small preset has the same data sizes, which are what the jobs hold.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from vaebench.io import save_json, versions

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("vae", "vqvae", "vaegan")  # each family whose jobs run distinct code


def config(
    preset: str, n_samples: int, n_train: int = 10000, models: tuple[str, ...] = MODELS
) -> dict:
    n_eval = max(32, n_train // 10)
    return {
        "study": "memory",
        "dataset": {"name": "shapes", "n_train": n_train, "n_val": n_eval, "n_test": n_eval,
                    "n_reference": n_eval},  # fmt: skip
        "models": list(models),
        "seeds": [0],
        "network": {"preset": preset, "latent_dim": 16, "width": 16},
        "training": {"epochs": 1, "checkpoint_every": 1},
        "sampling": {"n_samples": n_samples, "pixelcnn": {"epochs": 1}},
        "metrics": {"kid": {"subset_size": min(100, n_samples)}, "n_boot": 200},
        "weights": {"allow_random": True},
    }


def job_type(tsv: Path, bench_dir: Path) -> str:
    """results/memory/benchmarks/sample/vae/seed~0/gmm.tsv -> sample_gmm; train/... -> train."""
    parts = tsv.relative_to(bench_dir).parts
    rule = parts[0].removesuffix(".tsv")
    return f"{rule}_{tsv.stem}" if rule in ("sample", "generation_metrics") else rule


def measure(
    preset: str = "small",
    n_samples: int = 100,
    cores: int = 2,
    n_train: int = 10000,
    models: tuple[str, ...] = MODELS,
) -> dict:
    cfg = config(preset, n_samples, n_train, models)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "cfg.yaml").write_text(yaml.safe_dump(cfg))
        cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
               "--directory", str(work), "--configfile", str(work / "cfg.yaml"),
               "--cores", str(cores), "--resources", "gpu=1"]  # fmt: skip
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if out.returncode != 0:
            raise SystemExit(f"the workflow failed:\n{out.stderr[-3000:]}")
        bench_dir = work / "results/memory/benchmarks"
        jobs: dict[str, list[dict]] = {}
        for tsv in sorted(bench_dir.rglob("*.tsv")):
            with tsv.open() as f:
                row = next(csv.DictReader(f, delimiter="\t"))
            jobs.setdefault(job_type(tsv, bench_dir), []).append(
                {
                    "job": tsv.relative_to(bench_dir).as_posix(),
                    "max_rss_mb": float(row["max_rss"]),
                    "seconds": float(row["s"]),
                }  # fmt: skip
            )
    peak = {k: max(j["max_rss_mb"] for j in v) for k, v in sorted(jobs.items())}
    return {
        "config": cfg,
        "workflow_seconds": seconds,
        "peak_rss_mb": peak,
        "peak_rss_mb_max": max(peak.values()),
        "jobs": jobs,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small", choices=["small", "celeba64"])
    ap.add_argument("--n-samples", type=int, default=100)
    ap.add_argument("--n-train", type=int, default=10000, help="validation, test: a tenth")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--out")
    args = ap.parse_args()
    result = measure(args.preset, args.n_samples, n_train=args.n_train,
                     models=tuple(args.models.split(",")))  # fmt: skip
    result["versions"] = versions()
    for k, v in result["peak_rss_mb"].items():
        print(f"{k:<28} {v:8.0f} MB")
    print(f"workflow: {result['workflow_seconds']:.0f} s")
    if args.out:
        save_json(args.out, result)


if __name__ == "__main__":
    main()
