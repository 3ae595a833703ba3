"""`evaluate:` entries: models and samples vaebench did not train, through the real workflow.

One copy of the tiny study publishes its VAE, then evaluates, beside its own runs: that
publication as a pythae folder and as a Hub repository served from a local Hugging Face
cache (offline), its trained VQ-VAE folder (pickled networks, trusted), a Pythae model of a
class the family registry lacks (CIWAE, Pythae's default networks), the VAE's own samples as
a samples entry, and a folder of ten PNG images (fewer than n_samples). What each must give
is what the original run gave, bitwise on this machine (the same functions, batches,
threads and device), and the bad entries fail in one line before anything runs.

This copy also runs the feature spaces beyond Inception (DINOv2 ViT-S/14 and CLIP
ViT-L/14@336, on stand-ins), so that their real jobs' files are checked here: one copy of
the study for both, to keep the suite short. (DISTS through a real job: test_models.)
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import OUT, TINY, copy_of, pending, smk

from vaebench import VaebenchError, io, outside

pytestmark = pytest.mark.e2e

REPO = "someone/published-vae"
COMMIT = "1" * 40
IDS = ("run", "model", "family", "beta", "seed", "image", "sampler", "evaluated", "family_key",
       "space")
# two more feature spaces (the tiny study has only Inception): every number below comes
# from the real jobs' Parquet files, with the weights staged by the real staging jobs
SPACES = ["dinov2_vits14", "clip_vitl14_336"]
BASE = {**TINY, "sampling": {**TINY["sampling"], "samplers": ["gmm"]},
        "metrics": {**TINY["metrics"], "feature_spaces": ["inception", *SPACES]}}  # fmt: skip


def _env(home: Path) -> dict[str, str]:
    return {"HF_HOME": str(home / "hf"), "HF_HUB_OFFLINE": "1", "HF_TOKEN": ""}


def _serve(folder: Path, home: Path) -> None:
    """A local Hugging Face cache laid out as a download of `folder` as REPO at COMMIT."""
    cache = home / "hf" / "hub" / f"models--{REPO.replace('/', '--')}"
    (cache / "refs").mkdir(parents=True)
    (cache / "refs" / "main").write_text(COMMIT)
    shutil.copytree(folder, cache / "snapshots" / COMMIT, ignore=shutil.ignore_patterns(".*"))


def _ciwae(folder: Path, size: int) -> None:
    """A Pythae CIWAE with Pythae's default networks (no pickles), saved as Pythae saves."""
    import torch
    from pythae.models import CIWAE, CIWAEConfig

    torch.manual_seed(0)
    CIWAE(CIWAEConfig(input_dim=(3, size, size), latent_dim=4)).save(str(folder))


def _pngs(samples: Path, out: Path, n: int) -> None:
    from PIL import Image

    out.mkdir(parents=True)
    for i, x in enumerate(io.load_npy(samples)[:n]):
        Image.fromarray(x.transpose(1, 2, 0)).save(out / f"{i:03d}.png")


@pytest.fixture(scope="module")
def study(tiny_study, tmp_path_factory):
    """(workdir, config, what was pending before the run): the tiny study's copy, with the
    evaluate entries added after publishing its VAE."""
    work = copy_of(tiny_study, tmp_path_factory, "outside")
    env = _env(work / "home")
    published = {**BASE, "publish": {"enabled": True, "runs": ["vae/seed~0"]}}
    smk(work, published, offline=True, env=env)
    pub = work / OUT / "publish" / "vae" / "seed~0"
    _serve(pub, work / "home")
    _ciwae(work / "ciwae", 64)
    runs = work / OUT / "runs"
    _pngs(runs / "vae" / "seed~0" / "samples_gmm.npy", work / "pngs", 10)
    cfg = {**BASE, "evaluate": [
        {"name": "pub", "pythae": str(pub)},
        {"name": "hubpub", "hub": REPO},
        {"name": "own_vq", "pythae": str(runs / "vqvae" / "seed~0" / "model"),
         "trust_pickled_code": True},
        {"name": "ciwae", "pythae": str(work / "ciwae")},
        {"name": "vae_samples", "samples": str(runs / "vae" / "seed~0" / "samples_gmm.npy")},
        {"name": "few", "samples": str(work / "pngs")},
    ]}  # fmt: skip
    before = pending(work, cfg, env=env)
    smk(work, cfg, offline=True, env=env)
    return work, cfg, before


