"""One function per workflow job; workflow/scripts/*.py only pass Snakemake's paths in.

`run` wraps every job the same way: stdout/stderr (Pythae's chatter, progress bars) go to
the rule's log, torch uses the job's threads, and a VaebenchError ends the job with one
line on the terminal that names the cause, instead of a traceback in a log file.

The reconstruct job computes, besides the deterministic reconstructions, the per-image terms
that need the model: the analytic KL and the Monte Carlo E_q[BCE] (with its standard error)
of the -ELBO. They go to a small .npz that recon_metrics combines with the image metrics.

The metric jobs live in vaebench.jobs_metrics (the feature spaces' in vaebench.jobs_spaces)
and the study-level jobs (`tables`, `figures`, `compare`) in vaebench.jobs_study; all are
imported here, so that every script
calls `jobs.<name>`: a script's text is part of its rule's code, and Snakemake reruns a rule
whose code changed.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vaebench import VaebenchError, io
from vaebench.jobs_metrics import (  # noqa: F401  (see the docstring)
    generation_metrics,
    per_image_columns,
    per_image_frame,
    recon_metrics,
    reference_features,
    stage_weights,
    supplied_metrics,
)
from vaebench.jobs_spaces import (  # noqa: F401  (see the docstring)
    space_metrics,
    space_reference,
    stage_space_weights,
)
from vaebench.jobs_study import compare, figures, tables  # noqa: F401  (see the docstring)


def run(smk: Any, job: Callable[..., Any], **kwargs: Any) -> None:
    """Run `job(**kwargs)` inside a Snakemake `script:` with logging and one-line errors."""
    log_path = Path(smk.log[0]) if smk.log else None
    terminal = os.dup(2)
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(fd, 1), os.dup2(fd, 2)
        os.close(fd)
    try:
        from vaebench import gpus
        from vaebench.config import DEVICE_ENV

        card = gpus.assign(int(getattr(smk.resources, "gpu", 0)), os.environ.get(DEVICE_ENV, ""))
        if card is not None:
            print(f"vaebench: this job runs on GPU {card} (CUDA_VISIBLE_DEVICES={card})")
        job(**kwargs, threads=smk.threads)
    except VaebenchError as err:
        line = f"vaebench: {err}"
        print(line, file=sys.stderr, flush=True)
        os.write(terminal, (line + "\n").encode())
        sys.exit(1)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        where = f" (see {log_path})" if log_path else ""
        os.write(terminal, f"vaebench: job failed with an unexpected error{where}\n".encode())
        raise


def _torch(threads: int, deterministic: bool = True) -> None:
    """Threads, and numerics: fp32 and deterministic kernels for every job but a train job
    with training.deterministic: false (on the CPU neither changes a number)."""
    from vaebench import runtime

    runtime.set_threads(threads)
    runtime.deterministic_training(deterministic)


def _device():
    from vaebench import runtime

    return runtime.device()


def prepare_data(dataset: dict, out_dir: str, threads: int = 1) -> None:
    from vaebench import data

    data.prepare(dataset, out_dir, workers=threads)


def prepare_reference(dataset: dict, out_dir: str, threads: int = 1) -> None:
    """The generation metrics' reference images (dataset.n_reference), in their own job: the
    reference size never touches the training data."""
    from vaebench import data

    data.prepare(dataset, out_dir, threads, (data.REFERENCE,), data.REFERENCE_MANIFEST)


def train(
    params: dict,
    train: str,
    val: str,
    model: str,
    history: str,
    checkpoint: str,
    diverged: str,
    threads: int = 1,
) -> None:
    """Train one run. A divergence still fails the job, after recording it in `diverged`
    (see vaebench.config.diverged_runs) so the tables can say so instead of showing NaN."""
    _torch(threads, params["training"]["deterministic"])
    from vaebench import models_train

    try:
        summary = models_train.train(
            params, io.load_npy(train), io.load_npy(val), model, history, checkpoint
        )
    except models_train.Diverged as err:
        record = {"params": params, "epoch": err.epoch, "last_finite_train_loss": err.last_finite}
        io.save_json(diverged, {**record, "message": str(err), **io.provenance()})
        raise
    Path(diverged).unlink(missing_ok=True)  # a record from other settings is now stale
    print(f"done: {summary}")


def _trained(model: str) -> dict:
    """The train job's record in the model folder (its params under "config")."""
    return json.loads((Path(model) / "vaebench.json").read_text())


