"""Models on the Hugging Face Hub: the one module that speaks to huggingface_hub.

The publish job (a local rule: it runs where snakemake runs, which has the network) writes
results/<study>/publish/<run>/, a folder ready for the Hub:

    model.safetensors, vaebench.json                 the weights and the train job's record: load
                                                     with vaebench.safe_weights.load, no pickles
    model.pt, model_config.json, environment.json,  Pythae's model files: load with
    encoder.pkl, decoder.pkl [, discriminator.pkl]   pythae.models.AutoModel.load_from_folder
    README.md                                        the model card (YAML metadata + text)
    training_config.json                             the run's training params (the train job's)
    metrics.json                                     the headline metrics, each with its N
    provenance.json                                  training, reconstruction, sampling and
                                                     metric records; sha256 of every file here
    history.parquet, recon_grid.png, samples_<s>.png learning curve data and the grids

The safetensors route rebuilds the networks from vaebench's and Pythae's code, so it
unpickles nothing (a test loads a publication with pickle loading blocked). Pythae pickles
the networks by value (cloudpickle registers their module for it), so the folder also loads
with Pythae and torch alone, whether its nets are vaebench's `small` preset
(vaebench.nets) or Pythae's celeba64 benchmark classes; a test loads one with vaebench
blocked. With publish.push the folder is
uploaded to publish.hf_repo with the user's token; the token is checked before anything is
built or sent.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from vaebench import VaebenchError, families, io, safe_weights
from vaebench.metrics import registry

PYTHAE_FILES = ("model.pt", "model_config.json", "environment.json")
NETWORKS = ("encoder.pkl", "decoder.pkl", "discriminator.pkl")
TOKEN_HELP = "set HF_TOKEN or run `hf auth login` (formerly `huggingface-cli login`)"
# How the card names metrics: (model-index type, display name), from the metric registry.
CARD_METRICS = {
    m.key: ("kid" if m.key == "kid_mean" else m.key, registry.card_name(m.key))
    for m in registry.REGISTRY
    if m.key != "fid_inf_residual"
}
def _tags(model: str) -> list[str]:
    """The family's model-card tags (vaebench.families)."""
    fam = families.BY_KEY.get(model)
    return list(fam.tags) if fam else []


def _run_slug(run_id: str) -> str:
    return run_id.replace("/", "-").replace("~", "")


# --- the push: token first, never a request before it ---------------------------------------


def check_push(params: dict[str, Any]) -> str:
    """The repository id to push to; raises one line when pushing cannot work here. Reads
    only the environment and the local token file: no network."""
    from huggingface_hub import get_token, is_offline_mode
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    repo = params["hf_repo"]
    if not repo:
        raise VaebenchError(
            "publish: publish.push is true but publish.hf_repo is not set; set it to a "
            "pattern such as user/vaebench-{model}-beta{beta}-seed{seed}"
        )
    try:
        validate_repo_id(repo)
    except HFValidationError as err:
        raise VaebenchError(
            f"publish: publish.hf_repo gives {repo!r} for {params['run']['run']}, not a valid "
            f"Hub repository id: {str(err).splitlines()[0]}"
        ) from None
    if not get_token():
        raise VaebenchError(
            f"publish: no Hugging Face token to push {repo}: {TOKEN_HELP}, then rerun "
            "(nothing was uploaded)"
        )
    if is_offline_mode():
        raise VaebenchError(
            f"publish: HF_HUB_OFFLINE is set, so {repo} cannot be pushed: unset it on a machine "
            "with network, or set publish.push: false (nothing was uploaded)"
        )
    return repo