def _metrics(work: Path, run: str, name: str) -> pd.DataFrame:
    return pd.read_parquet(work / OUT / "metrics" / run / f"{name}.parquet")


def _assert_same_numbers(a: pd.DataFrame, b: pd.DataFrame) -> None:
    cols = [c for c in a.columns if c not in IDS]
    assert cols and len(a) == len(b)
    for c in cols:
        assert np.array_equal(a[c].to_numpy(), b[c].to_numpy(), equal_nan=True), c


@pytest.mark.parametrize("name", ["pub", "hubpub"])
def test_a_publication_scores_as_its_run(study, name):
    """Evaluated from its Hub folder (safetensors, nothing unpickled) or from the Hub, the
    published VAE gives the run's per-image, generation and round-trip numbers bitwise."""
    work, _, _ = study
    run = f"{name}/evaluated"
    for table in ("reconstruction", "generation_gmm", "roundtrip_gmm",
                  *[f"{space}_gmm" for space in SPACES]):  # fmt: skip
        _assert_same_numbers(_metrics(work, "vae/seed~0", table), _metrics(work, run, table))
    model = work / OUT / "runs" / run / "model"
    assert not list(model.glob("*.pkl"))  # the safe files only
    record = json.loads((model / "vaebench.json").read_text())["evaluated"]
    assert record["route"] == "safetensors" and record["kind"] == ("hub" if "hub" in name
                                                                   else "pythae")


def test_the_hub_fetch_is_recorded(study):
    work, _, _ = study
    rec = json.loads((work / OUT / "evaluate" / "hubpub" / "fetched.json").read_text())
    assert rec["repo"] == REPO and rec["revision"] == "main" and rec["commit"] == COMMIT
    files = work / OUT / "evaluate" / "hubpub" / "files"
    shown = [f for f in files.iterdir() if not f.name.startswith(".")]  # not Snakemake's marker
    assert rec["sha256"] == {f.name: io.sha256_file(f) for f in shown}
    model = work / OUT / "runs" / "hubpub" / "evaluated" / "model"
    assert json.loads((model / "vaebench.json").read_text())["evaluated"]["fetched"] == rec


def test_a_trusted_pythae_folder_scores_as_its_run(study):
    work, _, _ = study
    for table in ("reconstruction", "generation_gmm", "roundtrip_gmm"):
        _assert_same_numbers(_metrics(work, "vqvae/seed~0", table),
                             _metrics(work, "own_vq/evaluated", table))  # fmt: skip


def test_a_samples_entry_gives_the_runs_generation_metrics(study):
    work, _, _ = study
    for kind in ("generation", *SPACES):
        own = _metrics(work, "vae/seed~0", f"{kind}_gmm")
        given = _metrics(work, "vae_samples/evaluated", f"{kind}_supplied")
        _assert_same_numbers(own, given)


def test_the_feature_space_files_of_the_real_jobs(study):
    """Each space's Parquet: one row, its space, every set metric finite, CMMD on CLIP only,
    the stand-in weights and the protocol in its metadata."""
    from vaebench.io import read_parquet_metadata

    work, _, _ = study
    for space in SPACES:
        path = work / OUT / "metrics" / "vae" / "seed~0" / f"{space}_gmm.parquet"
        df = pd.read_parquet(path)
        assert len(df) == 1 and df["space"].iloc[0] == space
        sets = ["fd", "fd_inf", "kd_mean", "precision", "recall", "density", "coverage"]
        assert np.isfinite(df[sets].to_numpy()).all()
        assert np.isfinite(df["cmmd"].iloc[0]) == (space == "clip_vitl14_336")
        meta = read_parquet_metadata(path)
        assert meta["weights_official"] is False and meta["config"]["space"] == space
        assert meta["generation"]["dc_k"] == 5 and "protocol" not in meta["generation"]


