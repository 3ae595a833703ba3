"""End-to-end: the real Snakemake DAG on a tiny config, then what goes stale when it changes."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
from conftest import TINY, pending, torch_threads

from vaebench import config as vb
from vaebench import families
from vaebench.io import sha256_file
from vaebench.names import SET_METRICS

pytestmark = pytest.mark.e2e
AGGREGATES = ("results/tiny/tables/", "results/tiny/figures/", "results/tiny/report")


def test_every_run_has_model_history_recon_and_samples(tiny_study):
    cfg = vb.validate(TINY)
    test = np.load(tiny_study / "results/tiny/data/test.npy")
    assert test.dtype == np.uint8 and test.shape == (32, 3, 64, 64)
    runs = vb.runs(cfg)
    assert {r.model for r in runs} == {"vae", "beta_vae", "vqvae", "vaegan"}
    for run in runs:
        base = tiny_study / "results/tiny/runs" / run.id
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
            record = json.loads((base / f"samples_{s}.json").read_text())
            assert record["config"]["sampling"]["sampler"] == s
            assert record["sha256"][f"samples_{s}.npy"] == sha256_file(base / f"samples_{s}.npy")
        record = json.loads((base / "recon.json").read_text())  # .npy carry no metadata
        assert record["config"]["model"]["run"] == run.id and record["device"] == "cpu"
        assert record["git_commit"] and record["versions"]["torch"]
        assert record["sha256"]["recon.npy"] == sha256_file(base / "recon.npy")
        assert not (base / "checkpoint.pt").exists()


def test_saved_model_reloads_to_identical_reconstructions(tiny_study):
    from vaebench import models

    # the job's computation exactly (1 thread, the same batch, the CPU), so bitwise holds
    test = np.load(tiny_study / "results/tiny/data/test.npy")
    for run in ("vae/seed~0", "vqvae/seed~0"):
        net = models.load(tiny_study / "results/tiny/runs" / run / "model")
        with torch_threads(1):
            recon, _ = models.reconstruct(net, test, elbo_samples=1, seed=0)
        np.testing.assert_array_equal(
            recon, np.load(tiny_study / "results/tiny/runs" / run / "recon.npy")
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
    assert "results/tiny/runs/beta_vae/beta~2/seed~0/model" in todo
    stray = [f for f in todo if "beta~2/" not in f and not f.startswith(AGGREGATES)]
    assert stray == []


def test_sampler_setting_reruns_sampling_not_training(tiny_study):
    cfg = copy.deepcopy(TINY)
    cfg["sampling"]["gmm"]["n_components"] = 3
    todo = pending(tiny_study, cfg)
    assert "results/tiny/runs/vae/seed~0/samples_gmm.npy" in todo
    assert not [f for f in todo if f.endswith(("/model", "history.parquet", "recon.npy"))]
    runs = [f for f in todo if not f.startswith(AGGREGATES)]
    assert not [f for f in runs if "samples_normal" in f or "samples_pixelcnn" in f]


def test_switching_a_metric_on_reruns_only_metric_jobs_and_tables(tiny_study):
    """metrics.dists or metrics.lpips_vgg: true (the tiny study has both off) plans the
    weights' staging (VGG16 then), the metric jobs and what reads them; no training,
    reconstruction or sampling."""
    for switch in ("dists", "lpips_vgg"):
        cfg = copy.deepcopy(TINY)
        cfg["metrics"][switch] = True
        todo = pending(tiny_study, cfg)
        assert "results/tiny/metrics/vae/seed~0/reconstruction.parquet" in todo
        assert "results/tiny/metrics/vae/seed~0/generation_gmm.parquet" in todo
        kept = ("/weights/", "/metrics/", "/tables/", "/figures/")
        assert not [f for f in todo if not any(k in f for k in kept)], sorted(todo)


def test_adding_a_feature_space_adds_its_jobs_and_reruns_only_the_tables(tiny_study):
    """metrics.feature_spaces + DINOv2 plans its weights, its reference features, one file per
    run and sampler, and the tables and figures: no other metric job reruns, and the order of
    the list does not matter (the jobs follow the registry's order)."""
    cfg = copy.deepcopy(TINY)
    cfg["metrics"]["feature_spaces"] = ["dinov2_vits14", "inception"]
    todo = pending(tiny_study, cfg)
    assert "results/tiny/weights/dinov2_vits14.json" in todo
    assert "results/tiny/metrics/reference_features_dinov2_vits14.npy" in todo
    assert "results/tiny/metrics/vae/seed~0/dinov2_vits14_gmm.parquet" in todo
    assert "results/tiny/tables/feature_spaces.md" in todo
    new = ("/dinov2_vits14", "_dinov2_vits14", "/tables/", "/figures/")
    assert not [f for f in todo if not any(k in f for k in new)], sorted(todo)
    cfg["metrics"]["feature_spaces"] = ["inception", "dinov2_vits14"]
    assert pending(tiny_study, cfg) == todo


def test_changing_epochs_retrains_everything(tiny_study):
    cfg = copy.deepcopy(TINY)
    cfg["training"]["epochs"] = 3
    todo = pending(tiny_study, cfg)
    models = {f for f in todo if f.endswith("/model")}
    assert models == {f"results/tiny/runs/{r.id}/model" for r in vb.runs(vb.validate(TINY))}
    assert "results/tiny/data/train.npy" not in todo


METRICS = ["bce", "bce_excess", "mse", "kl", "neg_elbo", "neg_elbo_se", "objective", "psnr",
           "ssim", "ms_ssim", "gmsd", "lpips"]  # fmt: skip
NO_KL = ("kl", "neg_elbo", "neg_elbo_se", "objective")  # VQ-VAE: no stochastic posterior


def test_per_image_metrics_have_one_row_per_test_image(tiny_study):
    import pyarrow.parquet as pq

    from vaebench.io import read_parquet_metadata

    cfg = vb.validate(TINY)
    for run in vb.runs(cfg):
        path = tiny_study / "results/tiny/metrics" / run.id / "reconstruction.parquet"
        df = pd.read_parquet(path)
        assert list(df["image"]) == list(range(32)) and (df["run"] == run.id).all()
        assert {"run", "model", "family", "beta", "seed", "image", *METRICS} <= set(df.columns)
        blank = families.BY_KEY[run.model].not_applicable  # null in the file itself
        applicable = [m for m in METRICS if m not in blank]
        assert np.isfinite(df[applicable].to_numpy()).all(), run.id
        assert pq.read_table(path).select(list(blank)).to_pandas().isna().all().all(), run.id
        assert (df["bce_excess"] >= 0).all() and (df["bce_excess"] < df["bce"]).all()
        if run.model == "vqvae":  # null in the file itself, not NaN stand-ins for a number
            nulls = pq.read_table(path).select(list(NO_KL))
            assert all(nulls[c].null_count == len(df) for c in NO_KL)
        else:
            assert (df["neg_elbo_se"] > 0).all(), run.id  # a Monte Carlo estimate, with its SE
        meta = read_parquet_metadata(path)
        assert meta["weights_official"] is False  # tests run on random stand-in weights
        assert meta["metrics"]["ms_ssim"]["kernel_size"] == 11
        assert meta["metrics"]["elbo"]["samples"] == 16 and meta["checkpoint"] == "last"
        assert meta["versions"]["torch"] and meta["config"]


def test_bce_excess_of_an_image_with_itself_is_zero_through_the_real_job(tiny_study):
    from vaebench import jobs, models
    from vaebench.metrics import images

    test = np.load(tiny_study / "results/tiny/data/test.npy")
    net = models.load(tiny_study / "results/tiny/runs/vae/seed~0/model")
    _, terms = models.reconstruct(net, test, elbo_samples=2, seed=0)
    lp = images.load_learned(tiny_study / "resources/weights", dists=False)  # as TINY
    mcfg = vb.recon_metric_params(vb.validate(TINY))
    df = jobs.per_image_frame(vb.run_info(vb.run_by_id(vb.validate(TINY), "vae/seed~0")), test,
                              test.astype(np.float32) / 255, terms, lp, mcfg,
                              reconstruction_loss="bce")  # fmt: skip
    assert (df["bce_excess"] == 0).all() and (df["mse"] == 0).all()
    assert (df["bce"] > 0).all()  # BCE of an image with itself is its entropy, not 0


def test_vae_is_the_sweeps_beta_one_trained_once(tiny_study):
    assert not (tiny_study / "results/tiny/runs/beta_vae/beta~1").exists()
    rec = pd.read_parquet(tiny_study / "results/tiny/tables/reconstruction.parquet")
    assert (rec["label"] == "VAE (β = 1)").sum() == 1
    assert list(rec["beta"].iloc[:3]) == [0.5, 1.0, 4.0]


def test_mse_psnr_ssim_match_an_independent_recomputation(tiny_study):
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    test = np.load(tiny_study / "results/tiny/data/test.npy").astype(np.float64) / 255
    recon = np.load(tiny_study / "results/tiny/runs/vae/seed~0/recon.npy").astype(np.float64)
    df = pd.read_parquet(tiny_study / "results/tiny/metrics/vae/seed~0/reconstruction.parquet")
    for i in range(len(test)):
        x, y = test[i].transpose(1, 2, 0), recon[i].transpose(1, 2, 0)
        assert df["mse"][i] == pytest.approx(((x - y) ** 2).mean(), rel=1e-5)
        assert df["psnr"][i] == pytest.approx(peak_signal_noise_ratio(x, y, data_range=1), abs=1e-3)
        ssim = structural_similarity(x, y, channel_axis=-1, data_range=1, gaussian_weights=True,
                                     sigma=1.5, use_sample_covariance=False)  # fmt: skip
        assert df["ssim"][i] == pytest.approx(ssim, abs=1e-4)


def test_tables_have_every_row_and_no_zero_placeholders(tiny_study):
    rec = pd.read_parquet(tiny_study / "results/tiny/tables/reconstruction.parquet")
    assert list(rec["model"]) == ["beta_vae", "vae", "beta_vae", "vqvae", "vaegan"]
    for m in ["bce", "bce_excess", "mse", "psnr", "ssim", "ms_ssim", "gmsd", "lpips"]:
        assert np.isfinite(rec[m]).all(), m
        assert (rec[m] != 0).all(), m
    gaussian = rec["model"] != "vqvae"
    assert np.isfinite(rec.loc[gaussian, ["kl", "neg_elbo"]]).all().all()
    assert rec.loc[~gaussian, ["kl", "neg_elbo", "objective"]].isna().all().all()
    # objective (BCE + β·KL) is the training loss of VAE and β-VAE only
    assert rec.loc[rec["model"] == "vaegan", "objective"].isna().all()
    assert np.isfinite(rec.loc[rec["model"].isin(["vae", "beta_vae"]), "objective"]).all()
    md = (tiny_study / "results/tiny/tables/reconstruction.md").read_text()
    assert "checkpoint" in md.lower()  # which rule kept every family's model
    vq = next(line for line in md.splitlines() if line.startswith("| VQ-VAE"))
    assert "nan" not in vq.lower() and "55." not in vq  # blank cells, not log K constants
    gen = pd.read_parquet(tiny_study / "results/tiny/tables/generation.parquet")
    assert len(gen) == 10  # VAE (β = 1), two other betas, VAE-GAN x 2 samplers + VQ-VAE x 2
    for m in SET_METRICS:  # every set-level metric of the registry
        assert np.isfinite(gen[m]).all(), m  # Parquet keeps the raw values ...
    assert (gen["weights_official"] == False).all()  # noqa: E712  ... beside this flag
    for ext in ("md", "csv", "tex"):  # ... and no view shows a stand-in number
        text = (tiny_study / f"results/tiny/tables/generation.{ext}").read_text()
        assert "stand-in" in text, ext
    shown = pd.read_csv(tiny_study / "results/tiny/tables/generation.csv")
    for col in SET_METRICS:  # every set-level metric of the registry
        assert shown[col].astype(str).str.startswith("n/a").all(), col
        assert shown[[f"{col}_lo", f"{col}_hi"]].isna().all().all(), col  # no stand-in bounds
    assert "not the official ones" in md or "stand-in" in md
    for name in ["metric_agreement", "paired_comparisons"]:
        assert len(pd.read_parquet(tiny_study / f"results/tiny/tables/{name}.parquet")) > 0


def test_figures_exist(tiny_study):
    names = ["reconstruction_grid", "samples_normal", "samples_gmm", "samples_pixelcnn",
             "metric_vs_beta", "rate_distortion", "learning_curves",
             "agreement_heatmap"]  # fmt: skip
    for name in names:
        for ext in ["png", "pdf"]:
            assert (tiny_study / f"results/tiny/figures/{name}.{ext}").stat().st_size > 1000


def test_study_ran_without_network(tiny_study):
    from conftest import offline_prefix

    if not offline_prefix():
        pytest.skip("cannot create a network namespace here (needs root and unshare)")
    staged = (tiny_study / "results/tiny/weights/staged.json").read_text()
    assert '"source": "random"' in staged  # the download was attempted and could not connect


def test_metric_parquet_is_byte_identical_when_recomputed(tiny_study):
    """Same config, seed, commit and machine: the metric Parquet files are equal byte for byte.

    Kept last in this file: the forced reruns leave the tables older than their inputs.
    """
    from conftest import smk

    files = ["results/tiny/metrics/vae/seed~0/reconstruction.parquet",
             "results/tiny/metrics/vqvae/seed~0/generation_pixelcnn.parquet",
             "results/tiny/metrics/vqvae/seed~0/roundtrip_pixelcnn.parquet"]  # fmt: skip
    before = {f: (tiny_study / f).read_bytes() for f in files}
    out = smk(tiny_study, TINY, files[0], files[1], "--forcerun", files[0], files[1], offline=True)
    assert "recon_metrics" in out.stdout + out.stderr
    for f in files:
        assert (tiny_study / f).read_bytes() == before[f], f


def test_findings_are_written_beside_the_tables(tiny_study):
    tables = tiny_study / "results/tiny/tables"
    text = (tables / "findings.md").read_text(encoding="utf-8")
    assert text.startswith("# Findings") and "one seed" in text  # TINY has one seed
    assert "LPIPS" not in text.split("\n## ", 1)[1]  # stand-in weights: left out
    assert (tables / "findings.html").read_text(encoding="utf-8").count("<h2>") == 3
