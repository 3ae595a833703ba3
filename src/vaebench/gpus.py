"""One GPU per GPU job on a box with several: a lock per card, taken before torch starts CUDA.

Snakemake's `gpu` resource only counts: `--resources gpu=2` lets two GPU jobs run at once but
does not say on which card, and torch would put both on cuda:0. So a local job that declares
a GPU takes the first free card's lock (an flock, released by the kernel when the process
ends, however it ends) and sets CUDA_VISIBLE_DEVICES to that card alone; with gpu=N on an
N-card box there is always a free card. Under SLURM the job uses the card SLURM gave it
(CUDA_VISIBLE_DEVICES set by SLURM; lock files on a shared file system would make jobs on
different nodes wait for each other's card 0). No torch here: it must run before torch does.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from pathlib import Path

_HELD: list[int] = []  # lock file descriptors this process keeps until it exits


def local_cards() -> list[str]:
    """The cards this process may use: CUDA_VISIBLE_DEVICES when set, else the driver's list
    (/proc/driver/nvidia/gpus, read without initialising CUDA); [] without NVIDIA GPUs."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [c.strip() for c in visible.split(",") if c.strip() not in ("", "-1")]
    proc = Path("/proc/driver/nvidia/gpus")
    return [str(i) for i in range(len(list(proc.iterdir())))] if proc.is_dir() else []


def lock_dir() -> Path:
    """Cards belong to the machine, not to a study: one lock folder per user and machine."""
    return Path(tempfile.gettempdir()) / f"vaebench-gpus-{os.getuid()}"


def claim_card(cards: list[str], where: Path, poll: float = 0.2) -> str:
    """Lock the first free card of `cards` and return it, waiting while all are taken (a job
    of another study on the same box). The lock lasts as long as this process."""
    where.mkdir(parents=True, exist_ok=True)
    while True:
        for card in cards:
            fd = os.open(where / f"card-{card}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            _HELD.append(fd)
            return card
        time.sleep(poll)


def assign(gpu_slots: int, device_setting: str) -> str | None:
    """Give this job a card of its own when it declares a GPU (resources: gpu > 0), runs
    locally, may use CUDA and the box has cards; returns the card, or None (nothing to do)."""
    if gpu_slots <= 0 or device_setting == "cpu" or os.environ.get("SLURM_JOB_ID"):
        return None
    cards = local_cards()
    if not cards:
        return None
    card = claim_card(cards, lock_dir())
    os.environ["CUDA_VISIBLE_DEVICES"] = card
    return card