def test_the_feature_space_table_repeats_inception_and_adds_each_space(study):
    """Its Inception rows are the generation table's FID, FID∞, KID, precision, recall,
    density and coverage, under the names all spaces share; every space has every row."""
    work, _, _ = study
    tables = work / OUT / "tables"
    spaces_t = pd.read_parquet(tables / "feature_spaces.parquet")
    gen = pd.read_parquet(tables / "generation.parquet")
    assert list(dict.fromkeys(spaces_t["space"])) == ["Inception-v3", "DINOv2 ViT-S/14",
                                                      "CLIP ViT-L/14@336"]  # fmt: skip
    inc = spaces_t[spaces_t["space"] == "Inception-v3"].reset_index(drop=True)
    same = {"fd": "fid", "fd_inf": "fid_inf", "kd_mean": "kid_mean", "precision": "precision",
            "recall": "recall", "density": "density", "coverage": "coverage"}  # fmt: skip
    for ours, theirs in same.items():
        assert np.array_equal(inc[ours].to_numpy(), gen[theirs].to_numpy(), equal_nan=True), ours
    for label in dict.fromkeys(spaces_t["space"]):
        rows = spaces_t[spaces_t["space"] == label]
        assert list(rows["label"]) == list(gen["label"]), label
        assert rows["cmmd"].notna().any() == (label == "CLIP ViT-L/14@336")
    md = (tables / "feature_spaces.md").read_text()
    assert "dgm-eval's DINOv2Encoder" in md and "CMMD: 1000 · MMD²" in md
    assert "n/a (stand-in weights)" in md  # every cell of it is learned


def test_the_tables_mark_evaluated_rows_and_say_why_cells_are_blank(study):
    work, _, _ = study
    tables = work / OUT / "tables"
    recon = pd.read_parquet(tables / "reconstruction.parquet")
    assert {"pub", "hubpub", "own_vq", "ciwae"} <= set(recon["label"])
    ciwae = recon[recon["label"] == "ciwae"].iloc[0]
    assert np.isnan(ciwae["kl"]) and np.isfinite(ciwae["mse"])
    gen = pd.read_parquet(tables / "generation.parquet")
    few = gen[gen["label"] == "few"].iloc[0]
    assert few["n_generated"] == 10 and few["sampler"] == outside.SUPPLIED
    assert set(gen.loc[gen["label"] == "ciwae", "sampler"]) == {"gmm"}
    md = (tables / "reconstruction.md").read_text()
    assert "Evaluated here, not trained here (config key evaluate)" in md
    assert "KL is blank for ciwae: its Pythae class is not in vaebench's family registry" in md
    gmd = (tables / "generation.md").read_text()
    assert "10 images, fewer than sampling.n_samples = 16" in gmd
    assert "a set of samples with no model" in gmd


def test_adding_entries_plans_only_their_jobs_and_a_rerun_none(study):
    work, cfg, before = study
    ours = ("/evaluated/", "/evaluate/", "/tables/", "/figures/")
    assert before and all(any(p in f for p in ours) for f in before), sorted(before)
    assert not any("/history.parquet" in f for f in before)
    assert pending(work, cfg, env=_env(work / "home")) == set()
    moved = {**cfg, "evaluate": [
        {**e, "samples": str(work / OUT / "runs" / "vae" / "seed~0" / "samples_normal.npy")}
        if e["name"] == "vae_samples" else e for e in cfg["evaluate"]]}  # fmt: skip
    stale = pending(work, moved, env=_env(work / "home"))
    assert stale and all("vae_samples/" in f or "/tables/" in f or "/figures/" in f
                         for f in stale), sorted(stale)  # fmt: skip
    pinned = {**cfg, "evaluate": [{**e, "revision": COMMIT} if e["name"] == "hubpub" else e
                                   for e in cfg["evaluate"]]}  # fmt: skip
    stale = pending(work, pinned, env=_env(work / "home"))
    assert stale and all("hubpub/" in f or "/tables/" in f or "/figures/" in f
                         for f in stale), sorted(stale)  # fmt: skip


# --- bad entries: one line naming the entry, before anything runs -------------------------


def _entries(tmp_path: Path, *entries: dict) -> list:
    return outside.entries({**TINY, "dataset": {**TINY["dataset"], "image_size": 64},
                            "evaluate": list(entries)})  # fmt: skip


