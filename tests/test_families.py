"""The family registry is the one source of the families' lists (vaebench.families)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from vaebench import VaebenchError, families, figstyle, names, schema
from vaebench import config as vb


def _config(**extra) -> dict:
    base = {"dataset": {"name": "shapes"}, "models": list(families.MODEL_ORDER), "seeds": [0, 1],
            "betas": [0.5, 4]}  # fmt: skip
    return vb.validate({**base, **extra})


def test_every_list_is_the_registrys():
    keys = [f.key for f in families.REGISTRY]
    assert list(vb.MODEL_ORDER) == keys == list(names.MODEL_ORDER)
    assert schema.load()["properties"]["models"]["items"]["enum"] == keys
    assert vb.FAMILY is names.FAMILY is families.FAMILY
    assert names.NOT_APPLICABLE is families.NOT_APPLICABLE
    assert figstyle.PALETTE is families.PALETTE
    for f in families.REGISTRY:
        assert figstyle.family_colour(f.key) == f.colour == figstyle.family_colour(f.label)


def test_the_schema_rejects_a_family_the_registry_lacks():
    with pytest.raises(VaebenchError, match=r"key 'models\[0\]'"):
        _config(models=["iwae_typo"])


def test_runs_samplers_and_wildcard_follow_the_registry():
    cfg = _config(sampling={"samplers": list(families.SAMPLERS)})
    runs = vb.runs(cfg)
    assert {r.model for r in runs} == set(families.MODEL_ORDER)
    pattern = re.compile(vb.RUN_PATTERN)
    for run in runs:
        fam = families.BY_KEY[run.model]
        assert pattern.fullmatch(run.id), run.id
        assert ("/beta~" in run.id) == fam.swept
        assert vb.samplers(cfg, run) == [s for s in families.SAMPLERS if s in fam.samplers]
    for bad in ("vae/beta~4/seed~0", "beta_vae/seed~0", "gan/seed~0", "vae/seed~x"):
        assert not pattern.fullmatch(bad), bad


def test_blank_cells_come_from_the_registry():
    for (model, metric), why in families.NOT_APPLICABLE.items():
        assert why in families.BY_KEY[model].not_applicable.values()
        assert names.not_applicable_reason(model, metric) == why


# --- every family through the real training path, under both network presets -------------

FAMILY_CFG = {
    "dataset": {"name": "shapes"},
    "models": list(families.MODEL_ORDER),
    "betas": [4],
    "seeds": [0],
    "training": {"epochs": 1, "batch_size": 4, "learning_rate": 0.001, "checkpoint_every": 1},
    "vqvae": {"num_embeddings": 8},
    "vamp": {"number_components": 3},
    "sampling": {"n_samples": 4, "gmm": {"n_components": 2}},
}
LATENT = {"small": 4, "celeba64": 16}


@pytest.fixture(scope="module")
def family_images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (11, 3, 64, 64), dtype=np.uint8)  # 7 train (4 + 3), 4 val


@pytest.mark.parametrize("preset", ["small", "celeba64"])
@pytest.mark.parametrize("key", list(families.MODEL_ORDER))
def test_every_family_trains_with_its_trainer_saves_and_reloads_identically(
    tmp_path, family_images, key, preset
):
    """Build, one epoch with the family's own Pythae trainer (the one Pythae's training
    pipeline picks), save, reload in eval mode: the reloaded model reconstructs the validation
    images exactly as the trained one did (its recorded val_mse), twice the same."""
    from pythae import trainers
    from pythae.pipelines import TrainingPipeline

    from vaebench import models, models_sample, models_train

    fam = families.BY_KEY[key]
    net = {"preset": preset, "latent_dim": LATENT[preset], "width": 8}
    cfg = vb.validate({**FAMILY_CFG, "models": [key], "network": net})
    run = vb.runs(cfg)[0]
    params = vb.train_params(cfg, run)
    train_x, val_x = family_images[:7], family_images[7:]

    model = models.build(params)
    assert model.model_name == fam.pythae[0]  # Pythae's class, or vaebench's fix of it
    pipeline_cfg = type(TrainingPipeline(model=model).training_config).__name__
    trainer = models_train.make_trainer(model, params, train_x, val_x, tmp_path / "work")
    assert type(trainer).__name__ == families.TRAINERS[fam.trainer].cls
    assert pipeline_cfg == type(trainer).__name__ + "Config"
    assert isinstance(trainer, getattr(trainers, families.TRAINERS[fam.trainer].cls))

    summary = models_train.train(
        params, train_x, val_x, tmp_path / "model", tmp_path / "history.parquet",
        tmp_path / "checkpoint.pt", log=lambda *a: None,
    )  # fmt: skip
    history = pd.read_parquet(tmp_path / "history.parquet")
    assert len(history) == 1 and np.isfinite(history[["train_loss", "val_mse"]]).all().all()
    for part in families.TRAINERS[fam.trainer].parts:  # the trainer's per-part losses are recorded
        assert np.isfinite(history[part]).all(), part

    loaded = models.load(tmp_path / "model")
    assert not loaded.training and models.family(loaded) is fam
    loader = models_train.DeviceBatches(val_x, 4, False, "cpu")
    assert models_train.val_mse(loaded, loader) == summary["kept_val_mse"]
    first, terms = models.reconstruct(loaded, val_x, elbo_samples=2, seed=0)
    again, _ = models.reconstruct(models.load(tmp_path / "model"), val_x, elbo_samples=2, seed=0)
    np.testing.assert_array_equal(first, again)
    assert first.shape == val_x.shape and 0 <= first.min() and first.max() <= 1
    # per-image KL and -ELBO exist exactly where the registry says they apply
    assert np.isnan(terms["kl"]).all() == (fam.no_kl is not None)
    assert np.isnan(terms["nll_mc"]).all() == (fam.no_kl is not None and fam.mc_kl is None)
    assert np.isnan(terms["kl_mc"]).all() == (fam.mc_kl is None)
    if preset == "small":  # every sampler of the family draws images (PixelCNN: test_models)
        for sampler in [s for s in fam.samplers if s != "pixelcnn"]:
            x = models_sample.sample(loaded, vb.sampler_params(cfg, run, sampler), train_x, val_x)
            assert x.shape == (4, 3, 64, 64) and x.dtype == np.uint8, sampler


def test_each_family_gets_its_section_and_only_the_training_keys_it_reads():
    cfg = _config()
    for run in vb.runs(cfg):
        fam, params = families.BY_KEY[run.model], vb.train_params(cfg, run)
        assert (run.model in params) == (run.model in cfg), run.model
        assert ("reconstruction_loss" in params["training"]) == fam.reconstruction_loss
        assert ("learning_rate" in params["training"]) == (fam.trainer == "base")
        others = set(families.MODEL_ORDER) - {run.model}
        assert not others & set(params), run.model  # no other family's settings


def test_a_family_registered_outside_the_registry_file_validates_its_section():
    extra = families.Family(
        "toy_ae", "toy AE", "#123456", "o", ("AE", "AEConfig"), "base", "deterministic",
        ("gmm",), "pixel MSE", no_kl="no posterior", reconstruction_loss=False,
        schema={"type": "object", "additionalProperties": False,
                "properties": {"embedding_weight": {"type": "number", "default": 0.5}}},
    )  # fmt: skip
    saved = list(families.REGISTRY)
    try:
        families.register(extra)
        schema.load.cache_clear()
        cfg = vb.validate({"dataset": {"name": "shapes"}, "models": ["toy_ae"], "seeds": [0]})
        assert cfg["toy_ae"] == {"embedding_weight": 0.5}
        with pytest.raises(VaebenchError, match=r"unknown key 'toy_ae.nope'"):
            vb.validate({"dataset": {"name": "shapes"}, "models": ["toy_ae"], "seeds": [0],
                         "toy_ae": {"nope": 1}})  # fmt: skip
        assert families.FAMILY["toy_ae"] == "toy AE" and "toy AE" in families.PALETTE
    finally:
        families.REGISTRY[:] = saved
        families._derive()
        schema.load.cache_clear()
    assert "toy_ae" not in families.BY_KEY


def test_the_readme_lists_every_family_as_the_registry_does():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert families.markdown_table() in readme  # regenerate with `python -m vaebench.families`


def test_a_missing_extension_module_is_one_line_naming_the_variable():
    import os
    import subprocess
    import sys

    env = {**os.environ, "VAEBENCH_FAMILIES": "no_such_family_module"}
    out = subprocess.run([sys.executable, "-c", "import vaebench.config"], env=env,
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert "VAEBENCH_FAMILIES" in last and "no_such_family_module" in last


def test_vamp_samples_the_prior_it_was_trained_with(tmp_path):
    """The vamp sampler draws from 1/C sum_k q(z|u_k) with the raw log-variances that VAMP's
    training prior uses (Pythae's VAMPSampler squashes them with tanh): with one component
    whose log-variance is about -6, the decoder's inputs have std about exp(-3), not ~0.6."""
    import torch

    from vaebench import models, models_sample

    cfg = vb.validate({**FAMILY_CFG, "models": ["vamp"], "vamp": {"number_components": 1},
                       "network": {"preset": "small", "latent_dim": 4, "width": 8}})  # fmt: skip
    model = models.build(vb.train_params(cfg, vb.runs(cfg)[0])).eval()
    with torch.no_grad():
        model.encoder.log_var.bias -= 6.0
        u = model.pseudo_inputs(model.idle_input).reshape(1, 3, 64, 64)
        want = torch.exp(0.5 * model.encoder(u).log_covariance[0]).numpy()
    seen = []
    forward = model.decoder.forward
    model.decoder.forward = lambda z: (seen.append(z.clone()), forward(z))[1]
    x = models_sample.sample(model, vb.sampler_params(cfg, vb.runs(cfg)[0], "vamp"), None, None)
    z = torch.cat(seen).numpy()
    assert x.shape == (4, 3, 64, 64) and len(z) == 4
    again = models_sample.sample_vamp(model, 2000, seed=1)
    assert again.dtype == np.uint8
    z = torch.cat(seen[1:]).numpy()  # the 2000 draws
    np.testing.assert_allclose(z.std(axis=0), want, rtol=0.1)
    assert (want < 0.1).all()  # tanh would have made every std at least exp(-0.5) = 0.61


def test_a_key_pythae_does_not_know_is_refused_not_dropped():
    from vaebench import models

    bad = families.Family("typo_vae", "typo VAE", "#000001", "o", ("VAE", "VAEConfig"),
                          "base", "gaussian", ("normal",), "ELBO",
                          fixed={"reconstrution_loss": "mse"})  # fmt: skip
    saved = list(families.REGISTRY)
    try:
        families.register(bad)
        schema.load.cache_clear()
        net = {"preset": "small", "latent_dim": 4, "width": 8}
        cfg = vb.validate({"dataset": {"name": "shapes"}, "models": ["typo_vae"], "seeds": [0],
                           "network": net})  # fmt: skip
        with pytest.raises(VaebenchError, match=r"'typo_vae'.*VAEConfig.*reconstrution_loss"):
            models.build(vb.train_params(cfg, vb.runs(cfg)[0]))
    finally:
        families.REGISTRY[:] = saved
        families._derive()
        schema.load.cache_clear()


def test_objective_is_null_for_a_vae_trained_on_mse(tmp_path):
    """BCE + β·KL is a VAE's training loss only under reconstruction_loss: bce."""
    from vaebench import jobs
    from vaebench.metrics import images
    from vaebench.metrics.standins import write_random_weights

    write_random_weights(tmp_path)
    lp = images.load_learned(tmp_path)
    x = np.random.default_rng(0).integers(0, 256, (3, 3, 64, 64), dtype=np.uint8)
    terms = {"kl": np.ones(3), "kl_mc": np.full(3, np.nan), "nll_mc": np.full(3, 5.0),
             "mc_se": np.full(3, 0.1)}  # fmt: skip
    info = {"run": "vae/seed~0", "model": "vae", "family": "VAE", "beta": 1.0, "seed": 0}
    mcfg = vb.validate({"dataset": {"name": "shapes"}, "models": ["vae"], "seeds": [0]})["metrics"]
    for loss, has_objective in (("bce", True), ("mse", False)):
        df = jobs.per_image_frame(info, x, x / 255, terms, lp, mcfg, reconstruction_loss=loss)
        assert df["objective"].notna().all() == has_objective, loss
        assert (df["neg_elbo"] == 6.0).all()  # the Bernoulli -ELBO is reported either way
