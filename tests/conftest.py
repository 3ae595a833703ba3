"""Shared fixtures: a tiny config and real Snakemake runs of the workflow in a temp folder."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
OUT = "results/tiny"  # the tiny study's results folder (TINY["study"])

TINY = {
    "study": "tiny",
    "dataset": {
        "name": "shapes",
        "n_train": 128,
        "n_val": 32,
        "n_test": 32,
        "n_reference": 32,
        "crop": None,
        "salt": "tiny",
    },
    "models": ["vae", "beta_vae", "vqvae", "vaegan"],
    "betas": [0.5, 1, 4],  # β = 1 is the VAE run itself (trained once)
    "seeds": [0],
    "network": {"preset": "small", "latent_dim": 4, "width": 8},
    "training": {"epochs": 2, "batch_size": 32, "learning_rate": 0.001, "checkpoint_every": 1},
    "vqvae": {"num_embeddings": 8},
    "sampling": {
        "n_samples": 16,
        "gmm": {"n_components": 2},
        "pixelcnn": {"epochs": 1, "n_layers": 2, "kernel_size": 3},
    },
    # DISTS off: its VGG16 costs ~2 minutes of the suite's CPU time over every copy of this
    # study; tests/test_outside.py turns it on and reads it from real jobs' Parquet files
    "metrics": {"kid": {"subset_size": 8, "n_subsets": 4}, "n_boot": 20, "dists": False},
    "weights": {"allow_random": True},
    # A CPU study: no job takes a GPU slot, so reconstruction and metric jobs run beside the
    # training (with the default gpus: 1 and --resources gpu=1 they would wait for it), on
    # one core each (with the default eval_threads: 2 they would take both of --cores 2).
    "compute": {"gpus": 0, "eval_threads": 1},
}


@contextlib.contextmanager
def torch_threads(n: int):
    """Compute at a job's thread count (the reconstruct job runs with 1 thread, train with 2).

    A float result of a convolution depends on the thread count (the reduction order), so a
    test that compares its own recomputation bitwise with what a job wrote must use the job's
    threads, batch and device; otherwise it compares two different computations.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def offline_prefix() -> list[str]:
    """`unshare -n` (a network namespace with no interfaces) where we may create one."""
    ok = os.geteuid() == 0 and shutil.which("unshare")
    if ok and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        return ["unshare", "-n"]
    return []


def smk(workdir: Path, config: dict | str, *args: str, check: bool = True, timeout: int = 900,
        offline: bool = False, env: dict[str, str] | None = None):  # fmt: skip
    """Run the real workflow in `workdir` with `config`; return the CompletedProcess.

    `config` is a dict, written as YAML in its own key order (as a user writes a file), or
    the YAML text itself. offline=True runs it in a network namespace without interfaces:
    every job, the weight staging included, must then work with no network at all. `env`
    adds environment variables (e.g. VAEBENCH_FAMILIES).
    """
    cfg = workdir / "config.test.yaml"
    cfg.write_text(config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False))
    # `args` first: options like --forcerun or --resources take many values, so targets
    # given after them would be swallowed.
    cmd = [
        *SNAKEMAKE,
        *args,
        "-s",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(cfg),
        "--cores",
        "2",
        "--resources",
        "gpu=1",
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0", **(env or {})}
    cmd = (offline_prefix() if offline else []) + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and out.returncode != 0:
        raise AssertionError(f"snakemake failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out


def pending(workdir: Path, config: dict | str, env: dict[str, str] | None = None) -> set[str]:
    """Files a run would (re)create, from `snakemake -n --summary` (its `plan` column)."""
    out = smk(workdir, config, "-n", "--summary", env=env).stdout.splitlines()
    header = next(i for i, line in enumerate(out) if line.startswith("output_file"))
    cols = out[header].split("\t")
    rows = [dict(zip(cols, line.split("\t"), strict=False)) for line in out[header + 1 :]]
    return {r["output_file"] for r in rows if r.get("plan") and r["plan"] != "no update"}


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory):
    """One real run of the whole DAG on the tiny config (shared by the e2e tests).

    It runs without network where the test may create a network namespace (as root, CI):
    compute jobs must never need it, and the demo-style config stages random weights.
    """
    work = tmp_path_factory.mktemp("study")
    smk(work, TINY, offline=True)
    return work


def copy_of(study: Path, tmp_path_factory, name: str) -> Path:
    """A copy of a finished study's folder: its outputs with their mtimes and Snakemake's
    metadata (.snakemake/), so a test module can change the config and run only what that
    change makes stale, instead of training the same tiny models again from nothing. The
    copy is the module's own: what it runs never touches the shared study."""
    work = tmp_path_factory.mktemp(name)
    shutil.copytree(study, work, symlinks=True, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("locks", "incomplete"))  # fmt: skip
    return work


DEMO = ROOT / "workflow" / "configs" / "demo.yaml"


@pytest.fixture(scope="session")
def demo_study(tmp_path_factory):
    """One real, offline run of the shipped demo config (what `make demo` runs)."""
    work = tmp_path_factory.mktemp("demo")
    smk(work, DEMO.read_text(), offline=True, timeout=1200)
    return work


def pytest_collection_modifyitems(items):
    """Tests on the demo's real run are slow (it trains the demo): `make test-slow` and CI."""
    for item in items:
        if "demo_study" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
