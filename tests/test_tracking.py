"""Tracking: a finished tiny study logged to W&B (offline) and MLflow (a local SQLite store),
read back with the packages' own readers; turning tracking on reruns nothing but tracking."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import OUT, TINY, copy_of, pending, smk

from vaebench import VaebenchError, tracking

pytestmark = pytest.mark.e2e

RUNS = ["vae/seed~0", "vqvae/seed~0"]
BASE = {
    **TINY,
    "models": ["vae", "vqvae"],
    "training": {**TINY["training"], "epochs": 2},
    "sampling": {**TINY["sampling"], "samplers": ["normal", "gmm"]},
}
TRACKED = {
    **BASE,
    "tracking": {"wandb": {"mode": "offline", "project": "vaebench-test"},
                 "mlflow": {"enabled": True}},
}  # fmt: skip
SAMPLERS = {"vae/seed~0": ["normal", "gmm"], "vqvae/seed~0": ["gmm"]}
WANDB = Path(sys.executable).parent / "wandb"


def _no_tracker_env(mp: pytest.MonkeyPatch, home: Path) -> None:
    """No credentials, no network modes: W&B offline and MLflow local only."""
    for key in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL",
                "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN"):  # fmt: skip
        mp.delenv(key, raising=False)
    mp.setenv("WANDB_MODE", "offline")
    mp.setenv("WANDB_CONFIG_DIR", str(home / "wandb-config"))
    mp.setenv("WANDB_CACHE_DIR", str(home / "wandb-cache"))
    mp.setenv("WANDB_DATA_DIR", str(home / "wandb-data"))


@pytest.fixture(scope="module")
def tracked(tiny_study, tmp_path_factory):
    """The tiny study run once without tracking, the plan with tracking turned on, and the
    same study after the tracking jobs ran (all offline)."""
    work = copy_of(tiny_study, tmp_path_factory, "tracking")  # BASE's runs are TINY's
    with pytest.MonkeyPatch.context() as mp:
        _no_tracker_env(mp, work / "home")
        smk(work, BASE, offline=True)
        plan = pending(work, TRACKED)
        smk(work, TRACKED, offline=True)
        plan_off = pending(work, BASE)
    return work, plan, plan_off


def test_turning_tracking_on_plans_only_the_tracking_jobs(tracked):
    _, plan, plan_off = tracked
    expected = {f"{OUT}/tracking/{r}.json" for r in RUNS} | {f"{OUT}/tracking/study.json"}
    assert plan == expected
    assert plan_off == set()  # and turning it off again plans nothing


def _history(work: Path, run: str) -> dict[str, list[tuple[int, float]]]:
    """history.parquet as {column: [(epoch, value), ...]} over its finite values."""
    df = pd.read_parquet(work / OUT / "runs" / run / "history.parquet")
    out = {}
    for col in df.columns:
        if col in ("run", "epoch") or not pd.api.types.is_numeric_dtype(df[col]):
            continue
        pairs = zip(df["epoch"], df[col], strict=True)
        points = [(int(e), float(v)) for e, v in pairs if np.isfinite(v)]
        if points:
            out[col] = points
    return out


def _mlflow(work: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{work}/{OUT}/mlflow.db")
    exp = client.get_experiment_by_name("vaebench-tiny")
    assert exp is not None, "the study's experiment"
    runs = client.search_runs([exp.experiment_id])
    return client, exp, {r.data.tags["vaebench.run"]: r for r in runs}


def test_mlflow_holds_every_epoch_of_every_run(tracked):
    work, _, _ = tracked
    client, exp, runs = _mlflow(work)
    assert set(runs) == {*RUNS, "study"}  # one active run each, grouped in one experiment
    assert Path(exp.artifact_location.removeprefix("file://")).is_relative_to(work / OUT)
    for run_id in RUNS:
        run = runs[run_id]
        assert run.info.run_name == run_id and run.info.status == "FINISHED"
        assert run.data.tags["vaebench.study"] == "tiny"
        assert run.data.tags["vaebench.model"] == run_id.split("/")[0]
        assert run.data.params["train.training.epochs"] == "2"
        history = _history(work, run_id)
        assert {"train_loss", "val_mse", "seconds"} <= set(history)
        for col, points in history.items():
            got = client.get_metric_history(run.info.run_id, col)
            assert sorted((m.step, m.value) for m in got) == points, col
            assert len(got) == 2  # one point per epoch
        rec = pd.read_parquet(work / OUT / "metrics" / run_id / "reconstruction.parquet")
        assert run.data.metrics["recon/mse"] == pytest.approx(rec["mse"].mean(), rel=1e-12)
        assert run.data.metrics["recon/n_images"] == len(rec) == TINY["dataset"]["n_test"]
        assert "recon/lpips" not in run.data.metrics  # stand-in weights: left out
        assert run.data.tags["vaebench.weights_official"] == "false"
        images = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "images")}
        assert images == {"recon_grid.png", *(f"samples_{s}.png" for s in SAMPLERS[run_id])}
    study = {Path(a.path).name for a in client.list_artifacts(runs["study"].info.run_id, "tables")}
    assert "reconstruction.csv" in study and "generation.parquet" in study
    record = json.loads((work / OUT / "tracking" / "vae" / "seed~0.json").read_text())
    assert record["mlflow"]["run_id"] == runs["vae/seed~0"].info.run_id


def _wandb_records(run_dir: Path) -> list[dict]:
    """The run's offline transaction log, read by wandb's own reader (`wandb leet inspect`)."""
    out = subprocess.run(
        [str(WANDB), "leet", "inspect", "--json", str(run_dir)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def test_wandb_offline_runs_hold_the_same_history(tracked):
    work, _, _ = tracked
    dirs = sorted((work / OUT / "wandb").glob("offline-run-*"))
    assert len(dirs) == 3  # two runs and the study's tables and figures
    seen = {}
    for d in dirs:
        records = _wandb_records(d)
        run = next(r["run"] for r in records if r["type"] == "run")
        assert run["run_group"] == "tiny" and run["project"] == "vaebench-test"
        seen[run["display_name"]] = (run, [r["history"] for r in records if r["type"] == "history"])
    assert set(seen) == {*RUNS, "tiny: tables and figures"}
    for run_id in RUNS:
        run, rows = seen[run_id]
        assert run["job_type"] == "run" and "study:tiny" in run["tags"]
        assert run["config"]["update"]["run"] == run_id
        assert run["config"]["update"]["train"]["training"]["epochs"] == 2
        assert [r["step"].get("num", 0) for r in rows] == [1, 2]  # step = epoch
        for col, points in _history(work, run_id).items():
            got = [(r["step"].get("num", 0), r["item"][col]) for r in rows if col in r["item"]]
            assert got == points, col  # float64 values through JSON: exact
        # media are logged at the last epoch; the reader shows them as flattened keys
        images = {k.removesuffix("._type") for k, v in rows[-1]["item"].items()
                  if k.endswith("._type") and v == "image-file"}  # fmt: skip
        assert images == {"reconstruction", *(f"samples_{s}" for s in SAMPLERS[run_id])}
    record = json.loads((work / OUT / "tracking" / "vqvae" / "seed~0.json").read_text())
    assert record["wandb"]["mode"] == "offline" and record["wandb"]["group"] == "tiny"
    assert (work / record["wandb"]["run_dir"]).is_dir()  # relative to the workdir
    assert any(d.name.endswith(record["wandb"]["run_id"]) for d in dirs)


def _artifact_hashes(work: Path) -> dict[str, str]:
    files = [p for d in ("runs", "metrics") for p in (work / OUT / d).rglob("*") if p.is_file()]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _track_args(work: Path, run: str, trackers: dict, out: Path) -> dict:
    base = work / OUT
    s = SAMPLERS[run]
    return dict(
        info={"run": run, "model": run.split("/")[0], "family": "VAE", "beta": 1.0, "seed": 0},
        trackers=trackers,
        samplers=s,
        history=str(base / "runs" / run / "history.parquet"),
        reconstruction=str(base / "metrics" / run / "reconstruction.parquet"),
        generation=[str(base / "metrics" / run / f"generation_{x}.parquet") for x in s],
        roundtrip=[str(base / "metrics" / run / f"roundtrip_{x}.parquet") for x in s],
        recon_grid=str(base / "runs" / run / "recon_grid.png"),
        sample_grids=[str(base / "runs" / run / f"samples_{x}.png") for x in s],
        out=str(out),
    )


def test_a_tracker_failure_is_one_line_naming_tracker_and_setting(
    tracked, tmp_path, monkeypatch
):
    work, _, _ = tracked
    before = _artifact_hashes(work)
    out = tmp_path / "record.json"
    bad_uri = {"study": "tiny", "study_dir": str(tmp_path), "wandb": None,
               "mlflow": {"tracking_uri": "nosuchscheme://nowhere", "experiment": "x",
                          "artifact_location": None}}  # fmt: skip
    with pytest.raises(VaebenchError) as err:
        tracking.track(**_track_args(work, "vae/seed~0", bad_uri, out))
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("mlflow: ")
    assert "tracking.mlflow.tracking_uri = nosuchscheme://nowhere" in msg
    # W&B online with no API key (and no network needed to find that out)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    online = {"study": "tiny", "study_dir": str(tmp_path), "mlflow": None,
              "wandb": {"mode": "online", "project": "p", "entity": None,
                        "dir": str(tmp_path)}}  # fmt: skip
    with pytest.raises(VaebenchError) as err:
        tracking.track(**_track_args(work, "vae/seed~0", online, out))
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("wandb: ")
    assert "tracking.wandb.mode: online" in msg and "WANDB_API_KEY" in msg
    assert not out.exists()
    assert _artifact_hashes(work) == before  # the run's artifacts are untouched


def test_no_tracker_on_is_one_line(tmp_path):
    with pytest.raises(VaebenchError, match="no tracker is on: set tracking.wandb.mode"):
        tracking.track(**_track_args(Path("."), "vae/seed~0", {"study": "tiny",
                       "study_dir": str(tmp_path), "wandb": None, "mlflow": None},
                       tmp_path / "x.json"))  # fmt: skip
