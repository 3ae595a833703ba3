"""Experiment tracking: the one module that speaks to Weights & Biases and MLflow.

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

import contextlib
import fcntl
import json
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vaebench import VaebenchError, io

# history.parquet columns that identify a row rather than measure something
HISTORY_KEYS = ("run", "epoch")
GENERATION_METRICS = ("kid_mean", "kid_std", "fid", "fid_inf", "precision", "recall")
WANDB_HINT = (
    "set WANDB_API_KEY or run `wandb login` on a machine with network, or use "
    "tracking.wandb.mode: offline and `wandb sync` later"
)


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


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, f"{key}."))
        else:
            out[key] = json.dumps(v) if isinstance(v, list | bool) or v is None else str(v)
    return out


# --- Weights & Biases -----------------------------------------------------------------------


def _one_line(err: Any, limit: int = 300) -> str:
    """The first line of an exception's message, without a final full stop, at most `limit`
    characters (MLflow's and W&B's messages run long)."""
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    line = (lines[0] if lines else type(err).__name__).rstrip(".")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _wandb_init(settings: dict, study: str, name: str, job_type: str, config: dict, tags: list):
    import wandb

    mode = settings["mode"]
    try:
        return wandb.init(
            project=settings["project"],
            entity=settings["entity"],
            group=study,
            job_type=job_type,
            name=name,
            config=config,
            tags=tags,
            dir=settings["dir"],
            mode=mode,
            reinit="create_new",
            settings=wandb.Settings(
                console="off",
                save_code=False,
                disable_git=True,
                x_disable_stats=True,
                x_save_requirements=False,
                init_timeout=60,
                silent=True,
            ),
        )
    except Exception as err:  # wandb raises UsageError, CommError, AuthenticationError, ...
        hint = f"; {WANDB_HINT}" if mode == "online" else ""
        raise VaebenchError(
            f"wandb: could not start a run with tracking.wandb.mode: {mode} (project "
            f"{settings['project']!r}): {_one_line(err)}{hint}"
        ) from None


def _wandb_finish(run, settings: dict) -> dict[str, Any]:
    try:
        record = {
            "mode": settings["mode"],
            "project": settings["project"],
            "entity": settings["entity"],
            "group": run.group,
            "run_id": run.id,
            "run_dir": os.path.relpath(Path(run.dir).parent),
            "url": run.url if settings["mode"] == "online" else None,
        }
        run.finish()
    except Exception as err:
        raise VaebenchError(
            f"wandb: logging failed with tracking.wandb.mode: {settings['mode']}: "
            f"{_one_line(err)}"
        ) from None
    return record


def wandb_log_run(settings, study, info, config, tags, rows, summary, images) -> dict[str, Any]:
    """One W&B run: config, tags, one history step per epoch, summary metrics, images."""
    import wandb

    wb_tags = [info["model"], f"study:{study}", f"seed:{info['seed']}"]
    if info["beta"] is not None:
        wb_tags.append(f"beta:{float(info['beta']):g}")
    if tags["vaebench.weights_official"] != "true":
        wb_tags.append("stand-in-weights")
    run = _wandb_init(settings, study, info["run"], "run", config, wb_tags)
    try:
        last = rows[-1][0] if rows else 0
        for epoch, values in rows:
            extra = {}
            if epoch == last:
                extra = {k: wandb.Image(str(p), caption=k) for k, p in images.items()}
            run.log({"epoch": epoch, **values, **extra}, step=epoch)
        if not rows:
            run.log({k: wandb.Image(str(p), caption=k) for k, p in images.items()}, step=0)
        run.summary.update(summary)
    except Exception as err:
        with contextlib.suppress(Exception):
            run.finish(exit_code=1)
        raise VaebenchError(
            f"wandb: logging failed with tracking.wandb.mode: {settings['mode']}: "
            f"{_one_line(err)}"
        ) from None
    return _wandb_finish(run, settings)


# --- MLflow ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _store_lock(study_dir: str) -> Iterator[None]:
    """One MLflow writer at a time per study: local track jobs run side by side, and SQLite
    (and creating the store's tables) does not take concurrent writers well."""
    path = Path(study_dir, "tracking", ".mlflow.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _mlflow_error(settings: dict, err: Exception) -> VaebenchError:
    return VaebenchError(
        f"mlflow: could not log to tracking.mlflow.tracking_uri = {settings['tracking_uri']} "
        f"(experiment {settings['experiment']!r}): {_one_line(err)}"
    )


def _mlflow_client(settings: dict, study: str):
    """(client, experiment id); creates the experiment (and a local store) when missing."""
    # fail fast on an unreachable server instead of MLflow's minutes of retries
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=settings["tracking_uri"])
    exp = client.get_experiment_by_name(settings["experiment"])
    if exp is not None:
        return client, exp.experiment_id
    location = settings.get("artifact_location")
    if location:
        Path(location).mkdir(parents=True, exist_ok=True)
        location = Path(location).resolve().as_uri()
    # the experiment kind tag opens MLflow's UI on its model-training view (runs, charts)
    tags = {"vaebench.study": study, "mlflow.experimentKind": "custom_model_development"}
    return client, client.create_experiment(
        settings["experiment"], artifact_location=location, tags=tags
    )


def _mlflow_supersede(client, experiment_id: str, tags: dict[str, str]) -> None:
    """Soft-delete earlier runs logged for this same study/run (restorable with `mlflow runs
    restore`): the experiment shows each run once, as its artifacts are now."""
    query = " and ".join(f"tags.`{k}` = '{tags[k]}'" for k in ("vaebench.study", "vaebench.run"))
    for old in client.search_runs([experiment_id], filter_string=query, max_results=1000):
        client.delete_run(old.info.run_id)


def _mlflow_batches(client, run_id: str, metrics=(), params=(), tags=()) -> None:
    metrics, params, tags = list(metrics), list(params), list(tags)
    for i in range(0, max(len(metrics), len(params), len(tags)), 100):
        client.log_batch(
            run_id, metrics=metrics[i : i + 100], params=params[i : i + 100], tags=tags[i : i + 100]
        )


def mlflow_log_run(settings, study, info, config, tags, rows, summary, images) -> dict[str, Any]:
    """One MLflow run in the study's experiment: params, tags, one step per epoch, summary
    metrics (at the last epoch), images as artifacts under images/."""
    from mlflow.entities import Metric, Param, RunTag

    with _store_lock(settings["study_dir"]):
        try:
            client, exp_id = _mlflow_client(settings, study)
            _mlflow_supersede(client, exp_id, tags)
            run = client.create_run(exp_id, run_name=info["run"], tags=tags)
            run_id = run.info.run_id
            now = int(time.time() * 1000)
            metrics = [Metric(k, v, now, e) for e, values in rows for k, v in values.items()]
            last = rows[-1][0] if rows else 0
            metrics += [Metric(k, v, now, last) for k, v in summary.items()]
            params = [Param(k, v[:6000]) for k, v in _flatten(config).items()]
            _mlflow_batches(client, run_id, metrics, params, [RunTag("mlflow.note.content",
                            f"vaebench run {info['run']} of study {study}")])  # fmt: skip
            for _, path in images.items():
                client.log_artifact(run_id, str(path), artifact_path="images")
            client.set_terminated(run_id)
        except VaebenchError:
            raise
        except Exception as err:
            raise _mlflow_error(settings, err) from None
    return {
        "tracking_uri": settings["tracking_uri"],
        "experiment": settings["experiment"],
        "experiment_id": exp_id,
        "run_id": run_id,
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
    if ml is not None:  # first: the quick one, and the likelier to be misconfigured
        record["mlflow"] = mlflow_log_run(ml, study, info, config, tags, rows, flat, images)
    if wb is not None:
        record["wandb"] = wandb_log_run(wb, study, info, config, tags, rows, flat, images)
    record["logged"] = {
        "epochs": [e for e, _ in rows],
        "history_columns": sorted({k for _, v in rows for k in v}),
        "summary_metrics": sorted(flat),
        "images": sorted(images),
    }
    io.save_json(out, {**record, "versions": io.versions(), "git_commit": io.git_commit()})
    print(f"tracked {info['run']}: {', '.join(k for k in ('mlflow', 'wandb') if k in record)}")


def _table_frame(path: str):
    """A table's Parquet as plain columns for the trackers (numbers stay numbers)."""
    import pandas as pd

    df = pd.read_parquet(path)
    for c in df.columns:
        if not pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]):
            df[c] = df[c].astype(str)
    return df


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
        with _store_lock(ml["study_dir"]):
            try:
                client, exp_id = _mlflow_client(ml, study)
                _mlflow_supersede(client, exp_id, tags)
                run_id = client.create_run(exp_id, run_name=name, tags=tags).info.run_id
                for p in tables:
                    client.log_artifact(run_id, p, artifact_path="tables")
                for p in pngs.values():
                    client.log_artifact(run_id, p, artifact_path="figures")
                client.set_terminated(run_id)
            except Exception as err:
                raise _mlflow_error(ml, err) from None
        record["mlflow"] = {"tracking_uri": ml["tracking_uri"], "experiment": ml["experiment"],
                            "experiment_id": exp_id, "run_id": run_id}  # fmt: skip
    if wb is not None:
        import wandb

        run = _wandb_init(wb, study, name, "study", {"study": study}, [f"study:{study}", "study"])
        try:
            run.log({f"tables/{k}": wandb.Table(dataframe=_table_frame(p))
                     for k, p in parquet.items()}, step=0)  # fmt: skip
            run.log({f"figures/{k}": wandb.Image(p, caption=k) for k, p in pngs.items()}, step=0)
        except Exception as err:
            with contextlib.suppress(Exception):
                run.finish(exit_code=1)
            raise VaebenchError(
                f"wandb: logging failed with tracking.wandb.mode: {wb['mode']}: {_one_line(err)}"
            ) from None
        record["wandb"] = _wandb_finish(run, wb)
    record["logged"] = {"tables": sorted(parquet), "figures": sorted(pngs)}
    io.save_json(out, {**record, "versions": io.versions(), "git_commit": io.git_commit()})
    print(f"tracked study {study}: {', '.join(k for k in ('mlflow', 'wandb') if k in record)}")
