"""Where a job runs (compute.device) and the one-line errors when CUDA is required but not
usable. This machine's CUDA state is whatever it is; each test fixes what it depends on."""

from __future__ import annotations

import pytest
import torch

from vaebench import VaebenchError, runtime


@pytest.fixture
def no_cuda(monkeypatch):
    """CUDA hidden from torch, as `CUDA_VISIBLE_DEVICES=` hides it from a real process."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for key in ("SLURM_JOB_GPUS", "SLURM_STEP_GPUS"):
        monkeypatch.delenv(key, raising=False)


def test_cpu_is_always_the_cpu(monkeypatch):
    monkeypatch.setenv(runtime.DEVICE_ENV, "cpu")
    assert runtime.device() == torch.device("cpu")


def test_auto_falls_back_to_the_cpu_on_a_laptop(monkeypatch, no_cuda):
    monkeypatch.setenv(runtime.DEVICE_ENV, "auto")
    assert runtime.device() == torch.device("cpu")


def test_cuda_required_and_absent_is_one_line_naming_the_reason(monkeypatch, no_cuda):
    monkeypatch.setenv(runtime.DEVICE_ENV, "cuda")
    with pytest.raises(VaebenchError) as err:
        runtime.device()
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("compute.device is cuda, but CUDA is not usable")
    assert ("CUDA_VISIBLE_DEVICES is empty" in msg or "no CUDA support" in msg) and "cpu" in msg


def test_a_slurm_gpu_job_without_cuda_fails_instead_of_crawling_on_the_cpu(monkeypatch, no_cuda):
    """auto, but SLURM granted this job a GPU: running on the CPU would time out three times."""
    monkeypatch.setenv(runtime.DEVICE_ENV, "auto")
    monkeypatch.setenv("SLURM_JOB_GPUS", "0")
    with pytest.raises(VaebenchError, match="this job holds a SLURM GPU, but CUDA is not usable"):
        runtime.device()
    monkeypatch.setenv(runtime.DEVICE_ENV, "cpu")  # unless the study asked for the CPU
    assert runtime.device() == torch.device("cpu")


def test_reasons_for_an_old_driver_and_a_card_without_kernels(monkeypatch):
    """The two causes a user fixes with another torch build or driver, read from torch itself:
    the driver warning at initialisation, and the card's capability against the build's
    architectures (a V100, sm_70, under a build for sm_75 and newer)."""
    if torch.version.cuda is None:
        pytest.skip("this torch build has no CUDA support: the first reason applies instead")

    def old_driver():
        import warnings

        said = "CUDA initialization: The NVIDIA driver on your system is too old"
        warnings.warn(said, stacklevel=1)
        return False

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", old_driver)
    assert "driver is too old" in runtime.cuda_problem()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (7, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Tesla V100")
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ["sm_75", "sm_80", "sm_90"])
    assert "no kernel image for Tesla V100 (sm_70" in runtime.cuda_problem()
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (8, 9))  # L40: sm_80 runs
    assert runtime.cuda_problem() is None


def test_device_info_records_the_numerics(monkeypatch):
    before = torch.are_deterministic_algorithms_enabled()
    monkeypatch.setenv(runtime.DEVICE_ENV, "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # CUDA's switch is set
    runtime.deterministic_training(True)
    info = runtime.device_info("cpu")
    assert info == {"type": "cpu", "setting": "cpu", "threads": torch.get_num_threads(),
                    "deterministic_algorithms": True}  # fmt: skip
    runtime.deterministic_training(False)
    assert runtime.device_info("cpu")["deterministic_algorithms"] is False
    torch.use_deterministic_algorithms(before)


def test_without_cuda_the_algorithms_switch_is_left_alone_and_recorded_so(monkeypatch):
    """Without CUDA the switch (whose import costs every job seconds) is not touched, and
    provenance says it was not set rather than claiming it."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    before = torch.are_deterministic_algorithms_enabled()
    runtime.deterministic_training(True)
    assert torch.are_deterministic_algorithms_enabled() is before
    assert torch.backends.cudnn.deterministic is True
    assert runtime.device_info("cpu")["deterministic_algorithms"] is before