def push(folder: str, repo: str, private: bool, run_id: str) -> str:
    """Create the repository when missing and upload the folder as one commit; its URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        api.create_repo(repo, repo_type="model", private=private, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo,
            folder_path=folder,
            repo_type="model",
            commit_message=f"vaebench: {run_id}",
            ignore_patterns=[".*"],  # e.g. Snakemake's .snakemake_timestamp
        )
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise VaebenchError(
            f"publish: upload of {run_id} to {repo} failed: {first} (check the token's write "
            f"access: {TOKEN_HELP})"
        ) from None
    return str(getattr(info, "commit_url", info))


# --- the card -------------------------------------------------------------------------------


def _dataset_text(d: dict[str, Any]) -> str:
    name = {"celeba": "CelebA (aligned)", "shapes": "vaebench's built-in shapes",
            "folder": "an image folder"}.get(d["name"], d["name"])  # fmt: skip
    size = d.get("image_size", 64)
    crop = f", centre crop {d['crop']}" if d.get("crop") else ""
    return f"{name}, {size}x{size}{crop}"


def eval_results(params: dict[str, Any], summary: dict[str, Any]):
    """model-index entries: reconstruction metrics (mean over N test images) and each
    sampler's set-level generation metrics (N generated against N reference images)."""
    from huggingface_hub import EvalResult

    d = params["dataset"]
    n = summary["n_images"]
    common = dict(dataset_type=d["name"], dataset_split="test")
    out = []
    for m, v in summary["reconstruction"].items():
        mtype, mname = CARD_METRICS[m]
        out.append(
            EvalResult(
                task_type="image-to-image",
                task_name="Reconstruction",
                dataset_name=f"{_dataset_text(d)}: test split, {n} images",
                metric_type=mtype,
                metric_name=mname,
                metric_value=v["mean"],
                metric_args={"n_images": v["n"], "statistic": "mean over test images"},
                **common,
            )
        )
    for sampler, g in summary["generation"].items():
        for m, value in g["metrics"].items():
            mtype, mname = CARD_METRICS[m]
            out.append(
                EvalResult(
                    task_type="unconditional-image-generation",
                    task_name=f"Generation ({sampler} sampler)",
                    dataset_name=f"{_dataset_text(d)}: test split, {g['n_reference']} images",
                    metric_type=mtype,
                    metric_name=mname,
                    metric_value=value,
                    metric_config=sampler,
                    metric_args={"sampler": sampler, "n_generated": g["n_generated"],
                                 "n_reference": g["n_reference"]},  # fmt: skip
                    **common,
                )
            )
    return out


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def card_text(params: dict[str, Any], summary: dict[str, Any], trained: dict[str, Any],
              samplers: list[str]) -> str:  # fmt: skip
    """The model card: YAML metadata (ModelCardData) and the text people read."""
    from huggingface_hub import ModelCard, ModelCardData

    info, d = params["run"], params["dataset"]
    run_id, repo = info["run"], params["hf_repo"] or f"<user>/vaebench-{_run_slug(info['run'])}"
    beta = "" if info["beta"] is None else f", β = {float(info['beta']):g}"
    versions = trained.get("versions", {})
    data = ModelCardData(
        library_name="pythae",
        license=params.get("license"),
        tags=["vaebench", "pythae", *_tags(info["model"]), "image-generation",
              f"dataset:{d['name']}"],  # fmt: skip
        datasets=[d["name"]],
        pipeline_tag="unconditional-image-generation",
        model_name=f"vaebench-{_run_slug(run_id)}",
        eval_results=eval_results(params, summary) or None,
    )
    rec = summary["reconstruction"]
    rows = [f"| {CARD_METRICS[m][1]} | {_fmt(v['mean'])} | {v['n']} test images |"
            for m, v in rec.items()]  # fmt: skip
    for s, g in summary["generation"].items():
        rows += [f"| {CARD_METRICS[m][1]}, {s} sampler | {_fmt(v)} | {g['n_generated']} "
                 f"generated vs {g['n_reference']} test images |"
                 for m, v in g["metrics"].items()]  # fmt: skip
    weights_note = "" if summary["weights_official"] else (
        "\n> **Stand-in metric weights.** This run was scored with randomly initialised "
        "LPIPS/DISTS/Inception weights (`weights.allow_random`, as the offline demo does), so "
        f"{registry.LEARNED_TEXT} are meaningless and are left out of this card.\n"
    )  # fmt: skip
    install = [f"torch=={versions.get('torch', '2.14.1')}",
               f"pythae=={versions.get('pythae', '0.1.2')}"]  # fmt: skip
    py = versions.get("python", "")
    needs = (
        "Pythae also saves the networks (encoder, decoder and, for VAE-GAN, discriminator) "
        "pickled by value (cloudpickle), so Pythae and torch alone can load them (vaebench "
        "need not be installed), but unpickling runs whatever code the files hold: load them "
        f"only from a repository you trust, with Python {py}, the version that wrote them."
    )
    train = trained.get("config", {})
    t, net = train.get("training", {}), train.get("network", {})
    made_model = (f"`{info['model']}`{beta}, seed {info['seed']}, latent dim "
                  f"{net.get('latent_dim')}, network preset `{net.get('preset')}`")
    made_training = (f"{t.get('epochs')} epochs, batch size {t.get('batch_size')}, learning "
                     f"rate {t.get('learning_rate')}, kept epoch: `{t.get('checkpoint')}`")
    grids = "\n".join(f"![samples, {s} sampler](samples_{s}.png)" for s in samplers)
    body = f"""
# {info['family']}{beta}, seed {info['seed']} (vaebench)

A {info['family']} trained by [vaebench](#how-it-was-made), a reproducible benchmark of
VAE-family models with perceptual metrics, with Pythae 0.1.2. Run `{run_id}` of the study
`{params['study']}`, on {_dataset_text(d)} ({d.get('n_train')} training,
{d.get('n_val')} validation and {d.get('n_test')} test images).
{weights_note}
## Load it

Without unpickling anything: `model.safetensors` holds the weights and `vaebench.json` the
run's settings, from which vaebench rebuilds the networks from its own and Pythae's code
(`vaebench.safe_weights.load`, with vaebench installed):

```python
from huggingface_hub import snapshot_download
from vaebench import safe_weights

model = safe_weights.load(snapshot_download("{repo}"))  # in eval mode
```

With Pythae alone (the pickle way). {needs}

```sh
pip install {' '.join(install)}
```

```python
from pythae.models import AutoModel

# allow_pickle=True runs the pickles' code: only for repositories you trust
model = AutoModel.load_from_hf_hub("{repo}", allow_pickle=True).eval()
```

Pythae returns the model in train mode: call `.eval()` (BatchNorm changes the output
otherwise). Images are 3x{d.get('image_size', 64)}x{d.get('image_size', 64)} floats in [0, 1].
Pythae's `reconstruct()` samples z; vaebench's metrics use the deterministic reconstruction
(the decoder of the posterior mean; VQ-VAE: of the quantised code), as
`vaebench.models.reconstruct(model, images, elbo_samples=1, seed=0)`.

## Metrics

Means over images (per-image metrics) or set-level values, with their N. FID is biased
(about c/N): compare FID only at equal N.

| metric | value | N |
|---|---:|---|
{chr(10).join(rows)}

{"![reconstructions: test images (top), reconstructions (bottom)](recon_grid.png)"}
{grids}

## How it was made

- model: {made_model}
- training: {made_training} (`training_config.json` holds every setting)
- versions: {', '.join(f'{k} {v}' for k, v in sorted(versions.items()))}
- `provenance.json`: the training, reconstruction, sampling and metric records (config
  slices, versions, commit, device) and the sha256 of every file in this folder;
  `metrics.json`: the numbers above, machine-readable; `history.parquet`: one row per epoch.
"""
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n{body}"))


