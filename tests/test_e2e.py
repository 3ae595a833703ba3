"""End-to-end: the real Snakemake DAG on a tiny config, then what goes stale when it changes."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from conftest import TINY, pending

from vaebench import config as vb

pytestmark = pytest.mark.e2e
AGGREGATES = ("results/tables/", "results/figures/", "results/report")


def test_every_run_has_model_history_recon_and_samples(tiny_study):
    cfg = vb.validate(TINY)
    test = np.load(tiny_study / "results/data/test.npy")
    assert test.dtype == np.uint8 and test.shape == (32, 3, 64, 64)
    runs = vb.runs(cfg)
    assert {r.model for r in runs} == {"vae", "beta_vae", "vqvae", "vaegan"}
    for run in runs:
        base = tiny_study / "results/runs" / run.id
        assert (base / "model/model.pt").exists(), run.id
        hist = pd.read_parquet(base / "history.parquet")
        assert list(hist["epoch"]) == [1, 2]
        assert np.isfinite(hist[["train_loss", "eval_loss", "seconds"]].to_numpy()).all()
        if run.model == "vaegan":
            assert hist[["encoder_loss", "decoder_loss", "discriminator_loss"]].notna().all().all()
        recon = np.load(base / "recon.npy")
        assert recon.dtype == np.float32 and recon.shape == test.shape
        assert 0 <= recon.min() and recon.max() <= 1
        assert (base / "recon_grid.png").stat().st_size > 0
        for s in vb.samplers(cfg, run):
            x = np.load(base / f"samples_{s}.npy")
            assert x.dtype == np.uint8 and x.shape == (16, 3, 64, 64), (run.id, s)
            assert x.std() > 0, f"{run.id}/{s}: constant samples"
            assert (base / f"samples_{s}.png").exists()
        assert not (base / "checkpoint.pt").exists()


def test_saved_model_reloads_to_identical_reconstructions(tiny_study):
    from vaebench import models

    test = np.load(tiny_study / "results/data/test.npy")
    for run in ("vae/seed~0", "vqvae/seed~0"):
        net = models.load(tiny_study / "results/runs" / run / "model")
        recon, _ = models.reconstruct(net, test)
        np.testing.assert_array_equal(
            recon, np.load(tiny_study / "results/runs" / run / "recon.npy")
        )


def test_second_run_does_nothing(tiny_study):
    assert pending(tiny_study, TINY) == set()


def test_reordering_lists_reruns_nothing(tiny_study):
    cfg = copy.deepcopy(TINY)
    cfg["betas"] = cfg["betas"][::-1]
    cfg["models"] = cfg["models"][::-1]
    cfg["sampling"]["samplers"] = ["pixelcnn", "gmm", "normal"]
    assert pending(tiny_study, cfg) == set()


def test_adding_a_beta_trains_only_that_beta(tiny_study):
    cfg = copy.deepcopy(TINY)
    cfg["betas"] = [*cfg["betas"], 2]
    todo = pending(tiny_study, cfg)
    assert "results/runs/beta_vae/beta~2/seed~0/model" in todo
    stray = [f for f in todo if "beta~2/" not in f and not f.startswith(AGGREGATES)]
    assert stray == []


def test_sampler_setting_reruns_sampling_not_training(tiny_study):
    cfg = copy.deepcopy(TINY)
    cfg["sampling"]["gmm"]["n_components"] = 3
    todo = pending(tiny_study, cfg)
    assert "results/runs/vae/seed~0/samples_gmm.npy" in todo
    assert not [f for f in todo if f.endswith(("/model", "history.parquet", "recon.npy"))]
    assert not [f for f in todo if "samples_normal" in f or "samples_pixelcnn" in f]


def test_changing_epochs_retrains_everything(tiny_study):
    cfg = copy.deepcopy(TINY)
    cfg["training"]["epochs"] = 3
    todo = pending(tiny_study, cfg)
    models = {f for f in todo if f.endswith("/model")}
    assert models == {f"results/runs/{r.id}/model" for r in vb.runs(vb.validate(TINY))}
    assert "results/data/train.npy" not in todo
