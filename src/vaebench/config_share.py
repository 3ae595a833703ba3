"""The params and outputs of the tracking and sharing rules (track, track_study, publish,
compare: workflow/rules/share.smk and report.smk), beside the run table's logic in
vaebench.config, which re-exports them. Light, like config: Snakemake parses it."""

from __future__ import annotations

from typing import Any

from vaebench import VaebenchError
from vaebench.config import (
    TABLE_FORMATS,
    Run,
    canonical,
    format_beta,
    run_info,
    samplers,
    study_dir,
)


def tracking_enabled(config: dict[str, Any]) -> bool:
    t = config["tracking"]
    return t["wandb"]["mode"] != "disabled" or bool(t["mlflow"]["enabled"])


def tracking_params(config: dict[str, Any]) -> dict[str, Any]:
    """The track jobs' tracker settings, with the study's defaults filled in (None: off).

    Only the track and track_study jobs get them: they are no training or metric job's
    params, so turning tracking on (or changing a tracker) reruns nothing but tracking. W&B
    writes under the study folder (`dir`, then wandb/); MLflow's default store is a SQLite file
    in it, with the artifacts beside it, which `mlflow ui` opens with no server.
    """
    t, study, base = config["tracking"], config["study"], study_dir(config)
    wb, ml = t["wandb"], t["mlflow"]
    wandb = None
    if wb["mode"] != "disabled":
        wandb = {"mode": wb["mode"], "project": wb["project"] or "vaebench",
                 "entity": wb["entity"], "dir": base}  # fmt: skip
    mlflow = None
    if ml["enabled"]:
        local = ml["tracking_uri"] is None
        mlflow = {
            "tracking_uri": f"sqlite:///{base}/mlflow.db" if local else ml["tracking_uri"],
            "experiment": ml["experiment"] or f"vaebench-{study}",
            "artifact_location": f"{base}/mlartifacts" if local else None,
        }
    return canonical({"study": study, "study_dir": base, "wandb": wandb, "mlflow": mlflow})


def track_inputs(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """What the track job reads (named for unpack()): the run's finished artifacts, with the
    per-sampler files in the order of samplers(config, run)."""
    base = study_dir(config)
    runs_dir, metrics_dir = f"{base}/runs/{run.id}", f"{base}/metrics/{run.id}"
    used = samplers(config, run)
    return {
        "history": f"{runs_dir}/history.parquet",
        "reconstruction": f"{metrics_dir}/reconstruction.parquet",
        "generation": [f"{metrics_dir}/generation_{s}.parquet" for s in used],
        "roundtrip": [f"{metrics_dir}/roundtrip_{s}.parquet" for s in used],
        "recon_grid": f"{runs_dir}/recon_grid.png",
        "sample_grids": [f"{runs_dir}/samples_{s}.png" for s in used],
    }


def track_outputs(config: dict[str, Any], runs: list[Run]) -> list[str]:
    """The tracking records `rule all` asks for: none unless a tracker is on."""
    if not tracking_enabled(config):
        return []
    base = study_dir(config)
    return [f"{base}/tracking/{r.id}.json" for r in runs] + [f"{base}/tracking/study.json"]


def compare_outputs(config: dict[str, Any]) -> list[str]:
    """tables/compared.* when compare_to.file is set (published numbers next to the study's)."""
    if not config["compare_to"]["file"]:
        return []
    return [f"{study_dir(config)}/tables/compared.{ext}" for ext in TABLE_FORMATS]


def hub_repo_id(pattern: str, run: Run, study: str) -> str:
    """publish.hf_repo's pattern for one run: {model}, {beta} ('na' without a β), {seed},
    {run} (the run id with '/' as '-' and no '~': beta_vae-beta4-seed0) and {study}."""
    beta = format_beta(run.beta) if run.beta is not None else "na"
    slug = run.id.replace("/", "-").replace("~", "")
    return pattern.format(model=run.model, beta=beta, seed=run.seed, run=slug, study=study)


def publish_inputs(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """What the publish job reads (named for unpack()); per-sampler files in samplers() order."""
    base = study_dir(config)
    runs_dir = f"{base}/runs/{run.id}"
    used = samplers(config, run)
    t = track_inputs(config, run)
    return {
        "model": f"{runs_dir}/model",
        "history": t["history"],
        "reconstruction": t["reconstruction"],
        "generation": t["generation"],
        "recon_grid": t["recon_grid"],
        "sample_grids": t["sample_grids"],
        "recon_meta": f"{runs_dir}/recon.json",
        "samples_meta": [f"{runs_dir}/samples_{s}.json" for s in used],
    }


def publish_params(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """The publish job's settings: the resolved Hub repository, push/private/license, and
    what the model card says about the data (the dataset section without its local root)."""
    p = config["publish"]
    return canonical(
        {
            "study": config["study"],
            "run": run_info(run),
            "samplers": samplers(config, run),
            "hf_repo": hub_repo_id(p["hf_repo"], run, config["study"]) if p["hf_repo"] else None,
            "push": p["push"],
            "private": p["private"],
            "license": p["license"],
            "dataset": {k: v for k, v in config["dataset"].items() if k != "root"},
        }
    )


def publish_outputs(config: dict[str, Any], runs: list[Run]) -> list[str]:
    """The Hub folders `rule all` asks for: none unless publish.enabled; of the runs that
    publish.runs names (shell-style patterns of run ids, e.g. `vae/*`), or all runs."""
    from fnmatch import fnmatchcase

    p = config["publish"]
    if not p["enabled"]:
        return []
    chosen = [r for r in runs if not p["runs"] or any(fnmatchcase(r.id, x) for x in p["runs"])]
    if p["runs"] and not chosen:
        raise VaebenchError(
            f"key 'publish.runs' {p['runs']} matches none of the study's runs (e.g. "
            f"{runs[0].id if runs else 'vae/seed~0'}); give run ids or patterns such as 'vae/*'"
        )
    return [f"{study_dir(config)}/publish/{r.id}" for r in chosen]