# --- the job --------------------------------------------------------------------------------


def publish(
    params: dict,
    model: str,
    history: str,
    reconstruction: str,
    generation: list[str],
    recon_grid: str,
    sample_grids: list[str],
    recon_meta: str,
    samples_meta: list[str],
    out: str,
    threads: int = 1,
) -> None:
    """Write the Hub folder `out` for one run; with params['push'], upload it."""
    from vaebench import tracking

    repo = check_push(params) if params["push"] else None  # before anything is built
    samplers = params["samplers"]
    summary = tracking.run_summary(reconstruction, generation, None, samplers)
    summary.pop("roundtrip")  # not in the card
    trained = json.loads((Path(model) / "vaebench.json").read_text())
    with io.atomic_dir(out) as tmp:
        for name in (*PYTHAE_FILES, *NETWORKS, "vaebench.json"):
            if (Path(model) / name).exists():
                shutil.copy2(Path(model) / name, tmp / name)
        missing = [n for n in PYTHAE_FILES if not (tmp / n).exists()]
        if missing:
            raise VaebenchError(f"{model}: not a Pythae model folder (missing {missing[0]})")
        safe_weights.write(Path(model) / "model.pt", tmp / safe_weights.FILE)
        shutil.copy2(history, tmp / "history.parquet")
        shutil.copy2(recon_grid, tmp / "recon_grid.png")
        for s, grid in zip(samplers, sample_grids, strict=True):
            shutil.copy2(grid, tmp / f"samples_{s}.png")
        io.save_json(tmp / "training_config.json", trained.get("config", {}))
        io.save_json(tmp / "metrics.json", {"run": params["run"], **summary})
        card = card_text(params, summary, trained, samplers)
        (tmp / "README.md").write_text(card)
        records = {
            "training": trained,
            "reconstruction": json.loads(Path(recon_meta).read_text()),
            "samples": {s: json.loads(Path(p).read_text())
                        for s, p in zip(samplers, samples_meta, strict=True)},
            "metrics": {
                "reconstruction": io.read_parquet_metadata(reconstruction),
                "generation": {s: io.read_parquet_metadata(p)
                               for s, p in zip(samplers, generation, strict=True)},
            },
            "published": io.provenance({"publish": params}),
        }  # fmt: skip
        records["sha256"] = {p.name: io.sha256_file(p) for p in sorted(tmp.iterdir())}
        io.save_json(tmp / "provenance.json", records)
    print(f"wrote {out}")
    if repo is not None:
        url = push(out, repo, params["private"], params["run"]["run"])
        print(f"pushed {out} to {repo}: {url}")
