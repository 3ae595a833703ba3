"""Where and how torch runs: the device every job uses, its thread count and its numerics.

One place for all three, so training, sampling and metric jobs agree on the device without
the metric jobs importing Pythae. The device comes from `compute.device` (auto | cuda | cpu),
which the workflow puts in the VAEBENCH_DEVICE environment variable of every job: it says
where a job runs, not what it computes, so changing it reruns nothing (provenance records it).
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import torch

from vaebench import VaebenchError
from vaebench.config import DEVICE_ENV

DEVICES = ("auto", "cuda", "cpu")
# cuBLAS needs a fixed workspace for deterministic results (set before CUDA starts).
CUBLAS_WORKSPACE = ":4096:8"
CUDA_FIX = (
    "set compute.device: cpu to run on the CPU, or see the README's GPU section for the driver "
    "and torch build this needs"
)


def cuda_problem() -> str | None:
    """Why CUDA is not usable in this process, in one phrase, or None when it is.

    The causes a user can act on: a torch build without CUDA, no visible GPU, no driver, a
    driver too old for this build's CUDA, a card this build has no kernels for (cubins run on
    cards of the same major and a minor at least theirs; PTX entries are JIT-compiled).
    """
    if torch.version.cuda is None:
        return f"this torch build ({torch.__version__}) has no CUDA support"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        usable = torch.cuda.is_available()
    if not usable:
        said = " ".join(str(w.message) for w in caught)
        if "too old" in said:
            return (
                f"the NVIDIA driver is too old for this torch build (CUDA {torch.version.cuda}): "
                "update the driver or install the CUDA 12 build of the same torch version"
            )
        if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
            return "no GPU is visible to this job (CUDA_VISIBLE_DEVICES is empty)"
        return "no NVIDIA driver or GPU found (torch.cuda.is_available() is False)"
    major, minor = torch.cuda.get_device_capability(0)
    archs = torch.cuda.get_arch_list()
    cubin = any(a == f"sm_{major}{m}" for a in archs for m in range(minor + 1))
    ptx = any(a.startswith("compute_") and int(a[8:]) <= major * 10 + minor for a in archs)
    if not (cubin or ptx):
        return (
            f"this torch build has no kernel image for {torch.cuda.get_device_name(0)} "
            f"(sm_{major}{minor}; built for {' '.join(archs)}): install the CUDA 12 build"
        )
    return None


def holds_gpu() -> bool:
    """Whether a scheduler gave this job a GPU (SLURM's gres): then it must use it."""
    return any(
        os.environ.get(k, "") not in ("", "N/A") for k in ("SLURM_JOB_GPUS", "SLURM_STEP_GPUS")
    )


def device() -> torch.device:
    """The job's device under compute.device: cpu; cuda (or an error naming why it is not
    usable); auto, CUDA when usable, else the CPU (laptops, the demo), except in a job that
    holds a GPU from SLURM, which fails in one line instead of running for hours on the CPU."""
    want = os.environ.get(DEVICE_ENV, "auto")
    if want not in DEVICES:
        raise VaebenchError(f"{DEVICE_ENV}={want!r} is not one of {DEVICES} (compute.device)")
    if want == "cpu":
        return torch.device("cpu")
    problem = cuda_problem()
    if problem is None:
        return torch.device("cuda")
    if want == "cuda" or holds_gpu():
        why = "compute.device is cuda" if want == "cuda" else "this job holds a SLURM GPU"
        raise VaebenchError(f"{why}, but CUDA is not usable here: {problem}; {CUDA_FIX}")
    return torch.device("cpu")


def set_threads(threads: int) -> None:
    """Intra-op threads = the job's Snakemake `threads`, for torch and for the BLAS/OpenMP
    pools of NumPy, SciPy and scikit-learn (each would otherwise take every core and
    oversubscribe the machine when jobs run side by side; Snakemake sets OMP_NUM_THREADS
    for shell jobs only, not for scripts)."""
    from threadpoolctl import threadpool_limits

    threads = max(1, int(threads))
    torch.set_num_threads(threads)
    threadpool_limits(limits=threads)


def full_precision() -> None:
    """Metric jobs: fp32 everywhere, as pytorch-fid computes. PyTorch lets cuDNN convolutions
    use TF32 on Ampere and newer cards by default (Inception, LPIPS's AlexNet, GMSD)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def deterministic_training(on: bool) -> None:
    """training.deterministic: deterministic cuDNN kernels and algorithms (warn_only: an op
    without a deterministic kernel warns rather than fails), no TF32 and no autotuning, so
    that a rerun on the same GPU gives the same model; off: cuDNN's fastest kernels.

    The algorithms switch is set only where CUDA is usable: the kernels it swaps are CUDA's
    (the CPU ops vaebench runs are deterministic at a fixed thread count), and setting it
    imports torch's compiler, 2.4 s of every job's start-up on the CPU (measured with
    py-spy on the demo's jobs). Provenance records whether it was set."""
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.backends.cudnn.deterministic = on
    torch.backends.cudnn.benchmark = not on
    if torch.cuda.is_available():
        torch.use_deterministic_algorithms(on, warn_only=True)
    if on:
        full_precision()


def device_info(dev: torch.device | str | None) -> dict[str, Any]:
    """What provenance records about where a job ran and with which numerics."""
    dev = torch.device(dev) if dev is not None else torch.device("cpu")
    info: dict[str, Any] = {
        "type": dev.type,
        "setting": os.environ.get(DEVICE_ENV, "auto"),
        "threads": torch.get_num_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
    }
    if dev.type == "cuda":
        info.update(
            name=torch.cuda.get_device_name(dev),
            capability=".".join(map(str, torch.cuda.get_device_capability(dev))),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            cudnn_deterministic=torch.backends.cudnn.deterministic,
            cudnn_benchmark=torch.backends.cudnn.benchmark,
            tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
            tf32_cudnn=torch.backends.cudnn.allow_tf32,
            visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
        )
    return info
