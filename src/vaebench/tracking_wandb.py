"""Weights & Biases: one run per trained model and one for the study (vaebench.tracking).

A failure (online mode with no network or API key) ends the job with one line naming the
mode and what to do (VaebenchError).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from vaebench import VaebenchError, one_line

WANDB_HINT = (
    "set WANDB_API_KEY or run `wandb login` on a machine with network, or use "
    "tracking.wandb.mode: offline and `wandb sync` later"
)


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
            f"{settings['project']!r}): {one_line(err)}{hint}"
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
            f"{one_line(err)}"
        ) from None
    return record


def log_run(settings, study, info, config, tags, rows, summary, images) -> dict[str, Any]:
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
            f"{one_line(err)}"
        ) from None
    return _wandb_finish(run, settings)


def _table_frame(path: str):
    """A table's Parquet as plain columns for the trackers (numbers stay numbers)."""
    import pandas as pd

    df = pd.read_parquet(path)
    for c in df.columns:
        if not pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]):
            df[c] = df[c].astype(str)
    return df


def log_study(settings: dict, study: str, name: str, parquet: dict, pngs: dict) -> dict[str, Any]:
    """The study's run: its Parquet tables as W&B tables and its figures as images."""
    import wandb

    run = _wandb_init(settings, study, name, "study", {"study": study}, [f"study:{study}", "study"])
    try:
        run.log({f"tables/{k}": wandb.Table(dataframe=_table_frame(p))
                 for k, p in parquet.items()}, step=0)  # fmt: skip
        run.log({f"figures/{k}": wandb.Image(p, caption=k) for k, p in pngs.items()}, step=0)
    except Exception as err:
        with contextlib.suppress(Exception):
            run.finish(exit_code=1)
        raise VaebenchError(
            f"wandb: logging failed with tracking.wandb.mode: {settings['mode']}: {one_line(err)}"
        ) from None
    return _wandb_finish(run, settings)
