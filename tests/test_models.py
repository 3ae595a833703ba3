"""Pythae models: build every family, train a step, save/reload, reconstruct and sample."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from vaebench import VaebenchError, models, models_sample, models_train
from vaebench import config as vb

CFG = vb.validate(
    {
        "dataset": {"name": "shapes"},
        "models": ["vae", "beta_vae", "vqvae", "vaegan"],
        "betas": [4],
        "seeds": [0],
        "network": {"preset": "small", "latent_dim": 4, "width": 8},
        "training": {"epochs": 2, "batch_size": 16, "learning_rate": 0.001, "checkpoint_every": 1},
        "vqvae": {"num_embeddings": 8},
        "sampling": {"n_samples": 10, "gmm": {"n_components": 2},
                     "pixelcnn": {"epochs": 1, "n_layers": 2, "kernel_size": 3}},
    }
)  # fmt: skip
RUNS = {r.model: r for r in vb.runs(CFG)}


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (48, 3, 64, 64), dtype=np.uint8)
    x[:, :, :4, :4] = 255  # PixelCNN's fit asserts a saturated pixel somewhere
    return x


@pytest.fixture(scope="module")
def trained(tmp_path_factory, images):
    """Each family trained for 2 epochs on 48 random images (properties only, not quality)."""
    out = {}
    root = tmp_path_factory.mktemp("runs")
    for model, run in RUNS.items():
        base = root / run.id
        summary = models_train.train(
            vb.train_params(CFG, run), images[:32], images[32:], base / "model",
            base / "history.parquet", base / "checkpoint.pt", log=lambda *a: None,
        )  # fmt: skip
        out[model] = (base, summary)
    return out


@pytest.mark.parametrize("model", list(RUNS))
def test_build_is_seeded_and_pythae_class(model):
    a = models.build(vb.train_params(CFG, RUNS[model]))
    b = models.build(vb.train_params(CFG, RUNS[model]))
    assert type(a).__name__ == {"vae": "VAE", "beta_vae": "BetaVAE", "vqvae": "VQVAE",
                                "vaegan": "VAEGAN"}[model]  # fmt: skip
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)


def test_beta_reaches_pythae():
    assert models.build(vb.train_params(CFG, RUNS["beta_vae"])).beta == 4


@pytest.mark.parametrize("model", list(RUNS))
def test_training_writes_model_and_history(trained, images, model):
    base, summary = trained[model]
    hist = pd.read_parquet(base / "history.parquet")
    assert list(hist["epoch"]) == [1, 2] and summary["best_epoch"] in (1, 2)
    assert np.isfinite(hist["train_loss"]).all()
    assert not (base / "checkpoint.pt").exists()
    net = models.load(base / "model")
    assert not net.training, "loaded models must be in eval mode"
    r1, kl1 = models.reconstruct(net, images[:8])
    r2, kl2 = models.reconstruct(models.load(base / "model"), images[:8])
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_array_equal(kl1, kl2)
    assert r1.dtype == np.float32 and r1.shape == (8, 3, 64, 64)
    assert r1.min() >= 0 and r1.max() <= 1 and (kl1 >= 0).all()


def test_vqvae_kl_is_log_k_per_code_position(trained, images):
    net = models.load(trained["vqvae"][0] / "model")
    _, kl = models.reconstruct(net, images[:4])
    np.testing.assert_allclose(kl, 16 * np.log(8))  # 4x4 grid, K = 8


def test_training_is_deterministic(tmp_path, images, trained):
    run = RUNS["vae"]
    models_train.train(
        vb.train_params(CFG, run), images[:32], images[32:], tmp_path / "model",
        tmp_path / "h.parquet", tmp_path / "c.pt", log=lambda *a: None,
    )  # fmt: skip
    a = torch.load(tmp_path / "model/model.pt", weights_only=True)["model_state_dict"]
    b = torch.load(trained["vae"][0] / "model/model.pt", weights_only=True)["model_state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_divergence_names_run_epoch_and_last_finite_loss(tmp_path, images):
    params = vb.train_params(CFG, RUNS["vae"])
    params["training"] = {**params["training"], "learning_rate": 1e12}
    with pytest.raises(VaebenchError, match=r"vae/seed~0: diverged at epoch \d+.*last finite"):
        models_train.train(
            params, images[:32], images[32:], tmp_path / "m", tmp_path / "h.parquet",
            tmp_path / "c.pt", log=lambda *a: None,
        )  # fmt: skip
    assert not (tmp_path / "m").exists() and not (tmp_path / "h.parquet").exists()


@pytest.mark.parametrize(
    "model, sampler",
    [("vae", "normal"), ("vae", "gmm"), ("vaegan", "normal"), ("vqvae", "gmm"),
     ("vqvae", "pixelcnn")],
)  # fmt: skip
def test_samplers_shapes_ranges_and_determinism(trained, images, model, sampler):
    net = models.load(trained[model][0] / "model")
    params = vb.sampler_params(CFG, RUNS[model], sampler)
    x = models_sample.sample(net, params, images[:32], images[32:])
    assert x.dtype == np.uint8 and x.shape == (10, 3, 64, 64)
    np.testing.assert_array_equal(x, models_sample.sample(net, params, images[:32], images[32:]))


@pytest.mark.parametrize("model", ["vae", "vaegan"])
def test_sigterm_checkpoint_and_resume_end_equal_to_an_uninterrupted_run(tmp_path, images, model):
    """SLURM's SIGTERM mid-run: a checkpoint is saved, the rerun resumes and ends identical."""
    import os
    import signal

    params = vb.train_params(CFG, RUNS[model])
    params["training"] = {**params["training"], "epochs": 4, "checkpoint_every": 3}

    def paths(name):
        d = tmp_path / name
        return d / "model", d / "history.parquet", d / "checkpoint.pt"

    models_train.train(params, images[:32], images[32:], *paths("straight"), log=lambda *a: None)

    def kill_at_epoch_2(msg):
        if "epoch 2/4" in msg:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(VaebenchError, match="stopped by SIGTERM"):
        models_train.train(params, images[:32], images[32:], *paths("cut"), log=kill_at_epoch_2)
    model_dir, history, checkpoint = paths("cut")
    assert checkpoint.exists() and not model_dir.exists() and not history.exists()
    notes = []
    summary = models_train.train(params, images[:32], images[32:], *paths("cut"), log=notes.append)
    assert summary["resumed_from_epoch"] >= 1 and any("resuming" in n for n in notes)
    a = torch.load(paths("straight")[0] / "model.pt", weights_only=True)["model_state_dict"]
    b = torch.load(model_dir / "model.pt", weights_only=True)["model_state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    cols = [
        "epoch",
        "train_loss",
        "eval_loss",
        "encoder_loss",
        "decoder_loss",
        "discriminator_loss",
    ]
    pd.testing.assert_frame_equal(
        pd.read_parquet(paths("straight")[1])[cols], pd.read_parquet(history)[cols]
    )
    assert not checkpoint.exists()


def test_load_refuses_a_folder_the_train_job_did_not_write(tmp_path, trained):
    foreign = tmp_path / "model"
    shutil.copytree(trained["vae"][0] / "model", foreign)
    (foreign / "vaebench.json").unlink()
    with pytest.raises(VaebenchError, match="not written by vaebench's train job"):
        models.load(foreign)
