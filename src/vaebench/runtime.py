"""Where and how torch runs: the device every job uses and its thread count.

One place for both, so training, sampling and metric jobs agree on the device without the
metric jobs importing Pythae.
"""

from __future__ import annotations

import torch


def device() -> torch.device:
    """CUDA when it is usable, CPU otherwise.

    A SLURM GPU slot can set CUDA_VISIBLE_DEVICES without a usable GPU; then
    torch.cuda.is_available() is False and we fall back to the CPU instead of crashing.
    """
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def set_threads(threads: int) -> None:
    """Intra-op threads = the job's Snakemake `threads` (torch would otherwise take every core
    and oversubscribe the machine when jobs run side by side)."""
    torch.set_num_threads(max(1, int(threads)))
