"""Card assignment on a fake pool of cards (no GPU needed): N GPU jobs never share a card,
a job N+1 waits for a card to come free, and a SLURM job or a CPU study takes no lock."""

from __future__ import annotations

import multiprocessing as mp
import os
import queue

import pytest

from vaebench import gpus

CTX = mp.get_context("spawn")  # like Snakemake's jobs: separate processes, fresh imports


def _hold(cards, where, claimed, release):
    """A GPU job: claim a card, report it, hold it until told to finish."""
    claimed.put((os.getpid(), gpus.claim_card(cards, where)))
    release.wait(60)


def _start(cards, where, claimed, release):
    p = CTX.Process(target=_hold, args=(cards, where, claimed, release))
    p.start()
    return p


@pytest.mark.parametrize("n", [1, 2, 4])
def test_n_jobs_on_n_cards_never_share_and_the_next_waits(tmp_path, n):
    cards = [str(c) for c in range(n)]
    claimed, releases = CTX.Queue(), [CTX.Event() for _ in range(n + 1)]
    procs = [_start(cards, tmp_path, claimed, releases[i]) for i in range(n)]
    first = dict(claimed.get(timeout=60) for _ in range(n))
    assert sorted(first.values()) == cards  # n jobs, n different cards
    late = _start(cards, tmp_path, claimed, releases[n])
    with pytest.raises(queue.Empty):  # every card taken: the job n+1 waits
        claimed.get(timeout=1.5)
    leaver = procs[0]
    releases[0].set()
    leaver.join(30)  # its process ends: the kernel drops its lock
    pid, card = claimed.get(timeout=60)
    assert pid == late.pid and card == first[leaver.pid]
    for e in releases:
        e.set()
    for p in [*procs, late]:
        p.join(30)


def test_assign_pins_the_job_to_its_card(tmp_path, monkeypatch):
    """A local GPU job on a box whose cards are 4 and 5: it gets one alone."""
    monkeypatch.setattr(gpus, "lock_dir", lambda: tmp_path)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    assert gpus.assign(1, "auto") == "4" and os.environ["CUDA_VISIBLE_DEVICES"] == "4"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")  # the same process holds 4: next is 5
    assert gpus.assign(1, "cuda") == "5" and os.environ["CUDA_VISIBLE_DEVICES"] == "5"


@pytest.mark.parametrize("slots, device, slurm", [(0, "auto", None), (1, "cpu", None),
                                                  (1, "auto", "123")])  # fmt: skip
def test_no_card_for_cpu_jobs_cpu_studies_or_slurm_jobs(tmp_path, monkeypatch, slots, device,
                                                        slurm):  # fmt: skip
    monkeypatch.setattr(gpus, "lock_dir", lambda: tmp_path)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    if slurm:
        monkeypatch.setenv("SLURM_JOB_ID", slurm)
    else:
        monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert gpus.assign(slots, device) is None
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1" and not list(tmp_path.iterdir())
