"""The config -> run table logic, and every rule's params (validation: vaebench.schema).

Snakemake parses this on every invocation, so it must stay light: no torch, no Pythae.
Every job gets only the slice of the config it uses, built here by `canonical` (plain types,
keys sorted at every depth), so that Snakemake's params trigger reruns exactly the jobs whose
settings changed: reordering keys or lists, or switching YAML between flow and block style,
reruns nothing.

One config file is one study: its `study` name (default: the config file's name) is the
folder `results/<study>/` that every output of the study goes under, so studies never touch
each other's files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaebench import VaebenchError, families, outside
from vaebench.metrics import spaces
from vaebench.outside import Evaluated
from vaebench.schema import validate  # noqa: F401  (the workflow validates through config)

# Families, their order and samplers: the registry (vaebench.families) is the one source.
FAMILY, MODEL_ORDER, SAMPLER_MODELS = families.FAMILY, families.MODEL_ORDER, families.SAMPLER_MODELS
SAMPLER_ORDER = families.SAMPLERS
TRAINED_PATTERN = families.run_pattern()
EVALUATED_PATTERN = families.evaluated_pattern()  # models of `evaluate:` (vaebench.outside)
RUN_PATTERN = f"(?:{TRAINED_PATTERN}|{EVALUATED_PATTERN})"
RESULTS = "results"
DEVICE_ENV = "VAEBENCH_DEVICE"  # compute.device, as every job reads it (vaebench.runtime)
TABLE_FORMATS = ("parquet", "csv", "md", "tex", "html")  # what vaebench.render writes

# What dataset.root must hold, per dataset (data.py's errors and the dry-run warning say it).
LAYOUT_HELP = {
    "celeba": (
        "expected under it: img_align_celeba/*.jpg with list_eval_partition.txt (official) or "
        "img_align_celeba/img_align_celeba/*.jpg with list_eval_partition.csv (Kaggle); get the "
        "aligned images and the partition file from the official CelebA page (MMLab, CUHK) or "
        "Kaggle's 'celeba-dataset' and set dataset.root to the folder holding them"
    ),
    "folder": (
        "set dataset.root to a folder of images (jpg, jpeg, png, bmp, webp; searched recursively)"
    ),
}


@dataclass(frozen=True)
class Run:
    """One trained model: a model family, its beta (the sweep's β for swept families, the fixed
    KL weight of the others, None where the family has none), a seed.

    `in_sweep`: this VAE run is also the β-VAE sweep's β = 1 point. Pythae's VAE and
    BetaVAE(β=1) are the same model (bitwise identical with one seed), so the study trains
    it once and shows it once, as "VAE (β = 1)" in its place in the sweep.
    """

    model: str
    beta: float | None
    seed: int
    in_sweep: bool = False

    @property
    def id(self) -> str:
        swept = families.BY_KEY[self.model].swept
        beta = f"/beta~{format_beta(self.beta)}" if swept else ""
        return f"{self.model}{beta}/seed~{self.seed}"

    @property
    def family(self) -> str:
        return FAMILY[self.model]

    @property
    def family_key(self) -> str:
        return self.model

    @property
    def label(self) -> str:
        if self.in_sweep:
            return f"{self.family} (β = 1)"
        swept = families.BY_KEY[self.model].swept
        return f"{self.family} β={format_beta(self.beta)}" if swept else self.family


def format_beta(beta: float) -> str:
    """Stable text for a beta: 4 and 4.0 give '4', 0.5 gives '0.5'."""
    return f"{float(beta):g}"


def runs(config: dict[str, Any]) -> list[Run]:
    """The run table: one Run per model x beta x seed, in a fixed, readable order.

    With both `vae` and `beta_vae` configured, the VAE run is the sweep's β = 1 point and no
    separate beta_vae/beta~1 run is trained (see Run.in_sweep).
    """
    out = []
    models = [m for m in MODEL_ORDER if m in config["models"]]
    merged = "vae" in models and "beta_vae" in models
    for model in models:
        fam = families.BY_KEY[model]
        if fam.swept:
            betas = sorted(float(b) for b in config["betas"] if not (merged and float(b) == 1))
        else:
            betas = [fam.kl_weight]
        for beta in betas:
            for seed in sorted(config["seeds"]):
                out.append(Run(model, beta, int(seed), in_sweep=merged and model == "vae"))
    # the VAE that is the sweep's β = 1 point sits in its place among the β-VAE runs
    group = {m: MODEL_ORDER.index("beta_vae" if m == "vae" and merged else m) for m in models}
    return sorted(out, key=lambda r: (group[r.model], r.beta or 0.0, r.seed))


def home_page(config: dict[str, Any]) -> dict[str, Any]:
    """What the report's home page (workflow/report/workflow.rst) says of the study's models,
    from the family registry and the run table, so that the page names no family itself."""
    in_study = [families.BY_KEY[m] for m in MODEL_ORDER if m in config["models"]]
    labels: dict[str, list[str]] = {f.label: [] for f in in_study}  # the registry's order
    for run in runs(config):
        betas = labels[run.family]
        if families.BY_KEY[run.model].swept and format_beta(run.beta) not in betas:
            betas.append(format_beta(run.beta))
    merged = "vae" in config["models"] and "beta_vae" in config["models"]
    return {
        "models": [f"{k} (β = {', '.join(sorted(v, key=float))})" if v else k
                   for k, v in labels.items()],  # fmt: skip
        "objective": [f.label for f in in_study if f.objective],
        "n_families": len(families.REGISTRY),
        "merged": f"{FAMILY['vae']} and {FAMILY['beta_vae']} at β = 1 are the same model: it is "
        f"trained once and shown as \"{FAMILY['vae']} (β = 1)\" in the β sweep." if merged else "",
    }


def run_by_id(config: dict[str, Any], run_id: str, evaluated: list[Evaluated] = ()) -> Run:
    """The trained run, or the `evaluate:` entry of `evaluated` (resolved once by the
    workflow: resolving reads the entries' folders), with this id."""
    for run in [*runs(config), *evaluated]:
        if run.id == run_id:
            return run
    raise VaebenchError(f"run {run_id!r} is not in the config's run table")


def samplers(config: dict[str, Any], run: Run | Evaluated) -> list[str]:
    """The samplers configured for this run's model family (an evaluated model of a class
    the registry lacks: the gmm sampler; a samples entry: none)."""
    if run.family_key is None:
        return []
    wanted = set(config["sampling"]["samplers"])
    fam = families.lookup(run.family_key)
    return [s for s in SAMPLER_ORDER if s in wanted and s in fam.samplers]


def run_info(run: Run | Evaluated) -> dict[str, Any]:
    """The identifying columns every per-run Parquet file carries."""
    if isinstance(run, Evaluated):
        return outside.info(run)
    return {"run": run.id, "model": run.model, "family": run.family, "beta": run.beta,
            "seed": run.seed}  # fmt: skip


def train_params(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """Everything a training job depends on, and nothing else: the family's hyperparameter
    section (when it has one), and the training keys its Pythae config and trainer read
    (no reconstruction_loss where the model fixes its loss, no learning_rate where the
    trainer has per-part learning rates in the family's section)."""
    fam = families.BY_KEY[run.model]
    training = dict(config["training"])
    if not fam.reconstruction_loss:
        training.pop("reconstruction_loss")
    if fam.trainer != "base":
        training.pop("learning_rate")
    params = {
        "run": run.id,
        "model": run.model,
        "beta": run.beta,
        "seed": run.seed,
        "network": config["network"],
        "training": training,
        "image_size": config["dataset"]["image_size"],
    }
    if run.model in config:
        params[run.model] = config[run.model]
    return canonical(params)


def import_params(config: dict[str, Any], entry: Evaluated) -> dict[str, Any]:
    """What an `evaluate:` entry's import job depends on (vaebench.outside)."""
    return canonical(outside.import_params(entry, config["sampling"]["n_samples"]))


def fetch_params(config: dict[str, Any], entry: Evaluated) -> dict[str, Any]:
    """What a hub entry's fetch_model job depends on: the repository, revision, and what it
    checks the fetched folder against."""
    return canonical({"name": entry.name, "repo": entry.source, "revision": entry.revision,
                      "size": config["dataset"]["image_size"],
                      "trust": entry.trust_pickled_code})  # fmt: skip


def evaluated_records(config: dict[str, Any], entries: list[Evaluated]) -> list[dict[str, Any]]:
    """What the tables say of each `evaluate:` entry (its footnote and blank cells)."""
    n = config["sampling"]["n_samples"]
    return canonical([
        {"name": e.name, "what": outside.WHAT[e.kind], "source": e.source,
         "family_key": e.family_key, "family": e.family, "n_samples": n,
         "n_used": min(n, e.n_images) if e.n_images is not None else None}
        for e in entries
    ])  # fmt: skip


def sampler_params(config: dict[str, Any], run: Run, sampler: str) -> dict[str, Any]:
    params = {
        "run": run.id,
        "sampler": sampler,
        "seed": run.seed,
        "n_samples": config["sampling"]["n_samples"],
    }
    if sampler in config["sampling"]:
        params[sampler] = config["sampling"][sampler]
    return canonical(params)


def _dataset(config: dict[str, Any]) -> dict[str, Any]:
    """The dataset section, and for shapes the generator's factor ranges: they define the
    images as much as the config does, so a new range redraws the data and reruns the rest."""
    dataset = dict(config["dataset"])
    if dataset["name"] == "shapes":
        from vaebench.sources import SHAPE_FACTORS  # sources imports this module

        dataset["shapes_factors"] = SHAPE_FACTORS
    return dataset


def data_params(config: dict[str, Any]) -> dict[str, Any]:
    """What prepare_data depends on: the dataset section (with its schema defaults) but the
    reference set's size, which has its own job (prepare_reference)."""
    return canonical({k: v for k, v in _dataset(config).items() if k != "n_reference"})


def reference_params(config: dict[str, Any]) -> dict[str, Any]:
    """What prepare_reference depends on: the whole dataset section (where the reference
    images start depends on the other splits' sizes)."""
    return canonical(_dataset(config))


def _optional_metrics(m: dict[str, Any]) -> dict[str, Any]:
    """Metric switches added after studies existed (metrics.lpips_vgg), in a job's params only
    when on: off, the params are what they were before the switch existed, so a study made
    then stays up to date."""
    return {"lpips_vgg": True} if m["lpips_vgg"] else {}


def recon_metric_params(config: dict[str, Any]) -> dict[str, Any]:
    m = config["metrics"]
    return canonical({"batch_size": m["batch_size"], "dists": m["dists"], "ms_ssim": m["ms_ssim"],
                      **_optional_metrics(m)})  # fmt: skip


def generation_metric_params(config: dict[str, Any]) -> dict[str, Any]:
    m = config["metrics"]
    keys = ("batch_size", "dc_k", "dists", "elbo_samples", "kid", "ms_ssim", "pr_k")
    return canonical({**{k: m[k] for k in keys}, **_optional_metrics(m)})


def vgg16_needed(config: dict[str, Any]) -> bool:
    """Whether the study stages VGG16: DISTS's trunk and LPIPS-VGG's."""
    return bool(config["metrics"]["dists"] or config["metrics"]["lpips_vgg"])


# the feature spaces with jobs of their own (vaebench.jobs_spaces): all but Inception
SPACE_PATTERN = "|".join(k for k in spaces.KEYS if k != spaces.INCEPTION)


def extra_spaces(config: dict[str, Any]) -> list[str]:
    """The configured feature spaces other than Inception, in registry order: each has its own
    staging, reference-features and metric jobs (vaebench.jobs_spaces); Inception's are the
    generation_metrics jobs. Registry order, so that reordering the config list reruns nothing."""
    chosen = set(config["metrics"]["feature_spaces"])
    return [k for k in spaces.KEYS if k in chosen and k != spaces.INCEPTION]


def space_metric_params(config: dict[str, Any]) -> dict[str, Any]:
    m = config["metrics"]
    return canonical({k: m[k] for k in ("batch_size", "dc_k", "kid", "pr_k")})


def figure_files(
    config: dict[str, Any], runs: list[Run], samplers_used: list[str],
    evaluated: list[Evaluated] = (),
) -> dict[str, Any]:
    """What the figures job reads. Rows are [label, file] pairs in run order (a dict would
    have to be key-sorted, which would reorder the figures' rows); one seed per row: the
    first; then the evaluated models of `evaluate:`, which have no training history."""
    base = study_dir(config)
    first = [r for r in runs if r.seed == min(config["seeds"])] + list(evaluated)
    return canonical(
        {
            "test": f"{base}/data/test.npy",
            "recons": [[r.label, f"{base}/runs/{r.id}/recon.npy"] for r in first],
            "samples": [
                [s, [[r.label, f"{base}/runs/{r.id}/samples_{s}.npy"]
                     for r in first if s in samplers(config, r)]]
                for s in samplers_used
            ],  # fmt: skip
            "histories": [[r.id, f"{base}/runs/{r.id}/history.parquet"] for r in runs],
            "recon_table": f"{base}/tables/reconstruction.parquet",
            "agreement_table": f"{base}/tables/metric_agreement.parquet",
        }
    )


def figure_inputs(files: dict[str, Any]) -> dict[str, Any]:
    """The figure job's input files (named for unpack()), from figure_files()."""
    return {
        "test": files["test"],
        "recons": [path for _, path in files["recons"]],
        "samples": [path for _, rows in files["samples"] for _, path in rows],
        "histories": [path for _, path in files["histories"]],
        "recon_table": files["recon_table"],
        "agreement_table": files["agreement_table"],
    }


def canonical(obj: Any) -> Any:
    """Plain JSON types with keys sorted at every depth: the one way every rule's params are
    built, so that they compare equal however the config file orders or styles its keys.
    Numpy scalars become Python numbers (they compare unequal to their JSON round trip)."""
    if isinstance(obj, dict):
        return {str(k): canonical(obj[k]) for k in sorted(obj, key=str)}
    if isinstance(obj, list | tuple):
        return [canonical(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return obj.item()
    return obj


def study_dir(config: dict[str, Any]) -> str:
    """The study's results folder: every output of this config goes under it."""
    return f"{RESULTS}/{config['study']}"


def divergence_marker(config: dict[str, Any], run: Run) -> str:
    """Where the train job records that this run diverged (read by diverged_runs)."""
    return f"{study_dir(config)}/runs/{run.id}/diverged.json"


def diverged_runs(config: dict[str, Any], runs: list[Run]) -> dict[str, dict[str, Any]]:
    """Runs whose training diverged under their current settings: run id -> table record.

    The train job writes the marker when it stops on a NaN or infinite loss. Training is
    deterministic, so such a run would only diverge again: it leaves the DAG, and the tables
    show 'diverged' in its place. A marker written under other training settings is stale and
    ignored (the run trains again); delete it to retry under the same settings.
    """
    out = {}
    for run in runs:
        path = Path(divergence_marker(config, run))
        if not path.exists():
            continue
        record = json.loads(path.read_text())
        if json.dumps(record.get("params"), sort_keys=True) == json.dumps(
            train_params(config, run), sort_keys=True
        ):
            out[run.id] = {**run_info(run), "samplers": samplers(config, run)}
    return out


# --- tracking and sharing: vaebench.config_share, re-exported (the workflow reads vb.*) ---
from vaebench.config_share import (  # noqa: E402, F401
    compare_outputs,
    hub_repo_id,
    publish_inputs,
    publish_outputs,
    publish_params,
    track_inputs,
    track_outputs,
    tracking_enabled,
    tracking_params,
)
