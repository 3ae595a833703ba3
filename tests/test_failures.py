"""Failures through the real workflow: divergence with --keep-going, an interrupted job,
missing weights. Each must fail loudly in one line and leave nothing that looks complete."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import time

import pandas as pd
import pytest
import torch
import yaml
from conftest import OUT, ROOT, SNAKEMAKE, TINY, copy_of, offline_prefix, pending, smk

pytestmark = pytest.mark.e2e


def _small(**changes) -> dict:
    cfg = copy.deepcopy(TINY)
    cfg["models"] = ["vae", "vaegan"]
    cfg["sampling"]["samplers"] = ["normal"]
    for key, value in changes.items():
        section, name = key.split("__")
        cfg.setdefault(section, {})[name] = value
    return cfg


def test_divergence_keep_going_then_tables_mark_the_run(tiny_study, tmp_path_factory):
    # On a copy of the tiny study: its VAE run is reused, its VAE-GAN (trained there with
    # sane rates) is stale under the new rates, so the old model must go when it diverges.
    tmp_path = copy_of(tiny_study, tmp_path_factory, "diverge")
    lr = 1e12  # VAE-GAN's own learning rates: only that run blows up
    cfg = _small(vaegan__encoder_learning_rate=lr, vaegan__decoder_learning_rate=lr)
    first = smk(tmp_path, cfg, "--keep-going", check=False)
    assert first.returncode != 0
    line = next(x for x in first.stderr.splitlines() if "diverged at epoch" in x)
    assert "vaegan/seed~0" in line and "last finite train loss" in line
    assert (tmp_path / "results/tiny/metrics/vae/seed~0/reconstruction.parquet").exists()
    assert (tmp_path / "results/tiny/runs/vaegan/seed~0/diverged.json").exists()
    assert not (tmp_path / "results/tiny/runs/vaegan/seed~0/model").exists()
    assert not (tmp_path / "results/tiny/runs/vaegan/seed~0/history.parquet").exists()

    smk(tmp_path, cfg)  # the diverged run is known: the rest of the DAG completes
    table = pd.read_parquet(tmp_path / "results/tiny/tables/reconstruction.parquet")
    gan = table[table["model"] == "vaegan"].iloc[0]
    assert gan["diverged"] and pd.isna(gan["bce"]) and pd.isna(gan["lpips"])
    vae = table[table["model"] == "vae"].iloc[0]
    assert not vae["diverged"] and vae["bce"] > 0
    md = (tmp_path / "results/tiny/tables/reconstruction.md").read_text()
    gan_line = next(x for x in md.splitlines() if x.startswith("| VAE-GAN"))
    assert "diverged" in gan_line and "nan" not in gan_line.lower()
    gen = pd.read_parquet(tmp_path / "results/tiny/tables/generation.parquet")
    assert gen.loc[gen["model"] == "vaegan", "diverged"].all()
    assert pending(tmp_path, cfg) == set()

    fixed = _small()  # other training settings: the record is stale and the run trains
    assert "results/tiny/runs/vaegan/seed~0/model" in pending(tmp_path, fixed)


def _snakemake_popen(workdir, config_path, *targets):
    cmd = [*SNAKEMAKE, *targets, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(config_path), "--cores", "2", "--resources", "gpu=1"]  # fmt: skip
    return subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def test_killed_training_leaves_nothing_complete_and_resumes_to_the_same_model(tmp_path):
    cfg = _small(training__epochs=12)
    cfg["models"] = ["vae"]
    target = "results/tiny/runs/vae/seed~0/history.parquet"
    run_dir = tmp_path / "cut/results/tiny/runs/vae/seed~0"
    (tmp_path / "cut").mkdir()
    cfg_path = tmp_path / "cut/config.test.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    proc = _snakemake_popen(tmp_path / "cut", cfg_path, target)
    deadline = time.monotonic() + 300
    while not (run_dir / "checkpoint.pt").exists():  # written after every epoch
        assert proc.poll() is None, "training finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # no SIGTERM grace: the hardest interruption
    proc.wait()
    assert not (run_dir / "model").exists() and not (run_dir / "history.parquet").exists()

    smk(tmp_path / "cut", cfg, "--unlock")  # a SIGKILLed snakemake leaves its lock behind
    smk(tmp_path / "cut", cfg, target, "--rerun-incomplete")
    (tmp_path / "whole").mkdir()
    smk(tmp_path / "whole", cfg, target)
    cut, whole = (tmp_path / d / "results/tiny/runs/vae/seed~0" for d in ("cut", "whole"))
    h_cut, h_whole = (pd.read_parquet(d / "history.parquet") for d in (cut, whole))
    assert len(h_cut) == 12
    pd.testing.assert_frame_equal(h_cut.drop(columns="seconds"), h_whole.drop(columns="seconds"))
    a, b = (torch.load(d / "model/model.pt", weights_only=True)["model_state_dict"]
            for d in (cut, whole))  # fmt: skip
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not (cut / "checkpoint.pt").exists()


def test_study_config_without_weights_stops_naming_the_file(tmp_path):
    if not offline_prefix():
        pytest.skip("cannot create a network namespace here (needs root and unshare)")
    cfg = _small(weights__allow_random=False)
    out = smk(tmp_path, cfg, "results/tiny/weights/staged.json", check=False, offline=True)
    assert out.returncode != 0
    line = next(x for x in out.stderr.splitlines() if x.startswith("vaebench: missing"))
    assert "alexnet-owt-7be5be79.pth" in line and "pt_inception" in line  # every missing file
    assert "cores 1 weights" in line and "weights.allow_random: true" in line  # the way offline
    dry = smk(tmp_path, cfg, "-n", check=False)  # a dry run warns before anything runs
    warned = [x for x in dry.stderr.splitlines() if x.startswith("vaebench: warning: pretrained")]
    assert len(warned) == 1 and "weights.allow_random: true" in warned[0]
    assert not (tmp_path / "results/tiny/weights/staged.json").exists()


def test_device_cuda_without_cuda_fails_in_one_line_and_writes_nothing(tmp_path):
    """compute.device: cuda on a machine where CUDA is hidden (CUDA_VISIBLE_DEVICES empty):
    the first torch job (data preparation needs none) stops with one line naming the setting,
    the reason and the fix, instead of silently training on the CPU."""
    cfg = _small(compute__device="cuda")
    out = smk(tmp_path, cfg, "results/tiny/runs/vae/seed~0/model", check=False,
              env={"CUDA_VISIBLE_DEVICES": ""})  # fmt: skip
    assert out.returncode != 0
    lines = [x for x in out.stderr.splitlines() if x.startswith("vaebench: compute.device")]
    assert len(lines) == 1, out.stderr[-3000:]
    assert "CUDA is not usable here" in lines[0] and "compute.device: cpu" in lines[0]
    assert "CUDA_VISIBLE_DEVICES is empty" in lines[0] or "no CUDA support" in lines[0]
    assert not (tmp_path / "results/tiny/runs/vae/seed~0/model").exists()


def test_device_setting_reaches_every_job_and_provenance_and_reruns_nothing(tiny_study):
    """The tiny study ran under compute.device: auto on the CPU: its artifacts' provenance
    says where and how (device type, setting, threads, deterministic algorithms), and
    setting compute.device: cpu plans nothing (where torch runs is not what it computes)."""
    import json

    meta = json.loads((tiny_study / OUT / "runs/vae/seed~0/model/vaebench.json").read_text())
    info = meta["device_info"]
    assert info["type"] == "cpu" and info["setting"] == "auto" and info["threads"] >= 1
    # training.deterministic defaults to true; torch's algorithms switch is set only where
    # CUDA is usable (runtime.deterministic_training), and provenance says whether it was
    import torch

    assert info["deterministic_algorithms"] is torch.cuda.is_available()
    assert meta["config"]["training"]["deterministic"] is True
    assert pending(tiny_study, {**TINY, "compute": {"device": "cpu"}}) == set()
