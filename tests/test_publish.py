"""publish: a Hub-ready folder per run (Pythae's files, a model card whose model-index holds
the tables' values, provenance, grids); the model loads from it and reconstructs exactly as
the run's model; a push without a token fails in one line before any request."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import OUT, TINY, copy_of, smk, torch_threads

from vaebench import VaebenchError, io, publish, tracking
from vaebench import config as vb

pytestmark = pytest.mark.e2e

RUNS = ["vae/seed~0", "vqvae/seed~0"]
REPO = "someone/vaebench-{model}-beta{beta}-seed{seed}"
STUDY = {
    **TINY,
    "models": ["vae", "vqvae"],
    "sampling": {**TINY["sampling"], "samplers": ["gmm"]},
    "publish": {"enabled": True, "hf_repo": REPO},
}
PUSH = {**STUDY, "publish": {**STUDY["publish"], "push": True}}


def _hub_env(mp: pytest.MonkeyPatch, home: Path) -> None:
    """No token anywhere and the Hub client offline."""
    for key in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_ENDPOINT"):
        mp.delenv(key, raising=False)
    mp.setenv("HF_HOME", str(home / "hf"))
    mp.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def study(tiny_study, tmp_path_factory):
    """The tiny study with publish.enabled: every run's Hub folder is part of `rule all`.
    Its runs are the tiny study's: a copy of that study runs only the publish jobs, the
    tables and the figures."""
    work = copy_of(tiny_study, tmp_path_factory, "publish")
    with pytest.MonkeyPatch.context() as mp:
        _hub_env(mp, work / "home")
        smk(work, STUDY, offline=True)
    return work


def _folder(work: Path, run: str) -> Path:
    return work / OUT / "publish" / run


def test_publish_writes_the_hub_folder(study):
    for run in RUNS:
        pub, model = _folder(study, run), study / OUT / "runs" / run / "model"
        names = {p.name for p in pub.iterdir() if not p.name.startswith(".")}
        assert names == {
            "model.safetensors", "model.pt", "model_config.json", "environment.json",
            "encoder.pkl", "decoder.pkl", "vaebench.json", "README.md", "training_config.json",
            "metrics.json",
            "provenance.json", "history.parquet", "recon_grid.png", "samples_gmm.png",
        }  # fmt: skip
        for name in ("model.pt", "encoder.pkl", "decoder.pkl", "model_config.json"):
            assert (pub / name).read_bytes() == (model / name).read_bytes()
        trained = json.loads((model / "vaebench.json").read_text())
        assert json.loads((pub / "training_config.json").read_text()) == trained["config"]
        prov = json.loads((pub / "provenance.json").read_text())
        assert prov["training"] == trained
        assert set(prov["samples"]) == {"gmm"} and "config" in prov["reconstruction"]
        for name, digest in prov["sha256"].items():
            assert io.sha256_file(pub / name) == digest, name
        assert set(prov["sha256"]) == names - {"provenance.json"}


def _table_value(table: pd.DataFrame, model: str, metric: str, sampler: str | None = None):
    rows = table[table["model"] == model]
    if sampler is not None:
        rows = rows[rows["sampler"] == sampler]
    assert len(rows) == 1
    return rows.iloc[0]


KEY = {"kid": "kid_mean"}  # model-index metric type -> table column, where they differ


def test_the_card_parses_and_its_metrics_equal_the_tables(study):
    from huggingface_hub import ModelCard

    table = pd.read_parquet(study / OUT / "tables" / "reconstruction.parquet")
    for run in RUNS:
        model = run.split("/")[0]
        card = ModelCard.load(_folder(study, run) / "README.md")
        assert card.data.library_name == "pythae"
        assert {"vaebench", "pythae"} <= set(card.data.tags)
        assert card.data.datasets == ["shapes"]
        assert "vaebench need not be installed" in card.text  # the networks are pickled by value
        assert f"with Python {platform.python_version()}" in card.text  # pickles hold bytecode
        assert "Stand-in metric weights" in card.text
        results = card.data.eval_results
        assert results and {r.task_type for r in results} == {"image-to-image"}
        row = _table_value(table, model, "mse")
        got = {r.metric_type: r for r in results}
        # stand-in weights: no LPIPS; VQ-VAE: no KL, -ELBO or objective (as the tables say)
        expected = {"bce", "bce_excess", "mse", "ssim", "gmsd", "psnr", "ms_ssim"}
        expected |= {"haarpsi", "mdsi", "vsi", "fsimc", "ms_gmsd"}  # piq's, no weights needed
        expected |= {"kl", "neg_elbo", "objective"} if model == "vae" else set()
        assert set(got) == expected
        for metric, r in got.items():
            assert r.metric_value == pytest.approx(row[metric], rel=1e-12), metric
            assert r.metric_args["n_images"] == row["n_images"] == TINY["dataset"]["n_test"]
            assert r.dataset_split == "test" and r.dataset_type == "shapes"


def test_generation_metrics_enter_the_card_with_their_n(study, monkeypatch):
    """With official weights the card also lists FID, KID, precision, recall, density and
    coverage per sampler
    (the tiny study's weights are stand-ins, so the claim is patched in)."""
    read = io.read_parquet_metadata
    official = lambda p: {**read(p), "weights_official": True}  # noqa: E731
    monkeypatch.setattr(io, "read_parquet_metadata", official)
    table = pd.read_parquet(study / OUT / "tables" / "generation.parquet")
    cfg = vb.validate(STUDY)
    for run_id in RUNS:
        run = vb.run_by_id(cfg, run_id)
        files = vb.publish_inputs(cfg, run)
        with monkeypatch.context() as m:
            m.chdir(study)
            summary = tracking.run_summary(files["reconstruction"], files["generation"], None,
                                           ["gmm"])  # fmt: skip
        results = publish.eval_results(vb.publish_params(cfg, run), summary)
        gen = [r for r in results if r.task_type == "unconditional-image-generation"]
        assert {r.metric_type for r in gen} == {"fid", "fid_inf", "kid", "kid_std", "precision",
                                                 "recall", "density", "coverage"}  # fmt: skip
        row = _table_value(table, run.model, "fid", "gmm")
        for r in gen:
            value = row[KEY.get(r.metric_type, r.metric_type)]
            assert r.metric_value == pytest.approx(value, rel=1e-12), r.metric_type
            assert r.metric_args == {"sampler": "gmm", "n_generated": row["n_generated"],
                                     "n_reference": row["n_reference"]}  # fmt: skip


def test_the_published_model_loads_and_reconstructs_like_the_run(study):
    from vaebench import models

    images = io.load_npy(study / OUT / "data" / "test.npy")
    for run in RUNS:
        pub, model = _folder(study, run), study / OUT / "runs" / run / "model"
        # the reconstruct job's computation (1 thread, same batch, CPU): bitwise holds
        with torch_threads(1):
            x_run, t_run = models.reconstruct(models.load(model), images, elbo_samples=1, seed=0)
            x_pub, t_pub = models.reconstruct(models.load(pub), images, elbo_samples=1, seed=0)
        np.testing.assert_array_equal(x_pub, x_run)
        for k in t_run:
            np.testing.assert_array_equal(t_pub[k], t_run[k])
        np.testing.assert_array_equal(x_pub, io.load_npy(study / OUT / "runs" / run / "recon.npy"))
    # Pythae alone, in a fresh interpreter where vaebench cannot be imported: the networks,
    # vaebench.nets classes, are pickled by value
    code = (
        "import sys; sys.modules['vaebench'] = None; from pythae.models import AutoModel\n"
        "m = AutoModel.load_from_folder(sys.argv[1]).eval()\n"
        "print(type(m).__name__, type(m.encoder).__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(_folder(study, "vae/seed~0"))],
                         capture_output=True, text=True, check=True, timeout=300)  # fmt: skip
    assert out.stdout.split() == ["VAE", "vaebench.nets"]


def test_the_publication_loads_without_unpickling_and_reconstructs_like_the_run(
    study, monkeypatch
):
    """model.safetensors + vaebench.json rebuild the model with every pickle loader blocked
    (pickle, torch.load, Pythae's folder loader): the same reconstructions, bitwise, as the
    run's own recon.npy (the reconstruct job's computation: 1 thread, same batch, CPU)."""
    import pickle

    import torch
    from pythae.models import AutoModel

    from vaebench import models, safe_weights

    def refuse(*args, **kwargs):
        raise AssertionError("the safetensors route unpickled something")

    for owner, name in ((pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"),
                        (torch, "load"), (AutoModel, "load_from_folder")):  # fmt: skip
        monkeypatch.setattr(owner, name, refuse)
    images = io.load_npy(study / OUT / "data" / "test.npy")
    for run in RUNS:
        with torch_threads(1):
            model = safe_weights.load(_folder(study, run))
            x_pub, _ = models.reconstruct(model, images, elbo_samples=1, seed=0)
        assert not model.training
        np.testing.assert_array_equal(x_pub, io.load_npy(study / OUT / "runs" / run / "recon.npy"))
    card = (_folder(study, "vae/seed~0") / "README.md").read_text()
    assert card.index("safe_weights.load") < card.index("allow_pickle=True")  # safe way first


def test_safetensors_refuses_what_it_cannot_hold_in_one_line(tmp_path):
    """A model.pt entry beside the state dict that is not RHVAE's metric is refused, not
    dropped; a folder without the files names what is missing; nothing is left behind."""
    import torch

    from vaebench import safe_weights

    blob = {"model_state_dict": {"w": torch.ones(2)}, "optimizer": {"lr": torch.ones(1)}}
    torch.save(blob, tmp_path / "model.pt")
    with pytest.raises(VaebenchError, match=r"\['optimizer'\].*EXTRAS"):
        safe_weights.write(tmp_path / "model.pt", tmp_path / "model.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]
    with pytest.raises(VaebenchError, match="no model.safetensors"):
        safe_weights.load(tmp_path)


def test_publish_runs_chooses_which_runs_are_published():
    cfg = vb.validate({**STUDY, "models": ["vae", "beta_vae", "vqvae"], "betas": [0.5, 4]})
    every = vb.publish_outputs(cfg, vb.runs(cfg))
    assert len(every) == 4
    cfg["publish"]["runs"] = ["beta_vae/*", "vqvae/seed~0"]
    chosen = vb.publish_outputs(cfg, vb.runs(cfg))
    assert [p.split("/publish/")[1] for p in chosen] == [
        "beta_vae/beta~0.5/seed~0", "beta_vae/beta~4/seed~0", "vqvae/seed~0"]  # fmt: skip
    run = vb.runs(cfg)[0]  # choosing runs is not a publish job's param: nothing reruns
    assert vb.publish_params(cfg, run) == vb.publish_params({**cfg, "publish": {
        **cfg["publish"], "runs": []}}, run)  # fmt: skip
    cfg["publish"]["runs"] = ["gan/*"]
    with pytest.raises(VaebenchError, match="publish.runs.*matches none"):
        vb.publish_outputs(cfg, vb.runs(cfg))


def test_hub_repo_ids_from_the_pattern():
    cfg = vb.validate({**STUDY, "models": ["vae", "beta_vae", "vqvae"], "betas": [0.5, 4]})
    ids = [vb.publish_params(cfg, r)["hf_repo"] for r in vb.runs(cfg)]
    assert ids == [
        "someone/vaebench-beta_vae-beta0.5-seed0", "someone/vaebench-vae-beta1-seed0",
        "someone/vaebench-beta_vae-beta4-seed0", "someone/vaebench-vqvae-betana-seed0",
    ]  # fmt: skip
    run = vb.runs(cfg)[0]
    assert vb.hub_repo_id("u/{study}-{run}", run, "tiny") == "u/tiny-beta_vae-beta0.5-seed0"
    params = {**vb.publish_params(cfg, run), "push": True, "hf_repo": "u/a--b"}
    with pytest.raises(VaebenchError, match="not a valid Hub repository id"):
        publish.check_push(params)
    with pytest.raises(VaebenchError, match="publish.hf_repo is not set"):
        publish.check_push({**params, "hf_repo": None})


GUARDED = """
import json, socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args)[:200])
    raise OSError("network disabled by the test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
import huggingface_hub
def hub(*args, **kwargs):
    attempts.append("HfApi call")
    raise RuntimeError("the test forbids Hub calls")
for name in ("create_repo", "upload_folder", "upload_file", "create_commit", "whoami"):
    setattr(huggingface_hub.HfApi, name, hub)
from vaebench import VaebenchError, publish
try:
    publish.publish(**json.loads(sys.argv[1]))
    error = None
except VaebenchError as err:
    error = str(err)
print(json.dumps({"error": error, "attempts": attempts}))
"""


def test_push_without_a_token_fails_in_one_line_and_sends_nothing(study, tmp_path, monkeypatch):
    _hub_env(monkeypatch, tmp_path)
    cfg = vb.validate(PUSH)
    run = vb.run_by_id(cfg, "vae/seed~0")
    out = tmp_path / "folder"
    kwargs = {**vb.publish_inputs(cfg, run), "params": vb.publish_params(cfg, run),
              "out": str(out)}  # fmt: skip
    res = subprocess.run([sys.executable, "-c", GUARDED, json.dumps(kwargs)], cwd=study,
                         capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["attempts"] == []  # no connection, no Hub call: the token is checked first
    assert got["error"] == (
        "publish: no Hugging Face token to push someone/vaebench-vae-beta1-seed0: set "
        "HF_TOKEN or run `hf auth login` (formerly `huggingface-cli login`), then rerun "
        "(nothing was uploaded)"
    )
    assert not out.exists()


def test_a_push_through_the_workflow_fails_in_one_line(study, tmp_path, monkeypatch):
    """The same through Snakemake, on a copy of the study, with no network at all."""
    _hub_env(monkeypatch, tmp_path)
    work = tmp_path / "copy"
    shutil.copytree(study, work, symlinks=True)
    res = smk(work, PUSH, "--keep-going", check=False, offline=True)
    assert res.returncode != 0
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("vaebench: publish: ")]
    assert len(set(lines)) == 2 and all("no Hugging Face token to push" in ln for ln in lines)
    assert all("set HF_TOKEN or run `hf auth login`" in ln for ln in lines)
    assert not any(_folder(work, r).exists() for r in RUNS)  # the failed jobs left nothing


def test_the_cards_hub_loading_line_works_on_a_downloaded_copy(study, tmp_path):
    """`AutoModel.load_from_hf_hub(repo, allow_pickle=True)` as the card says, served from a
    Hugging Face cache laid out as a download of the folder leaves it (HF_HUB_OFFLINE)."""
    repo = "someone/vaebench-vae-beta1-seed0"
    cache = tmp_path / "hf" / "hub" / f"models--{repo.replace('/', '--')}"
    commit = "0" * 40
    (cache / "refs").mkdir(parents=True)
    (cache / "refs" / "main").write_text(commit)
    shutil.copytree(_folder(study, "vae/seed~0"), cache / "snapshots" / commit,
                    ignore=shutil.ignore_patterns(".*"))  # fmt: skip
    code = (
        "import sys, numpy as np, torch; from pythae.models import AutoModel\n"
        "m = AutoModel.load_from_hf_hub(sys.argv[1], allow_pickle=True).eval()\n"
        "x = torch.from_numpy(np.load(sys.argv[2])[:4]).float() / 255\n"
        "with torch.no_grad(): r = m.decoder(m.encoder(x).embedding).reconstruction\n"
        "np.save(sys.argv[3], r.numpy())"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env |= {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    out = tmp_path / "r.npy"
    subprocess.run([sys.executable, "-c", code, repo, str(study / OUT / "data" / "test.npy"),
                    str(out)], env=env, check=True, timeout=300, capture_output=True)  # fmt: skip
    recon = io.load_npy(study / OUT / "runs" / "vae" / "seed~0" / "recon.npy")[:4]
    # Not the job's computation: 4 images instead of the job's batch, torch's default thread
    # count, plain Pythae calls. A convolution's float32 result depends on all three (seen:
    # up to 6e-8 apart on another machine), so the test asks what it is about, the card's
    # line loading this model: a few hundred float32 ulps at 1.0 (1e-5) admit the rounding,
    # while another model's, or an untrained one's, pixels differ by more than 1e-2.
    np.testing.assert_allclose(np.load(out).clip(0, 1), recon, rtol=0, atol=1e-5)
