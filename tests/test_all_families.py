"""Every registry family, plus a toy family registered by the test, through the real DAG."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, TINY, pending, smk

from vaebench import families

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # minutes: `make test-slow`, CI

# A family added from outside the registry file: an AE with a 2-dimensional latent space.
TOY = '''
from vaebench import families

families.register(families.Family(
    "toy_ae", "AE (d = 2)", "#000000", "o", ("AE", "AEConfig"), "base", "deterministic",
    ("gmm",), "pixel MSE", no_kl="a deterministic encoder: no posterior, so no KL",
    reconstruction_loss=False, fixed={"latent_dim": 2},
))
'''

ALL = {
    **TINY,
    "study": "every",
    "dataset": {**TINY["dataset"], "n_train": 32, "n_val": 8, "n_test": 8, "n_reference": 8},
    "models": [*families.MODEL_ORDER, "toy_ae"],
    "betas": [4],
    "training": {"epochs": 1, "batch_size": 8, "learning_rate": 0.001, "checkpoint_every": 1},
    "vamp": {"number_components": 3},
    # one sampler for every family: the GMM on the training codes, the one every family has
    # (each family samples with each of its samplers in test_families.py)
    "sampling": {"samplers": ["gmm"], "n_samples": 8, "gmm": {"n_components": 2}},
    "metrics": {"kid": {"subset_size": 4, "n_subsets": 2}, "n_boot": 20, "elbo_samples": 16,
                "dists": False},  # DISTS: tests/test_outside.py
    "compare_to": {"file": "published.csv", "label": "A paper"},
}  # fmt: skip
# Published values to compare with (made up for the test): a reconstruction metric, FID of
# the sampler this study runs, and FID of one it does not run (N(0, I) for WAE).
PUBLISHED = """model,beta,metric,sampler,value,source
vae,,mse,,0.0125,Table 1
beta_vae,4,mse,,0.0130,Table 1
ae,,mse,,0.0100,Table 1
vamp,,fid,gmm,61.5,Table 2
wae,,fid,normal,55.0,Table 2
"""
OUT = "results/every"


@pytest.fixture(scope="module")
def every_family(tmp_path_factory):
    work = tmp_path_factory.mktemp("every")
    (work / "plugin").mkdir()
    (work / "plugin" / "toy_family.py").write_text(TOY)
    (work / "published.csv").write_text(PUBLISHED)
    before = _repo_state()
    smk(work, ALL, env=_env(work), timeout=1500)
    assert _repo_state() == before  # adding the toy family changed no file of the project
    return work


def _env(work) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(work / "plugin"), os.environ.get("PYTHONPATH")]))
    return {"VAEBENCH_FAMILIES": "toy_family", "PYTHONPATH": path}


def _repo_state() -> str:
    out = subprocess.run(["git", "status", "--porcelain", "--", "src", "workflow", "Snakefile"],
                         cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    return out.stdout


def test_every_family_has_per_image_parquet_and_nulls_where_a_quantity_does_not_apply(
    every_family,
):
    fams = {**families.BY_KEY}
    keys = [*families.MODEL_ORDER, "toy_ae"]
    no_kl = {k for k in families.MODEL_ORDER if fams[k].no_kl} | {"toy_ae"}
    runs = sorted((every_family / OUT / "metrics").glob("**/reconstruction.parquet"))
    by_model = {}
    for path in runs:
        df = pd.read_parquet(path)
        by_model[df["model"].iloc[0]] = df
    assert set(by_model) == set(keys)
    for model, df in by_model.items():
        assert len(df) == ALL["dataset"]["n_test"], model
        assert np.isfinite(df[["mse", "ssim", "bce"]]).all().all(), model
        # −ELBO also where the KL term is a Monte Carlo estimate (flows, VAMP: mc_kl)
        no_elbo = no_kl - {k for k in families.MODEL_ORDER if fams[k].mc_kl}
        for col, blank in (("kl", no_kl), ("neg_elbo", no_elbo), ("neg_elbo_se", no_elbo)):
            assert df[col].isna().all() == (model in blank), (model, col)
            assert df[col].notna().all() == (model not in blank), (model, col)
        objective = model in ("vae", "beta_vae")
        assert df["objective"].notna().all() == objective, model


def test_every_family_has_a_table_row_with_blank_cells_where_it_should(every_family):
    rec = pd.read_parquet(every_family / OUT / "tables/reconstruction.parquet")
    labels = dict(zip(rec["model"], rec["label"], strict=True))
    assert set(labels) == {*families.MODEL_ORDER, "toy_ae"}
    assert labels["toy_ae"] == "AE (d = 2)"
    assert labels["vae"] == "VAE (β = 1)" and labels["beta_vae"] == "β-VAE β=4"
    order = [m for m in families.MODEL_ORDER if m != "vae"]  # VAE sits in the β sweep
    assert [m for m in rec["model"] if m not in ("vae", "toy_ae")] == order
    for _, row in rec.iterrows():
        fam = families.BY_KEY.get(row["model"])
        blank = set(fam.not_applicable) if fam else {"kl", "neg_elbo", "objective"}
        for metric in ("kl", "neg_elbo", "objective"):
            value = row[metric]
            if metric in blank:
                assert pd.isna(value), (row["model"], metric)  # null, never 0
            else:
                assert np.isfinite(value) and value != 0, (row["model"], metric)
    md = (every_family / OUT / "tables/reconstruction.md").read_text()
    rows = {line.split("|")[1].strip() for line in md.splitlines() if line.startswith("| ")}
    assert set(rec["label"]) <= rows
    for fam in families.REGISTRY:
        if fam.no_kl:
            assert fam.no_kl in md, fam.key  # the footnote says why the cell is blank


def test_every_family_samples_and_its_samples_are_scored(every_family):
    rec = pd.read_parquet(every_family / OUT / "tables/reconstruction.parquet")
    gen = pd.read_parquet(every_family / OUT / "tables/generation.parquet")
    assert list(gen["label"]) == list(rec["label"]) and set(gen["sampler"]) == {"gmm"}
    assert np.isfinite(gen[["fid", "kid_mean", "precision", "recall"]]).all().all()
    assert (gen["n_generated"] == ALL["sampling"]["n_samples"]).all()
    for _, row in gen.iterrows():  # the samples' round trip: null where KL does not apply
        fam = families.BY_KEY.get(row["model"])
        no_kl = fam.no_kl if fam else True
        assert pd.isna(row["rt_kl"]) == bool(no_kl), row["model"]
        assert np.isfinite(row["rt_mse"]), row["model"]


def test_published_numbers_sit_next_to_the_studys_own(every_family):
    cmp = pd.read_parquet(every_family / OUT / "tables/compared.parquet")
    rec = pd.read_parquet(every_family / OUT / "tables/reconstruction.parquet")
    gen = pd.read_parquet(every_family / OUT / "tables/generation.parquet")
    # one row per study row for MSE (every row has one), FID where either side has a number
    mse = cmp[cmp["metric"] == "mse"].set_index("label")
    assert list(mse.index) == list(rec["label"])
    np.testing.assert_array_equal(mse["measured"], rec.set_index("label")["mse"][mse.index])
    np.testing.assert_array_equal(mse["n_measured"], rec["n_images"])
    published = mse["published"].dropna().to_dict()
    assert published == {"VAE (β = 1)": 0.0125, "β-VAE β=4": 0.0130, "AE": 0.0100}
    fid = cmp[cmp["metric"] == "fid"]
    gmm = fid[fid["sampler"] == "gmm"].set_index("label")
    assert list(gmm.index) == list(gen["label"])
    np.testing.assert_array_equal(gmm["measured"], gen["fid"])
    np.testing.assert_array_equal(gmm["n_measured"], gen["n_generated"])
    assert gmm["published"].dropna().to_dict() == {"VAMP": 61.5}
    normal = fid[fid["sampler"] == "normal"]
    assert list(normal["model"]) == ["wae"] and normal["published"].tolist() == [55.0]
    assert normal["measured"].isna().all()  # not run here: null, not 0
    md = (every_family / OUT / "tables/compared.md").read_text()
    assert "| A paper |" in md and "'vaebench' is blank where this study has no such number" in md
    assert "'A paper' is blank where the file gives no value" in md
    # a changed published value reruns the compare job only
    (every_family / "published.csv").write_text(PUBLISHED.replace("61.5", "60.0"))
    stale = pending(every_family, ALL, env=_env(every_family))
    assert {p.rsplit("/", 1)[-1] for p in stale} == {
        f"compared.{ext}" for ext in ("parquet", "csv", "md", "tex", "html")
    }


def test_monte_carlo_elbo_of_flows_and_vamp_matches_pythaes_own_loss_terms(every_family):
    """VAE-LinNF, VAE-IAF and VAMP have no analytic KL (their `kl` is null) but an ELBO,
    whose KL term their Pythae losses estimate by Monte Carlo. The study's −ELBO per test
    image (16 draws) must agree, within Monte Carlo error, with an independent estimate from
    Pythae's own forward pass: 400 draws per image as 20 batches of 20 copies of the image,
    each batch giving E[BCE(recon_x, x)] (from the forward's recon_x) + its reg_loss (the KL
    term's batch mean in Pythae's loss). Bound: 4.5 combined standard errors per image."""
    import torch

    from vaebench import io, models
    from vaebench.metrics.pixel import bce_per_image

    test = io.load_npy(every_family / OUT / "data/test.npy")
    torch.manual_seed(0)
    for key in ("vae_lin_nf", "vae_iaf", "vamp"):
        assert families.BY_KEY[key].mc_kl, key
        metrics_dir = every_family / OUT / "metrics" / key / "seed~0"
        per_image = pd.read_parquet(metrics_dir / "reconstruction.parquet")
        assert per_image["kl"].isna().all() and per_image["neg_elbo"].notna().all(), key
        model = models.load(every_family / OUT / f"runs/{key}/seed~0/model")
        for i, row in per_image.iterrows():
            x = models.to_float(test[i : i + 1]).expand(20, -1, -1, -1).contiguous()
            batches = []
            with torch.no_grad():
                for _ in range(20):
                    out = model({"data": x})
                    nll = bce_per_image(out.recon_x.clamp(0, 1), x).mean()
                    batches.append(float(nll) + float(out.reg_loss))
            ref, ref_se = np.mean(batches), np.std(batches, ddof=1) / np.sqrt(len(batches))
            bound = 4.5 * np.hypot(row["neg_elbo_se"], ref_se)
            assert abs(row["neg_elbo"] - ref) <= bound, (key, i, row["neg_elbo"], ref, bound)


def test_every_family_loads_from_safetensors_and_reconstructs_like_its_run(every_family, tmp_path):
    """The pickle-free route of a publication (model.safetensors + the train job's record)
    for every registry family, RHVAE's learned metric included: the rebuilt model gives the
    run's own reconstructions bitwise (the reconstruct job's computation: 1 thread, same
    batch, CPU) and, where Pythae's forward samples, the same Monte Carlo terms."""
    import shutil

    from conftest import torch_threads

    from vaebench import io, models, safe_weights

    test = io.load_npy(every_family / OUT / "data/test.npy")
    for key in families.MODEL_ORDER:
        run = every_family / OUT / "runs" / key / ("beta~4" if key == "beta_vae" else "")
        run = run / "seed~0"
        folder = shutil.copytree(run / "model", tmp_path / key)  # the study's files untouched
        safe_weights.write(folder / "model.pt", folder / safe_weights.FILE)
        with torch_threads(1):
            safe, pkl = safe_weights.load(folder), models.load(folder)
            x_safe, t_safe = models.reconstruct(safe, test, elbo_samples=1, seed=0)
            x_pkl, t_pkl = models.reconstruct(pkl, test, elbo_samples=1, seed=0)
        np.testing.assert_array_equal(x_safe, io.load_npy(run / "recon.npy"), err_msg=key)
        np.testing.assert_array_equal(x_safe, x_pkl, err_msg=key)
        for term in t_pkl:
            np.testing.assert_array_equal(t_safe[term], t_pkl[term], err_msg=f"{key} {term}")
