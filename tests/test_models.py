"""Pythae models: build every family, train a step, save/reload, reconstruct and sample."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pytest
import pythae.models
import torch
from conftest import torch_threads

from vaebench import VaebenchError, jobs, models, models_sample, models_train
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


@pytest.fixture(autouse=True, scope="module")
def two_threads():
    """Every training in this module at the train job's 2 threads: test_training_is_deterministic
    compares a retrained model bitwise with `trained`'s, and a backward pass's float result
    depends on the thread count, which other test modules would otherwise decide."""
    with torch_threads(2):
        yield


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
    assert a.model_name == {"vae": "VAE", "beta_vae": "BetaVAE", "vqvae": "VQVAE",
                            "vaegan": "VAEGAN"}[model]  # fmt: skip
    assert isinstance(a, getattr(pythae.models, a.model_name))
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)


def test_beta_reaches_pythae():
    assert models.build(vb.train_params(CFG, RUNS["beta_vae"])).beta == 4


@pytest.mark.parametrize("model", list(RUNS))
def test_training_writes_model_and_history(trained, images, model):
    base, summary = trained[model]
    hist = pd.read_parquet(base / "history.parquet")
    assert list(hist["epoch"]) == [1, 2]
    assert summary["checkpoint"] == "last" and summary["kept_epoch"] == 2  # the default rule
    assert np.isfinite(hist["train_loss"]).all()
    assert np.isfinite(hist["val_mse"]).all() and (hist["val_mse"] > 0).all()  # every family
    assert not (base / "checkpoint.pt").exists()
    net = models.load(base / "model")
    assert not net.training, "loaded models must be in eval mode"
    r1, t1 = models.reconstruct(net, images[:8], elbo_samples=4, seed=0)
    r2, t2 = models.reconstruct(models.load(base / "model"), images[:8], elbo_samples=4, seed=0)
    np.testing.assert_array_equal(r1, r2)
    assert t1.keys() == t2.keys() == set(models.POSTERIOR_TERMS)
    for k in t1:
        np.testing.assert_array_equal(t1[k], t2[k])
        assert t1[k].dtype == np.float64 and t1[k].shape == (8,)
    assert r1.dtype == np.float32 and r1.shape == (8, 3, 64, 64)
    assert r1.min() >= 0 and r1.max() <= 1
    if model == "vqvae":  # no stochastic posterior, no KL: no numbers rather than a constant
        assert all(np.isnan(v).all() for v in t1.values())
    else:
        assert (t1["kl"] >= 0).all() and (t1["nll_mc"] > 0).all() and (t1["mc_se"] > 0).all()
        assert np.isnan(t1["kl_mc"]).all()  # the KL is analytic for these families


@pytest.mark.parametrize("model", ["vae", "vaegan"])
def test_monte_carlo_elbo_is_an_expectation_over_q(trained, images, model):
    """nll_mc = mean over draws z = mu + sigma * eps of BCE(decoder(z), x), eps from the
    per-image generator; the same draws at any batch size; SE = std / sqrt(n)."""
    from vaebench.metrics.pixel import bce_per_image

    net = models.load(trained[model][0] / "model")
    x_hat, terms = models.reconstruct(net, images[:6], elbo_samples=5, seed=3, batch_size=4)
    _, one_by_one = models.reconstruct(net, images[:6], elbo_samples=5, seed=3, batch_size=1)
    for k in terms:
        np.testing.assert_allclose(terms[k], one_by_one[k], rtol=1e-4)  # float32 convs
    i = 5  # by hand, for the last image (index 5: the second batch of 4)
    x = models.to_float(images[i : i + 1])
    with torch.inference_mode():
        out = net.encoder(x)
        gen = torch.Generator().manual_seed(3 * models.DRAW_SEED_STRIDE + i)
        eps = torch.randn((5, out.embedding.shape[1]), generator=gen)
        z = out.embedding + torch.exp(0.5 * out.log_covariance) * eps
        nll = bce_per_image(net.decoder(z).reconstruction.clamp(0, 1), x.expand(5, -1, -1, -1))
    assert terms["nll_mc"][i] == pytest.approx(nll.mean().item(), rel=1e-6)
    assert terms["mc_se"][i] == pytest.approx(nll.std().item() / np.sqrt(5), rel=1e-5)
    # The plug-in value at z = mu is a different number: the reconstruction stays deterministic.
    plug_in = bce_per_image(torch.from_numpy(x_hat[i : i + 1]), x).item()
    assert plug_in != pytest.approx(terms["nll_mc"][i], rel=1e-6)
    _, other_seed = models.reconstruct(net, images[:6], elbo_samples=5, seed=4)
    assert not np.allclose(other_seed["nll_mc"], terms["nll_mc"], rtol=1e-9, atol=0)
    _, single = models.reconstruct(net, images[:2], elbo_samples=1, seed=3)
    assert np.isnan(single["mc_se"]).all() and np.isfinite(single["nll_mc"]).all()


def test_per_image_parquet_of_the_real_jobs(tmp_path, trained, images):
    """jobs.reconstruct -> terms .npz -> jobs.recon_metrics: VQ-VAE's kl, neg_elbo, neg_elbo_se
    and objective are null; the others have the Monte Carlo -ELBO with its standard error."""
    import pyarrow.parquet as pq

    from vaebench import io
    from vaebench.metrics.standins import write_random_weights

    cache = tmp_path / "weights"
    write_random_weights(cache)
    io.save_npy(tmp_path / "test.npy", images[:6])
    mcfg = {"batch_size": 4, "dists": True, "ms_ssim": {"kernel": 11, "scales": 3}}
    frames = {}
    for model in ("vae", "beta_vae", "vqvae"):
        d = tmp_path / model
        names = {"recon": "recon.npy", "terms": "terms.npz", "grid": "g.png", "meta": "r.json"}
        files = {k: str(d / f) for k, f in names.items()}
        model_dir = str(trained[model][0] / "model")
        jobs.reconstruct(model_dir, str(tmp_path / "test.npy"), **files, elbo_samples=3, threads=2)
        info = vb.run_info(RUNS[model])
        out = d / "reconstruction.parquet"
        jobs.recon_metrics(info, mcfg, str(tmp_path / "test.npy"), files["recon"],
                           files["terms"], files["meta"], str(cache), str(out),
                           threads=2)  # fmt: skip
        table = pq.read_table(out)
        frames[model] = table.to_pandas()
        assert io.read_parquet_metadata(out)["checkpoint"] == "last"
        elbo = io.read_parquet_metadata(out)["metrics"]["elbo"]
        assert elbo["samples"] == 3 and elbo["seed"] == RUNS[model].seed
        if model == "vqvae":
            for col in ("kl", "neg_elbo", "neg_elbo_se", "objective"):
                assert table.column(col).null_count == 6, col
    for model, df in frames.items():
        assert list(df.columns[6:]) == list(jobs.per_image_columns())
        assert (df["bce_excess"] >= 0).all() and (df["bce_excess"] < df["bce"]).all()
        assert df[["bce", "mse", "lpips"]].notna().all().all()
        if model != "vqvae":
            assert df[["kl", "neg_elbo", "neg_elbo_se"]].notna().all().all()
            assert (df["neg_elbo_se"] > 0).all()
        # BCE + β·KL is the training loss of VAE and β-VAE only: null for the others
        assert df["objective"].notna().all() == (model in ("vae", "beta_vae")), model
    # DISTS in the job's Parquet is torchmetrics' own function on the job's input files
    from torchmetrics.functional.image import dists as tm_dists

    from vaebench.metrics.weights import hub_dir

    x = torch.from_numpy(io.load_npy(tmp_path / "test.npy")).float() / 255
    for model, df in frames.items():
        x_hat = torch.from_numpy(io.load_npy(tmp_path / model / "recon.npy")).clamp(0, 1)
        with hub_dir(cache), torch.inference_mode():
            ref = tm_dists.deep_image_structure_and_texture_similarity(x_hat, x, reduction="none")
        np.testing.assert_allclose(df["dists"], ref.double(), rtol=0, atol=1e-5)  # as test_metrics
    vae, beta = frames["vae"], frames["beta_vae"]
    np.testing.assert_allclose(vae["objective"], vae["neg_elbo"])  # beta = 1
    # objective = E_q[BCE] + beta KL: it differs from neg_elbo by (beta - 1) KL
    np.testing.assert_allclose(beta["objective"] - beta["neg_elbo"], 3 * beta["kl"], rtol=1e-9)


def _train(tmp_path, params, images, name: str) -> tuple[dict, pd.DataFrame]:
    d = tmp_path / name
    summary = models_train.train(
        params, images[:32], images[32:], d / "model", d / "history.parquet", d / "c.pt",
        log=lambda *a: None,
    )  # fmt: skip
    return summary, pd.read_parquet(d / "history.parquet")


def _kept_val_mse(tmp_path, name: str, images) -> float:
    net = models.load(tmp_path / name / "model")
    x_hat, _ = models.reconstruct(net, images[32:], elbo_samples=1, seed=0)
    return float(((x_hat - images[32:] / 255.0) ** 2).mean())


@pytest.mark.parametrize("model", ["vae", "vaegan", "vqvae"])
def test_checkpoint_rule_last_and_best_val_mse(tmp_path, images, monkeypatch, model):
    """One rule for every family. `last` keeps the final epoch; `best_val_mse` the epoch with
    the lowest validation pixel MSE. To make the two differ, epoch 2's recorded val_mse is
    made worse by 1.0: best_val_mse must then keep epoch 1's weights (checked by recomputing
    the kept model's validation MSE), and last epoch 2's. The rule goes to vaebench.json."""
    import json

    real, calls = models_train.val_mse, []

    def worse_after_epoch_1(net, loader):
        calls.append(1)
        return real(net, loader) + (1.0 if len(calls) > 1 else 0.0)

    monkeypatch.setattr(models_train, "val_mse", worse_after_epoch_1)
    params = vb.train_params(CFG, RUNS[model])
    assert params["training"]["checkpoint"] == "last"  # the schema's default
    summaries, hists = {}, {}
    for rule in ("last", "best_val_mse"):
        calls.clear()
        p = {**params, "training": {**params["training"], "checkpoint": rule}}
        summaries[rule], hists[rule] = _train(tmp_path, p, images, rule)
        record = json.loads((tmp_path / rule / "model" / "vaebench.json").read_text())
        assert record["training"]["checkpoint"] == rule
        assert record["config"]["training"]["checkpoint"] == rule
        assert record["training"]["kept_epoch"] == summaries[rule]["kept_epoch"]
    same = hists["last"].drop(columns="seconds"), hists["best_val_mse"].drop(columns="seconds")
    pd.testing.assert_frame_equal(*same)  # the same training, whichever epoch is kept
    hist = hists["last"].set_index("epoch")["val_mse"]
    assert summaries["last"]["kept_epoch"] == 2 and summaries["best_val_mse"]["kept_epoch"] == 1
    assert _kept_val_mse(tmp_path, "best_val_mse", images) == pytest.approx(hist[1], rel=1e-5)
    assert _kept_val_mse(tmp_path, "last", images) == pytest.approx(hist[2] - 1.0, rel=1e-5)


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
        "val_mse",
    ]
    pd.testing.assert_frame_equal(
        pd.read_parquet(paths("straight")[1])[cols], pd.read_parquet(history)[cols]
    )
    assert not checkpoint.exists()


def test_pixelcnn_prior_logits_do_not_depend_on_the_rest_of_the_batch(images):
    """The fitted PixelCNN prior (BatchNorm) is sampled in eval mode: one sample's logits,
    given its codes, are the same whatever the other members of its sampling batch are."""
    params = vb.train_params(CFG, RUNS["vqvae"])
    net = models.build(params).eval()  # as models.load returns it
    cfg = vb.sampler_params(CFG, RUNS["vqvae"], "pixelcnn")["pixelcnn"]
    sampler = models_sample.fit_pixelcnn(net, images[:32], images[32:], cfg, seed=0)
    prior = sampler.pixelcnn_model  # what sample_pixelcnn samples from
    k = net.model_config.num_embeddings
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(0, k, (8, *prior.model_config.input_dim), generator=gen).float()
    b = a.clone()
    b[1:] = torch.randint(0, k, b[1:].shape, generator=gen).float()  # same row 0, others differ
    with torch.inference_mode():
        la, lb = prior({"data": a}).out[0], prior({"data": b}).out[0]
    torch.testing.assert_close(la, lb, rtol=0, atol=1e-5)


def test_load_refuses_a_folder_the_train_job_did_not_write(tmp_path, trained):
    foreign = tmp_path / "model"
    shutil.copytree(trained["vae"][0] / "model", foreign)
    (foreign / "vaebench.json").unlink()
    with pytest.raises(VaebenchError, match="not written by vaebench's train or import job"):
        models.load(foreign)


def _train_vqvae(params: dict, images: np.ndarray, folder) -> tuple[torch.Tensor, dict]:
    """(codebook before training, state dict after) of a VQ-VAE trained on 32 images."""
    before = models.build(params).quantizer.embeddings.weight.detach().clone()
    models_train.train(params, images[:32], images[32:], folder / "model",
                       folder / "h.parquet", folder / "c.pt", log=lambda *a: None)  # fmt: skip
    state = torch.load(folder / "model/model.pt", weights_only=True)["model_state_dict"]
    return before, state


def test_vqvae_trains_with_per_image_codebook_losses_and_the_release_on_request(
    images, tmp_path, monkeypatch
):
    """Pythae 0.1.2 averages the codebook and commitment losses over every element of the
    batch, so they weigh 1/(positions·dim) of the per-image reconstruction error. The default
    (VQVAEFixedLosses) sums them per image; pythae_0_1_2_losses: true trains the release."""
    params = vb.train_params(CFG, RUNS["vqvae"])
    release = {**params, "vqvae": {**params["vqvae"], "pythae_0_1_2_losses": True}}
    fixed_model, release_model = models.build(params), models.build(release)
    assert type(release_model) is pythae.models.VQVAE  # the release's class, not a subclass
    assert isinstance(fixed_model, models.VQVAEFixedLosses)
    assert release_model.loss_function.__func__ is pythae.models.VQVAE.loss_function
    # the same seeded weights and forward; the VQ term differs by exactly positions·dim
    x = {"data": torch.from_numpy(images[:8]).float() / 255}
    out_f, out_r = fixed_model(x), release_model(x)
    assert torch.equal(out_f.recon_x, out_r.recon_x)
    assert torch.equal(out_f.recon_loss, out_r.recon_loss)
    per_image = out_f.z.numel() / 8
    assert float(out_f.vq_loss) == pytest.approx(float(out_r.vq_loss) * per_image, rel=1e-6)

    # with the fix the codebook moves (2 epochs on 32 noise images: ~5% of its norm)
    before, state = _train_vqvae(params, images, tmp_path / "fixed")
    moved = (state["quantizer.embeddings.weight"] - before).norm() / before.norm()
    assert moved > 0.02, float(moved)
    # the key reproduces the code before the fix bit for bit: training with it equals
    # training with no fix at all (same process, threads and batches)
    _, flagged = _train_vqvae(release, images, tmp_path / "flagged")
    monkeypatch.setattr(models, "PYTHAE_FIXES", {})  # the code and params before the fix
    before_fix = {**params, "vqvae": {k: v for k, v in params["vqvae"].items()
                                      if k != "pythae_0_1_2_losses"}}  # fmt: skip
    _, unfixed = _train_vqvae(before_fix, images, tmp_path / "unfixed")
    assert flagged.keys() == unfixed.keys()
    assert all(torch.equal(flagged[k], unfixed[k]) for k in flagged)
    assert not torch.equal(flagged["quantizer.embeddings.weight"],
                           state["quantizer.embeddings.weight"])  # fmt: skip


def test_gmm_fits_on_posterior_samples_as_pythae_does(trained, images):
    """fit_on: sample (the default) gives the GMM what Pythae's GaussianMixtureSampler.fit
    reads, model(x).z: mu + std·eps per image, eps seeded on the CPU (so the same latents at
    any batch size); fit_on: mean gives the deterministic decoder input, models.code."""
    model = models.load(trained["vae"][0] / "model")
    x = images[:40]
    mean = models_sample.latents(model, x)
    sampled = models_sample.latents(model, x, sample_seed=3)
    again = models_sample.latents(model, x, batch_size=7, sample_seed=3)
    np.testing.assert_allclose(again, sampled, rtol=1e-5, atol=1e-6)  # other batches: rounding
    with torch.no_grad():
        enc = model.encoder(torch.from_numpy(x).float() / 255)
    torch.testing.assert_close(mean, enc.embedding)
    eps = (sampled - enc.embedding) / torch.exp(0.5 * enc.log_covariance)
    drawn = torch.randn(eps.shape, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(eps, drawn, rtol=1e-4, atol=1e-4)
    params = vb.sampler_params(CFG, RUNS["vae"], "gmm")
    assert params["gmm"]["fit_on"] == "sample"
    a = models_sample.sample(model, params, x, images[40:])
    b = models_sample.sample(model, {**params, "gmm": {**params["gmm"], "fit_on": "mean"}},
                             x, images[40:])  # fmt: skip
    assert a.shape == b.shape and not np.array_equal(a, b)


def test_an_exploded_loss_is_a_divergence():
    """Not only NaN: a loss EXPLODED times the first epoch's (VAMP's eval loss reached 1e23
    with the demo's learning rate while its train loss looked sane) stops the run as diverged,
    naming the run, the epoch and the fix."""
    history = [{"epoch": 1, "train_loss": 512.0}]
    models_train._check_diverged("vamp/seed~0", 2, 530.0, 1e6, history)  # 2,000x: not yet
    with pytest.raises(models_train.Diverged, match=r"vamp/seed~0: diverged at epoch 2: "
                       r"loss exploded .*eval 1e\+23.*learning_rate") as err:  # fmt: skip
        models_train._check_diverged("vamp/seed~0", 2, 530.0, 1e23, history)
    assert err.value.epoch == 2 and err.value.last_finite == 530.0
    with pytest.raises(models_train.Diverged, match="exploded"):  # at epoch 1: its own train
        models_train._check_diverged("vamp/seed~0", 1, 500.0, 1e23, [])
    with pytest.raises(models_train.Diverged, match="diverged at epoch 3"):  # NaN, as before
        models_train._check_diverged("vae/seed~0", 3, math.nan, 1.0, history)


def test_stray_distributed_variables_leave_training_single_process(images, tmp_path, monkeypatch):
    """A launcher's or SLURM prolog's WORLD_SIZE/RANK/LOCAL_RANK must not switch Pythae's
    trainer into distributed mode (it would wait in init_process_group for ranks that never
    come) nor make it a non-main rank that skips saving."""
    for key, value in {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "3"}.items():
        monkeypatch.setenv(key, value)
    params = vb.train_params(CFG, RUNS["vae"])
    model = models.build(params)
    trainer = models_train.make_trainer(model, params, images[:32], images[32:], tmp_path / "w")
    assert not trainer.distributed and trainer.world_size == 1 and trainer.rank == 0
    summary = models_train.train(params, images[:32], images[32:], tmp_path / "model",
                                 tmp_path / "h.parquet", tmp_path / "c.pt", log=lambda *a: None)
    assert summary["kept_epoch"] == 2 and (tmp_path / "model" / "model.pt").is_file()
