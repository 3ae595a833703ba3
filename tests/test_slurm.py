"""The cluster path: the SLURM workflow profile against a real single-node SLURM cluster.

tests/slurm/up.sh starts SLURM 22.05 from the distribution's packages (munged, slurmctld,
slurmd; one node with one fake GPU declared as GRES), and tests/slurm/down.sh stops what it
started. The tiny study (two models) runs through `--workflow-profile workflow/profiles/slurm`;
the same config runs locally at the same time, and the Parquet results of both must be equal.
Needs root; skipped, with the reason, when that or the packages/daemons are unavailable
(VAEBENCH_REQUIRE_SLURM=1 turns the skip into a failure, for CI).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import ROOT, SNAKEMAKE, TINY, smk

HERE = Path(__file__).resolve().parent
PROFILE = ROOT / "workflow/profiles/slurm"
SLURM_ROOT = Path(tempfile.gettempdir()) / "vaebench-slurm"
TIMEOUT_S = 480  # the whole SLURM run, under `timeout -k 20`

# TINY with two model families (Gaussian and VQ), up to their reconstruction metrics: every
# step of the chain prepare_data -> train (GPU) -> reconstruct -> recon_metrics, plus the
# local rule stage_weights. The full DAG works the same way but takes minutes more here.
CFG = copy.deepcopy(TINY)
CFG["models"] = ["vae", "vqvae"]
# The test node's GPU is a fake (a GRES backed by /dev/null): under compute.device: auto a job
# holding it would rightly fail ("this job holds a SLURM GPU, but CUDA is not usable"), so the
# jobs are asked for the GPU they would hold on a real cluster and run on the CPU.
CFG["compute"] = {"device": "cpu", "gpus": 1}
RUNS = ["vae/seed~0", "vqvae/seed~0"]
TARGETS = [f"results/tiny/runs/{r}/history.parquet" for r in RUNS] + [
    f"results/tiny/metrics/{r}/reconstruction.parquet" for r in RUNS
]
# No network for the SLURM run: proxies at a closed local port (a network namespace, as for
# the local run, would cut Snakemake off from slurmctld too). stage_weights (a local rule)
# fails to download at once and stages the seeded random stand-in weights, as the local run
# does, and a compute job that tried to download anything would fail.
OFFLINE = {
    k: "http://127.0.0.1:9"
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
}
SUBMITTED = re.compile(r"submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+)/")


def _unavailable(reason: str):
    if os.environ.get("VAEBENCH_REQUIRE_SLURM") == "1":
        pytest.fail(f"SLURM test required (VAEBENCH_REQUIRE_SLURM=1) but: {reason}")
    pytest.skip(f"SLURM test skipped: {reason}")


def _daemon_pids() -> dict[str, int]:
    pids = {}
    for f in (SLURM_ROOT / "run").glob("*.pid"):
        text = f.read_text().strip()
        if text.isdigit():
            pids[f.stem] = int(text)
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def cluster():
    """A running single-node cluster; stopped again at the end if this fixture started it."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        _unavailable("needs root on Linux (starts munged, slurmctld and slurmd)")
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        _unavailable("SLURM is not installed and there is no apt-get to install it")
    env = {**os.environ, "SLURM_ROOT": str(SLURM_ROOT), "NGPU": "1", "WITH_DBD": "0"}
    t0 = time.monotonic()
    try:
        up = subprocess.run(
            ["bash", str(HERE / "slurm/up.sh")],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
    except subprocess.TimeoutExpired:
        subprocess.run(["bash", str(HERE / "slurm/down.sh")], env=env, timeout=120)
        _unavailable("tests/slurm/up.sh took more than 10 minutes")
    print(up.stdout, up.stderr, f"cluster up in {time.monotonic() - t0:.1f} s", sep="\n")
    if up.returncode != 0:
        subprocess.run(["bash", str(HERE / "slurm/down.sh")], env=env, timeout=120)
        tail = "\n".join((up.stdout + up.stderr).strip().splitlines()[-8:])
        _unavailable(f"tests/slurm/up.sh failed ({up.returncode}):\n{tail}")
    started = "already running" not in up.stdout
    pids = _daemon_pids()
    yield pids
    if not started:
        print("the cluster was running before this test: left running")
        return
    down = subprocess.run(
        ["bash", str(HERE / "slurm/down.sh")], capture_output=True, text=True, env=env, timeout=120
    )
    print(down.stdout, down.stderr, sep="\n")
    still = {d: p for d, p in pids.items() if _alive(p)}
    assert not still, f"daemons still running after down.sh: {still}"
    assert not (Path("/etc/slurm/slurm.conf").is_symlink()), "down.sh left /etc/slurm/slurm.conf"


def _slurm_run(work: Path, config: dict) -> subprocess.CompletedProcess:
    """The workflow through the SLURM profile (squeue status: the test cluster has no slurmdbd)."""
    cfg = work / "config.test.yaml"
    cfg.write_text(yaml.safe_dump(config))
    cmd = [
        *("timeout", "-k", "20", str(TIMEOUT_S)),
        *SNAKEMAKE,
        *("-s", str(ROOT / "Snakefile"), "--directory", str(work), "--configfile", str(cfg)),
        *("--workflow-profile", str(PROFILE)),
        *("--jobs", "4", "--latency-wait", "5"),
        *("--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2"),
        "--slurm-keep-successful-logs",
        *TARGETS,
    ]
    env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
    env.update(OFFLINE, PYTHONHASHSEED="0")  # --export=ALL: the jobs inherit it
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        why = "timed out" if out.returncode in (124, 137) else "failed"
        logs = "\n".join(
            f"--- {p}\n{p.read_text()[-3000:]}" for p in work.glob(".snakemake/slurm_logs/**/*.log")
        )
        raise AssertionError(
            f"snakemake on SLURM {why} ({out.returncode}):\n{out.stdout}\n{out.stderr}\n{logs}"
        )
    return out


@pytest.fixture(scope="module")
def study(cluster, tmp_path_factory):
    """The config run through SLURM and, at the same time, locally (for the comparison)."""
    slurm_dir = tmp_path_factory.mktemp("slurm_study")
    local_dir = tmp_path_factory.mktemp("local_study")
    local: dict = {}

    def run_local():
        try:  # a flag before the targets: smk() ends its options with `--resources gpu=1`
            smk(local_dir, CFG, "--rerun-incomplete", *TARGETS, timeout=TIMEOUT_S, offline=True)
        except BaseException as e:  # re-raised in the test's thread
            local["error"] = e

    t0 = time.monotonic()
    thread = threading.Thread(target=run_local)
    thread.start()
    try:
        out = _slurm_run(slurm_dir, CFG)
    finally:
        thread.join()
    print(f"SLURM + local runs: {time.monotonic() - t0:.1f} s")
    if "error" in local:
        raise local["error"]
    jobs = {int(j): rule for j, rule in SUBMITTED.findall(out.stdout + out.stderr)}
    return {"slurm": slurm_dir, "local": local_dir, "log": out.stdout + out.stderr, "jobs": jobs}


def _scontrol(jobid: int) -> dict[str, str]:
    """`scontrol -d show job` as a dict (finished jobs stay listed for MinJobAge = 10 min)."""
    out = subprocess.run(
        ["scontrol", "-d", "-o", "show", "job", str(jobid)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)


@pytest.mark.slurm
@pytest.mark.slow
def test_gpu_jobs_get_a_gpu_and_cpu_jobs_none(study):
    """Every job that can use a GPU declares it (compute.gpus: train, reconstruct,
    recon_metrics here) and gets one from SLURM; data preparation asks for none."""
    jobs = study["jobs"]
    rules = sorted(set(jobs.values()))
    assert rules == ["prepare_data", "recon_metrics", "reconstruct", "train"], study["log"]
    assert list(jobs.values()).count("train") == len(RUNS), jobs
    for jobid, rule in jobs.items():
        info = _scontrol(jobid)
        assert info["JobState"] == "COMPLETED", (jobid, rule, info)
        assert info["Comment"].startswith(f"rule_{rule}"), (jobid, rule, info["Comment"])
        assert info["TimeLimit"] != "UNLIMITED" and info["MinMemoryNode"] != "0", info
        if rule in ("train", "reconstruct", "recon_metrics"):
            assert info.get("TresPerJob") == "gres:gpu:1", (jobid, info)  # asked: --gpus=1
            assert info["JOB_GRES"] == "gpu:1", (jobid, info)  # and got the node's fake GPU
        if rule == "train":
            assert info["CPUs/Task"] == "2", info  # threads: 2, as in the local run
        if rule in ("reconstruct", "recon_metrics"):
            assert info["CPUs/Task"] == "2", info  # compute.eval_threads (default 2)
        if rule == "prepare_data":
            assert "gpu" not in info.get("TresPerJob", ""), (jobid, rule, info)
            assert info["JOB_GRES"] == "(null)", (jobid, rule, info)
    # --slurm-keep-successful-logs: SLURM's own log of each training job, named by its job id
    train_logs = {
        int(p.stem) for p in study["slurm"].glob(".snakemake/slurm_logs/rule_train/*/*.log")
    }
    assert train_logs == {j for j, r in jobs.items() if r == "train"}


@pytest.mark.slurm
@pytest.mark.slow
def test_local_rules_are_not_submitted(study):
    assert "stage_weights" not in study["jobs"].values()
    assert re.search(r"^localrule stage_weights:", study["log"], re.M), study["log"]


def _provenance(path: Path) -> dict:
    """The file's vaebench metadata without what may differ between two equal runs: wall-clock
    seconds, and the git commit (here other work may be committed while the test runs)."""
    meta = json.loads(pq.read_schema(path).metadata[b"vaebench"])
    meta.pop("git_commit", None)
    meta.get("training", {}).pop("train_seconds", None)
    return meta


@pytest.mark.slurm
@pytest.mark.slow
def test_slurm_results_equal_local_results(study):
    """Bitwise: same code, data, seeds and thread count on the same CPU. Only the wall-clock
    `seconds` column of the training history differs, by nature."""
    slurm, local = study["slurm"], study["local"]
    for target in TARGETS:
        a, b = pd.read_parquet(local / target), pd.read_parquet(slurm / target)
        if target.endswith("history.parquet"):
            assert (a["seconds"] > 0).all() and (b["seconds"] > 0).all()
            a, b = a.drop(columns="seconds"), b.drop(columns="seconds")
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=target)
        assert _provenance(local / target) == _provenance(slurm / target), target
    for run in RUNS:
        x, y = (np.load(d / "results/tiny/runs" / run / "recon.npy") for d in (local, slurm))
        assert x.tobytes() == y.tobytes(), f"{run}/recon.npy differs"
        x, y = (np.load(d / "results/tiny/runs" / run / "elbo_terms.npz") for d in (local, slurm))
        assert x.files == y.files and all(x[k].tobytes() == y[k].tobytes() for k in x.files), run


def test_profile_is_a_slurm_profile_without_a_global_gpu_cap():
    """Static checks of workflow/profiles/slurm/config.yaml (no cluster needed)."""
    prof = yaml.safe_load((PROFILE / "config.yaml").read_text())
    assert prof["executor"] == "slurm"
    assert prof["retries"] >= 1 and prof["rerun-incomplete"] is True
    assert "resources" not in prof, "a global gpu resource would cap concurrent training jobs"
    defaults = prof["default-resources"]
    assert "attempt" in str(defaults["runtime"]) and "attempt" in str(defaults["mem_mb"])
    text = (PROFILE / "config.yaml").read_text()
    assert "# slurm_partition:" in text and "# slurm_account:" in text
