"""One function per workflow job; workflow/scripts/*.py only pass Snakemake's paths in.

`run` wraps every job the same way: stdout/stderr (Pythae's chatter, progress bars) go to
the rule's log, torch uses the job's threads, and a VaebenchError ends the job with one
line on the terminal that names the cause, instead of a traceback in a log file.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vaebench import VaebenchError, io


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
    os.environ["OMP_NUM_THREADS"] = str(smk.threads)
    try:
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


def _torch(threads: int):
    import torch

    torch.set_num_threads(max(1, int(threads)))
    return torch


def prepare_data(dataset: dict, out_dir: str, threads: int = 1) -> None:
    from vaebench import data

    data.prepare(dataset, out_dir, workers=threads)


def train(params: dict, train: str, val: str, model: str, history: str, checkpoint: str,
          threads: int = 1) -> None:  # fmt: skip
    _torch(threads)
    from vaebench import models_train

    summary = models_train.train(
        params, io.load_npy(train), io.load_npy(val), model, history, checkpoint
    )
    print(f"done: {summary}")


def reconstruct(model: str, test: str, recon: str, kl: str, grid: str, threads: int = 1) -> None:
    _torch(threads)
    from vaebench import grids, models

    net = models.load(model, models.device())
    images = io.load_npy(test)
    x_hat, kls = models.reconstruct(net, images)
    io.save_npy(recon, x_hat.astype(np.float32))
    io.save_npy(kl, kls.astype(np.float64))
    grids.save_grid(grid, [images[:8], (x_hat[:8] * 255).round().astype(np.uint8)])


def sample(model: str, params: dict, train: str, val: str, samples: str, grid: str,
           threads: int = 1) -> None:  # fmt: skip
    _torch(threads)
    from vaebench import grids, models, models_sample

    net = models.load(model, models.device())
    x = models_sample.sample(net, params, io.load_npy(train), io.load_npy(val))
    io.save_npy(samples, x)
    grids.save_grid(grid, [x[i : i + 8] for i in range(0, min(len(x), 32), 8)])
