"""Benchmark: Snakemake's own time on a study-sized grid with nothing to compute.

    .venv/bin/python benchmarks/bench_orchestration.py --out results/bench/orchestration.json

The grid is the full study with 8 β values and 5 seeds: 4 families, 55 runs, ~390 jobs.
Every output is created empty and `snakemake --touch` dates it in DAG order, so the
workflow is complete; then, best of --repeats:

dry_run_seconds     `snakemake -n` (builds the DAG, finds nothing to do)       target < 5 s
noop_rerun_seconds  `snakemake --cores 2` (a second run with nothing to do)  target < 5 s

Also measured: importing vaebench.config and building the run table, which Snakemake does
on every invocation, and whether that imported torch (it must not).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from report import finish

ROOT = Path(__file__).resolve().parents[1]
GRID = {
    "dataset": {"name": "shapes"},
    "models": ["vae", "beta_vae", "vqvae", "vaegan"],
    "betas": [0.25, 0.5, 1, 2, 4, 8, 16, 32],
    "seeds": [0, 1, 2, 3, 4],
    "weights": {"allow_random": True},
}
PARSE = """
import sys, time
t0 = time.perf_counter()
from vaebench import config as vb
import yaml
cfg = vb.validate(yaml.safe_load(open(sys.argv[1])))
runs = vb.runs(cfg)
params = [vb.train_params(cfg, r) for r in runs]
print(time.perf_counter() - t0, len(runs), "torch" in sys.modules)
"""


def snakemake(workdir: Path, *args: str) -> tuple[float, str]:
    cmd = [sys.executable, "-m", "snakemake", *args, "-s", str(ROOT / "Snakefile"),
           "--directory", str(workdir), "--configfile", str(workdir / "grid.yaml")]  # fmt: skip
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
    return seconds, out.stdout + out.stderr


def complete_workflow(workdir: Path) -> int:
    """Create every output of the grid and date them in DAG order; return the job count."""
    _, summary = snakemake(workdir, "-n", "--summary", "--cores", "1")
    lines = summary.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("output_file"))
    files = [line.split("\t")[0] for line in lines[head + 1 :] if line.strip()]
    for f in files:
        path = workdir / f
        if f.endswith("/model"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}" if path.suffix == ".json" else "")  # the parse reads some
    snakemake(workdir, "--touch", "--cores", "1")
    _, dry = snakemake(workdir, "-n", "--cores", "1")
    if "Nothing to be done" not in dry:
        raise SystemExit(f"the touched workflow is not complete:\n{dry[-2000:]}")
    return len(files)


def measure(repeats: int = 3, seeds: int = 5) -> dict:
    grid = {**GRID, "seeds": GRID["seeds"][:seeds]}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "grid.yaml").write_text(yaml.safe_dump(grid))
        n_files = complete_workflow(work)
        dry, noop = [], []
        for _ in range(repeats):
            dry.append(snakemake(work, "-n", "--cores", "2")[0])
            noop.append(snakemake(work, "--cores", "2", "--resources", "gpu=1")[0])
        parse = subprocess.run(
            [sys.executable, "-c", PARSE, str(work / "grid.yaml")],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
    return {
        "grid": grid,
        "n_runs": int(parse[1]),
        "n_output_files": n_files,
        "dry_run_seconds": min(dry),
        "noop_rerun_seconds": min(noop),
        "config_parse_seconds": float(parse[0]),
        "config_parse_imports_torch": parse[2] == "True",
        "all_seconds": {"dry_run": dry, "noop_rerun": noop},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=5, help="the grid's seeds (5: 55 runs)")
    ap.add_argument("--out")
    args = ap.parse_args()
    result = measure(args.repeats, args.seeds)
    finish(result, args.out)


if __name__ == "__main__":
    main()