def _record(out: str, model: str, config_slice: dict, files: list[str]) -> None:
    """The provenance sidecar of .npy outputs (which cannot carry metadata themselves): the
    config slice, the model's training params, versions, commit, device and file hashes."""
    trained = _trained(model)
    meta = io.provenance({**config_slice, "model": trained.get("config")}, device=str(_device()))
    meta["sha256"] = {Path(f).name: io.sha256_file(f) for f in files}
    io.save_json(out, meta)


def _reconstruct(
    net, model: str, images: np.ndarray, elbo_samples: int
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
    """models.reconstruct with the Monte Carlo draws seeded from the run's seed (read from the
    model's own record, so the rules pass no seed), and the settings for the metadata."""
    from vaebench import models

    seed = int(_trained(model)["config"]["seed"])
    x_hat, terms = models.reconstruct(net, images, elbo_samples=elbo_samples, seed=seed)
    return x_hat, terms, models.elbo_settings(elbo_samples, seed)


def save_terms(path: str, terms: dict[str, np.ndarray], settings: dict) -> None:
    """The per-image posterior terms (models.POSTERIOR_TERMS; float64, NaN where none) and the
    draws' count and seed, as one .npz (written atomically)."""
    extra = {"elbo_samples": np.int64(settings["samples"]), "elbo_seed": np.int64(settings["seed"])}
    with io.atomic_path(path, ".npz") as tmp:
        np.savez(tmp, **{k: np.asarray(v, np.float64) for k, v in terms.items()}, **extra)


def load_terms(path: str) -> tuple[dict[str, np.ndarray], dict]:
    """(terms, elbo settings) written by save_terms."""
    from vaebench import models

    with np.load(path, allow_pickle=False) as f:
        missing = [k for k in models.POSTERIOR_TERMS if k not in f.files]
        if missing:
            raise VaebenchError(
                f"{path}: no {', '.join(missing)} (written by an older vaebench); rerun its "
                "reconstruct job: snakemake --forcerun reconstruct"
            )
        terms = {k: f[k] for k in models.POSTERIOR_TERMS}
        settings = models.elbo_settings(int(f["elbo_samples"]), int(f["elbo_seed"]))
    return terms, settings


def reconstruct(
    model: str,
    test: str,
    recon: str,
    terms: str,
    grid: str,
    meta: str,
    elbo_samples: int,
    threads: int = 1,
) -> None:
    """Deterministic test reconstructions (recon.npy) and per-image posterior terms with
    `elbo_samples` Monte Carlo draws (terms .npz, see save_terms): the model is needed for both."""
    _torch(threads)
    from vaebench import grids, models

    net = models.load(model, _device())
    images = io.load_npy(test)
    x_hat, post, settings = _reconstruct(net, model, images, elbo_samples)
    io.save_npy(recon, x_hat.astype(np.float32))
    save_terms(terms, post, settings)
    run = _trained(model)["config"]["run"]
    rows = [images[:8], (x_hat[:8] * 255).round().astype(np.uint8)]
    grids.save_grid(grid, rows, labels=["test", "recon."], title=f"{run}: test / reconstruction")
    _record(meta, model, {"test": test, "elbo_samples": elbo_samples}, [recon, terms])


def sample(
    model: str,
    params: dict,
    train: str,
    val: str,
    samples: str,
    grid: str,
    meta: str,
    threads: int = 1,
) -> None:
    _torch(threads)
    from vaebench import grids, models, models_sample

    net = models.load(model, _device())
    x = models_sample.sample(net, params, io.load_npy(train), io.load_npy(val))
    io.save_npy(samples, x)
    _record(meta, model, {"sampling": params}, [samples])
    grids.save_grid(grid, [x[i : i + 8] for i in range(0, min(len(x), 32), 8)],
                    title=f"{params['run']}: samples, {params['sampler']} sampler")  # fmt: skip


def fetch_model(params: dict, out: str, record: str, threads: int = 1) -> None:
    """The one job that reaches the Hub: an `evaluate:` hub entry's repository."""
    from vaebench import outside

    outside.fetch(**params, out=out, record=record)


def import_model(params: dict, files: list[str], out: str, fetch_record: str | None = None,
                 threads: int = 1) -> None:
    """An `evaluate:` model entry's files into its run's model folder (vaebench.outside)."""
    from vaebench import outside

    outside.import_model(params, files, out, fetch_record)


def import_samples(params: dict, files: list[str], image_size: int, out: str,
                   threads: int = 1) -> None:
    """An `evaluate:` samples entry's images as one array (vaebench.outside)."""
    from vaebench import outside

    outside.import_samples(params, files, image_size, out)
