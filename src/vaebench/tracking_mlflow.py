"""MLflow: one run per trained model and one for the study, in the study's experiment
(vaebench.tracking). A failure (a bad tracking URI, an unreachable server) ends the job with
one line naming tracking.mlflow.tracking_uri (VaebenchError).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vaebench import VaebenchError, one_line


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, f"{key}."))
        else:
            out[key] = json.dumps(v) if isinstance(v, list | bool) or v is None else str(v)
    return out


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
        f"(experiment {settings['experiment']!r}): {one_line(err)}"
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


def log_run(settings, study, info, config, tags, rows, summary, images) -> dict[str, Any]:
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


def log_study(settings: dict, study: str, name: str, tags: dict, tables: list, pngs: dict) -> dict:
    """The study's run: every table file under tables/ and the figures under figures/."""
    with _store_lock(settings["study_dir"]):
        try:
            client, exp_id = _mlflow_client(settings, study)
            _mlflow_supersede(client, exp_id, tags)
            run_id = client.create_run(exp_id, run_name=name, tags=tags).info.run_id
            for p in tables:
                client.log_artifact(run_id, p, artifact_path="tables")
            for p in pngs.values():
                client.log_artifact(run_id, p, artifact_path="figures")
            client.set_terminated(run_id)
        except Exception as err:
            raise _mlflow_error(settings, err) from None
    return {"tracking_uri": settings["tracking_uri"], "experiment": settings["experiment"],
            "experiment_id": exp_id, "run_id": run_id}  # fmt: skip