def _folder(tmp_path: Path, shape=(3, 64, 64), pickled: bool = False) -> Path:
    d = tmp_path / "model"
    d.mkdir()
    (d / "model_config.json").write_text(json.dumps({"name": "VAEConfig",
                                                     "input_dim": list(shape)}))  # fmt: skip
    (d / "model.pt").write_bytes(b"")
    if pickled:  # unpickling it would create the file `unpickled`
        marker = tmp_path / "unpickled"
        (d / "encoder.pkl").write_bytes(pickle.dumps(_Marker(str(marker))))
    return d


class _Marker:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_a_pickled_folder_is_refused_unless_trusted_before_any_byte_is_unpickled(tmp_path):
    d = _folder(tmp_path, pickled=True)
    with pytest.raises(VaebenchError, match=r"evaluate entry 'mine'.*pickled code \(encoder.pkl\)"
                       r".*trust_pickled_code: true"):  # fmt: skip
        _entries(tmp_path, {"name": "mine", "pythae": str(d)})
    assert not (tmp_path / "unpickled").exists()
    (e,) = _entries(tmp_path, {"name": "mine", "pythae": str(d), "trust_pickled_code": True})
    assert e.family_key == "vae" and e.beta == 1.0 and not (tmp_path / "unpickled").exists()


def test_a_model_of_another_size_is_refused_with_both_shapes(tmp_path):
    d = _folder(tmp_path, shape=(3, 32, 32))
    with pytest.raises(VaebenchError, match=r"'small'.*\(3, 32, 32\).*\(3, 64, 64\)"):
        _entries(tmp_path, {"name": "small", "pythae": str(d)})


@pytest.mark.parametrize("name", ["vae", "VQ-VAE"])
def test_a_name_may_not_clash_with_a_family(tmp_path, name):
    d = _folder(tmp_path)
    with pytest.raises(VaebenchError, match="clashes with the model family"):
        _entries(tmp_path, {"name": name, "pythae": str(d)})


def test_an_entry_needs_exactly_one_source(tmp_path):
    with pytest.raises(VaebenchError, match="exactly one of pythae, hub, samples"):
        _entries(tmp_path, {"name": "x", "pythae": "a", "samples": "b"})


def test_samples_of_another_size_fail_in_one_line_with_no_output(tmp_path):
    arr = np.zeros((20, 3, 32, 32), np.uint8)
    np.save(tmp_path / "s.npy", arr)
    with pytest.raises(VaebenchError, match=r"'s'.*uint8 \(20, 3, 32, 32\).*\(N, 3, 64, 64\)"):
        _entries(tmp_path, {"name": "s", "samples": str(tmp_path / "s.npy")})
    from PIL import Image

    (tmp_path / "imgs").mkdir()
    for i in range(3):
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "imgs" / f"{i}.png")
    (e,) = _entries(tmp_path, {"name": "s", "samples": str(tmp_path / "imgs")})
    assert e.n_images == 3
    out = tmp_path / "out.npy"
    files = [str(p) for p in outside.image_files(tmp_path / "imgs")]
    with pytest.raises(VaebenchError, match=r"'s'.*0.png is 32x32 px.*64x64"):
        outside.import_samples({"name": "s", "n": 3}, files, 64, str(out))
    assert not out.exists() and not list(tmp_path.glob("out*"))


def test_a_hub_repo_missing_offline_fails_in_one_line(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    out = tmp_path / "files"
    with pytest.raises(VaebenchError, match=r"evaluate entry 'h' \(a/b\): revision 'main' is "
                       "not in the local Hugging Face cache"):  # fmt: skip
        outside.fetch("h", "a/b", "main", 64, False, str(out), str(tmp_path / "rec.json"))
    assert not out.exists() and not (tmp_path / "rec.json").exists()


def test_snakemake_stops_on_a_bad_entry_in_one_line_before_any_job(tmp_path):
    """Through the real workflow: the refusal is Snakemake's last line, nothing is written,
    and no byte of the pickle was read."""
    d = _folder(tmp_path, pickled=True)
    cfg = {**TINY, "evaluate": [{"name": "mine", "pythae": str(d)}]}
    work = tmp_path / "work"
    work.mkdir()
    out = smk(work, cfg, "-n", check=False)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("vaebench: config: evaluate entry 'mine'") and "pickled code" in last
    assert not (work / OUT).exists() and not (tmp_path / "unpickled").exists()
