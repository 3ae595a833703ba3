"""Experiment tracking: the jobs that log runs to Weights & Biases and MLflow (through
vaebench.tracking_wandb and vaebench.tracking_mlflow, the only modules that import them).

Tracking is a step of the DAG, not a side effect of training: the track job reads a finished
run's artifacts (history.parquet, its metric Parquet files, its grids) and logs them, and
track_study logs the study's tables and figures once. The trackers' settings reach only these
jobs (vaebench.config.tracking_params), so turning tracking on never retrains anything, and
the jobs only read the run's files: a tracker that fails leaves them as they were.

What a run looks like in a tracker:
- name: the run id (`beta_vae/beta~4/seed~0`); W&B group and MLflow experiment (plus tag
  `vaebench.study`): the study, so the tracker's UI puts the β sweep side by side;
- config / params: the identity (study, run, model, family, β, seed) and the config slice the
  run was trained and scored with, read from the artifacts' own provenance records;
- one step per epoch (step = epoch): every numeric column of history.parquet;
- summary metrics: means over the test images (`recon/<metric>`, with `recon/n_images`),
  the set-level generation metrics per sampler (`gen/<sampler>/<metric>`, with N generated
  and N reference) and the round trip (`roundtrip/<sampler>/<metric>`); metrics computed
  with learned networks (LPIPS, FID, KID, precision, recall) are left out when the weights
  were stand-ins, as the tables do, and the tag `vaebench.weights_official` says so;
- images: the reconstruction grid and one sample grid per sampler.

A tracker failure (online W&B with no network or no API key, a bad MLflow URI) ends the job
with one line naming the tracker and the setting (VaebenchError). Only the track jobs talk to
the trackers, and they are local rules: on a cluster they run where snakemake runs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from vaebench import VaebenchError, io, tracking_mlflow, tracking_wandb
from vaebench.metrics import registry

# history.parquet columns that identify a row rather than measure something
HISTORY_KEYS = ("run", "epoch")
# the set-level metrics (and KID's spread) that the trackers log, from the metric registry
GENERATION_METRICS = (*registry.SET, "kid_std")


# --- reading the artifacts ------------------------------------------------------------------


def history_rows(path: str) -> list[tuple[int, dict[str, float]]]:
    """(epoch, {column: value}) per history.parquet row: the finite numeric values only (a
    column that does not apply to a family, e.g. VAE's discriminator_loss, is NaN there)."""
    import pandas as pd

    df = pd.read_parquet(path)
    cols = [c for c in df.columns if c not in HISTORY_KEYS and pd.api.types.is_numeric_dtype(df[c])]
    rows = []
    for rec in df.to_dict("records"):
        values = {c: float(rec[c]) for c in cols if _finite(rec[c])}
        rows.append((int(rec["epoch"]), values))
    return rows


def _finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _means(df, metrics, keep) -> dict[str, dict[str, float | int]]:
    """{metric: {"mean", "n"}} over the finite values of each kept column of `df`."""
    import numpy as np

    out = {}
    for m in metrics:
        if m not in df or not keep(m):
            continue
        x = np.asarray(df[m], dtype=np.float64)
        x = x[np.isfinite(x)]
        if len(x):
            out[m] = {"mean": float(x.mean()), "n": int(len(x))}
    return out


def run_summary(
    reconstruction: str, generation: list[str], roundtrip: list[str] | None, samplers: list[str]
) -> dict[str, Any]:
    """A run's headline metrics, each with its N, from its metric Parquet files.

    reconstruction: the mean over test images of every per-image metric that applies to the
    family (vaebench.names.NOT_APPLICABLE; NaN values are not counted); generation: the
    set-level metrics per sampler with N generated and N reference; roundtrip: means of the
    samples' round-trip metrics (none when `roundtrip` is None). With stand-in weights the
    learned metrics are left out.
    """
    import pandas as pd

    from vaebench import names

    meta = io.read_parquet_metadata(reconstruction)
    official = bool(meta.get("weights_official"))
    rec = pd.read_parquet(reconstruction)
    model = str(rec["model"].iloc[0])

    def keep(metric: str) -> bool:
        if (model, metric) in names.NOT_APPLICABLE:
            return False
        return official or metric not in names.LEARNED

    out: dict[str, Any] = {"weights_official": official, "n_images": len(rec)}
    out["reconstruction"] = _means(rec, names.METRICS, keep)
    out["generation"], out["roundtrip"] = {}, {}
    for sampler, gen_path in zip(samplers, generation, strict=True):
        row = pd.read_parquet(gen_path).iloc[0]
        out["generation"][sampler] = {
            "n_generated": int(row["n_generated"]),
            "n_reference": int(row["n_reference"]),
            "metrics": {m: float(row[m]) for m in GENERATION_METRICS
                        if m in row and keep(m) and _finite(row[m])},
        }  # fmt: skip
    for sampler, rt_path in zip(samplers, roundtrip, strict=True) if roundtrip is not None else ():
        out["roundtrip"][sampler] = _means(pd.read_parquet(rt_path), names.ROUNDTRIP_METRICS, keep)
    return out


def summary_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """run_summary as flat tracker metrics: recon/<m>, recon/n_images, gen/<s>/<m>, ..."""
    flat = {"recon/n_images": float(summary["n_images"])}
    flat.update({f"recon/{m}": v["mean"] for m, v in summary["reconstruction"].items()})
    for s, g in summary["generation"].items():
        flat[f"gen/{s}/n_generated"] = float(g["n_generated"])
        flat[f"gen/{s}/n_reference"] = float(g["n_reference"])
        flat.update({f"gen/{s}/{m}": v for m, v in g["metrics"].items()})
    for s, r in summary["roundtrip"].items():
        flat.update({f"roundtrip/{s}/{m}": v["mean"] for m, v in r.items()})
        if r:
            flat[f"roundtrip/{s}/n_images"] = float(next(iter(r.values()))["n"])
    return flat


def run_config(info: dict[str, Any], study: str, history: str, reconstruction: str) -> dict:
    """The identity and the config slice of a run, from its artifacts' provenance: what it was
    trained with (history.parquet) and scored with (reconstruction.parquet)."""
    trained = io.read_parquet_metadata(history)
    scored = io.read_parquet_metadata(reconstruction)
    return {
        "study": study,
        "run": info["run"],
        "model": info["model"],
        "family": info["family"],
        "beta": info["beta"],
        "seed": info["seed"],
        "train": trained.get("config", {}),
        "metrics": scored.get("config", {}).get("metrics", {}),
        "weights_official": bool(scored.get("weights_official")),
        "git_commit": trained.get("git_commit"),
    }


def run_tags(info: dict[str, Any], study: str, official: bool) -> dict[str, str]:
    beta = "none" if info["beta"] is None else f"{float(info['beta']):g}"
    return {
        "vaebench.study": study,
        "vaebench.run": info["run"],
        "vaebench.model": info["model"],
        "vaebench.family": info["family"],
        "vaebench.beta": beta,
        "vaebench.seed": str(info["seed"]),
        "vaebench.weights_official": str(official).lower(),
    }


# --- the jobs -------------------------------------------------------------------------------


def _trackers(trackers: dict[str, Any]) -> tuple[dict | None, dict | None]:
    wb, ml = trackers.get("wandb"), trackers.get("mlflow")
    if wb is None and ml is None:
        raise VaebenchError(
            "no tracker is on: set tracking.wandb.mode (offline or online) or "
            "tracking.mlflow.enabled: true"
        )
    if ml is not None:
        ml = {**ml, "study_dir": trackers["study_dir"]}
    return wb, ml


def track(
    info: dict,
    trackers: dict,
    samplers: list[str],
    history: str,
    reconstruction: str,
    generation: list[str],
    roundtrip: list[str],
    recon_grid: str,
    sample_grids: list[str],
    out: str,
    threads: int = 1,
) -> None:
    """Log one finished run to the trackers that are on; then write the record `out`."""
    study = trackers["study"]
    wb, ml = _trackers(trackers)
    rows = history_rows(history)
    summary = run_summary(reconstruction, generation, roundtrip, samplers)
    flat = summary_metrics(summary)
    config = run_config(info, study, history, reconstruction)
    tags = run_tags(info, study, summary["weights_official"])
    images = {"reconstruction": recon_grid}
    images.update({f"samples_{s}": p for s, p in zip(samplers, sample_grids, strict=True)})
    record: dict[str, Any] = {"study": study, "run": info["run"]}
    logged = (study, info, config, tags, rows, flat, images)
    if ml is not None:  # first: the quick one, and the likelier to be misconfigured
        record["mlflow"] = tracking_mlflow.log_run(ml, *logged)
    if wb is not None:
        record["wandb"] = tracking_wandb.log_run(wb, *logged)
    record["logged"] = {
        "epochs": [e for e, _ in rows],
        "history_columns": sorted({k for _, v in rows for k in v}),
        "summary_metrics": sorted(flat),
        "images": sorted(images),
    }
    io.save_json(out, {**record, "versions": io.versions(), "git_commit": io.git_commit()})
    print(f"tracked {info['run']}: {', '.join(k for k in ('mlflow', 'wandb') if k in record)}")


def track_study(
    trackers: dict, tables: list[str], figures: list[str], out: str, threads: int = 1
) -> None:
    """Log the study's tables (every format, and the Parquet ones as tables) and figures
    (PNG) once, as one extra run named after the study in its group / experiment."""
    study = trackers["study"]
    wb, ml = _trackers(trackers)
    name = f"{study}: tables and figures"
    parquet = {Path(p).stem: p for p in tables if p.endswith(".parquet")}
    pngs = {Path(p).stem: p for p in figures if p.endswith(".png")}
    tags = {"vaebench.study": study, "vaebench.run": "study", "vaebench.kind": "study"}
    record: dict[str, Any] = {"study": study}
    if ml is not None:
        record["mlflow"] = tracking_mlflow.log_study(ml, study, name, tags, tables, pngs)
    if wb is not None:
        record["wandb"] = tracking_wandb.log_study(wb, study, name, parquet, pngs)
    record["logged"] = {"tables": sorted(parquet), "figures": sorted(pngs)}
    io.save_json(out, {**record, "versions": io.versions(), "git_commit": io.git_commit()})
    print(f"tracked study {study}: {', '.join(k for k in ('mlflow', 'wandb') if k in record)}")
