# Config -> run table and input functions. All logic lives in vaebench.config (no torch here).
import os
import sys

from vaebench import VaebenchError

try:  # importing config imports the family registry and its VAEBENCH_FAMILIES extensions
    from vaebench import config as vb
    from vaebench import terminal

    config.update(vb.validate(config, "config", workflow.overwrite_configfiles))
except VaebenchError as err:
    sys.exit(f"vaebench: {err}")

print(*terminal.banner(config, workflow.configfiles), sep="\n", file=sys.stderr)
for warning in (
    terminal.dataset_warning(config),
    terminal.weights_warning(config),
    terminal.kid_warning(config),
):
    if warning:
        print(warning, file=sys.stderr)

# Where torch runs (compute.device): every job reads it from its environment, so changing it
# reruns nothing; provenance records it. Each job's Snakemake (local or on a SLURM node) sets it.
os.environ[vb.DEVICE_ENV] = config["compute"]["device"]

ALL_RUNS = vb.runs(config)
# Runs whose training diverged under the current settings leave the DAG; the tables mark them.
DIVERGED = vb.diverged_runs(config, ALL_RUNS)
RUNS = [r for r in ALL_RUNS if r.id not in DIVERGED]
# `evaluate:` entries (vaebench.outside), checked now: models vaebench did not train, each a
# run <name>/evaluated from its import on, and sets of samples (set-level metrics only)
try:
    EVALUATED = vb.outside.entries(config)
except VaebenchError as err:
    sys.exit(f"vaebench: {err}")
EVALUATED_BY_NAME = {e.name: e for e in EVALUATED}
OUTSIDE_MODELS = [e for e in EVALUATED if e.kind != "samples"]
SUPPLIED = [e for e in EVALUATED if e.kind == "samples"]
# every run with a model to reconstruct and sample from: trained, then evaluated
MODEL_RUNS = RUNS + OUTSIDE_MODELS
# the feature spaces beyond Inception, each with its own jobs (spaces.smk)
SPACES = vb.extra_spaces(config)
SPACE_PATTERN = vb.SPACE_PATTERN
# the samplers of set-level metrics: every model sampler, and an `evaluate:` samples entry's
SET_SAMPLER_PATTERN = "|".join([*vb.SAMPLER_ORDER, vb.outside.SUPPLIED])
# Every output of this study goes under results/<study>/.
STUDY = vb.study_dir(config)
DATA = f"{STUDY}/data"
WEIGHTS = config["weights"]["cache"]
# GPU slots of every job that can use a GPU (each then runs on a card of its own)
GPUS = config["compute"]["gpus"]
# what the report's home page (workflow/report/workflow.rst) says of the study's models
REPORT_HOME = vb.home_page(config)


wildcard_constraints:
    run=vb.RUN_PATTERN,
    sampler="|".join(vb.SAMPLER_ORDER),


def resolved(run):
    """A run, or an evaluated hub entry with the family of what fetch_model fetched (until
    then, Snakemake's checkpoint defers whatever asks)."""
    if getattr(run, "kind", None) != "hub":
        return run
    files = checkpoints.fetch_model.get(name=run.name).output.files
    return vb.outside.resolve(run, files, config["dataset"]["image_size"])


def run_of(wildcards):
    return resolved(vb.run_by_id(config, wildcards.run, EVALUATED))


def import_inputs(wildcards):
    run = run_of(wildcards)
    out = {"files": vb.outside.source_files(run, STUDY)}
    if run.kind == "hub":
        out["record"] = vb.outside.fetched(STUDY, run.name)["record"]
    return out


def import_params(wildcards):
    return vb.import_params(config, run_of(wildcards))


def train_params(wildcards):
    return vb.train_params(config, run_of(wildcards))


def sampler_params(wildcards):
    return vb.sampler_params(config, run_of(wildcards), wildcards.sampler)


def divergence_marker(wildcards):
    return vb.divergence_marker(config, run_of(wildcards))


def run_info(wildcards):
    return vb.run_info(run_of(wildcards))


def recon_metric_params(wildcards):
    return vb.recon_metric_params(config)


def generation_metric_params(wildcards):
    return vb.generation_metric_params(config)


def space_metric_params(wildcards):
    return vb.space_metric_params(config)


# (hub entries are fetched after parsing: their samplers' grids show if another run uses them)
SAMPLERS_USED = [
    s
    for s in vb.SAMPLER_ORDER
    if any(
        s in vb.samplers(config, r)
        for r in MODEL_RUNS
        if r.family_key != vb.outside.PENDING
    )
]


def metric_files(kind):
    """Every run's reconstruction / generation_<sampler> / roundtrip_<sampler> Parquet
    (trained, then evaluated runs; the samples entries' generation_supplied), or with kind
    "spaces" every <space>_<sampler> Parquet of the feature spaces beyond Inception."""
    if kind == "reconstruction":
        return [f"{STUDY}/metrics/{r.id}/reconstruction.parquet" for r in MODEL_RUNS]
    if kind == "spaces":
        return [
            f"{STUDY}/metrics/{r.id}/{space}_{s}.parquet"
            for r in map(resolved, MODEL_RUNS)
            for s in vb.samplers(config, r)
            for space in SPACES
        ] + [
            f"{STUDY}/metrics/{e.id}/{space}_{vb.outside.SUPPLIED}.parquet"
            for e in SUPPLIED
            for space in SPACES
        ]
    files = [
        f"{STUDY}/metrics/{r.id}/{kind}_{s}.parquet"
        for r in map(resolved, MODEL_RUNS)
        for s in vb.samplers(config, r)
    ]
    if kind == "generation":
        files += [
            f"{STUDY}/metrics/{e.id}/generation_{vb.outside.SUPPLIED}.parquet"
            for e in SUPPLIED
        ]
    return files


def figure_files():
    """What the figures job reads, as canonical params (see vaebench.config.figure_files)."""
    evaluated = [resolved(e) for e in OUTSIDE_MODELS]
    return vb.figure_files(config, RUNS, SAMPLERS_USED, evaluated)


def figure_inputs(wildcards):
    return vb.figure_inputs(figure_files())


def run_outputs(run):
    """What one run produces: model, history, reconstructions and samples (+ grids)."""
    base = f"{STUDY}/runs/{run.id}"
    out = [f"{base}/model", f"{base}/recon.npy", f"{base}/recon_grid.png"]
    if run in RUNS:  # trained here (an evaluated model has no training history)
        out.append(f"{base}/history.parquet")
    for s in vb.samplers(config, run):
        out += [f"{base}/samples_{s}.npy", f"{base}/samples_{s}.png"]
    return out


def metric_outputs(run):
    base = f"{STUDY}/metrics/{run.id}"
    out = [f"{base}/reconstruction.parquet"]
    for s in vb.samplers(config, run):
        out += [f"{base}/generation_{s}.parquet", f"{base}/roundtrip_{s}.parquet"]
        out += [f"{base}/{space}_{s}.parquet" for space in SPACES]
    return out


def all_outputs():
    out = []
    for run in map(resolved, MODEL_RUNS):
        out += run_outputs(run) + metric_outputs(run)
    out += [
        f"{STUDY}/metrics/{e.id}/{kind}_{vb.outside.SUPPLIED}.parquet"
        for e in SUPPLIED
        for kind in ["generation", *SPACES]
    ]
    out += vb.track_outputs(config, RUNS)  # share.smk: tracking records, when on
    out += vb.publish_outputs(config, RUNS)  # share.smk: Hub folders, when on
    out += vb.compare_outputs(config)  # report.smk: published numbers, when given
    return out + TABLES + FIGURES


# --- aggregate outputs: tables and figures ----------------------------------------------
TABLE_NAMES = [
    "reconstruction",
    "generation",
    "feature_spaces",
    "metric_agreement",
    "paired_comparisons",
]
TABLE_EXTS = list(vb.TABLE_FORMATS)
TABLES = expand(
    f"{STUDY}/tables/{{name}}.{{ext}}",
    name=TABLE_NAMES,
    ext=TABLE_EXTS,
)
FIGURE_NAMES = [
    "reconstruction_grid",
    *[f"samples_{s}" for s in SAMPLERS_USED],
    "metric_vs_beta",
    "rate_distortion",
    "learning_curves",
    "agreement_heatmap",
]
FIGURES = expand(
    f"{STUDY}/figures/{{name}}.{{ext}}", name=FIGURE_NAMES, ext=["png", "pdf"]
)


def _caption(name):
    stem = "sample_grid" if name.startswith("samples_") else name
    return (
        f"../report/{stem}_table.rst"
        if name in ("reconstruction", "generation")
        else f"../report/{stem}.rst"
    )


# Tables and figures as named outputs; `snakemake --report` shows each table's .html (the
# rendered table with its notes, in an iframe) and each figure's .png. The study's headline
# table is also embedded in the report's home page (workflow/report/workflow.rst).
def _output(kind, name, ext, shown):
    path = f"{STUDY}/{kind}/{name}.{ext}"
    if ext != shown:
        return path
    return report(path, caption=_caption(name), category=kind.capitalize())


TABLE_OUTPUTS = {
    f"{name}_{ext}": _output("tables", name, ext, "html")
    for name in TABLE_NAMES
    for ext in TABLE_EXTS
}
# the findings the tables support, in sentences (vaebench.findings), by the tables job
TABLE_OUTPUTS["findings_md"] = f"{STUDY}/tables/findings.md"
TABLE_OUTPUTS["findings_html"] = report(
    f"{STUDY}/tables/findings.html",
    caption="../report/findings.rst",
    category="Tables",
)
FIGURE_OUTPUTS = {
    f"{name}_{ext}": _output("figures", name, ext, "png")
    for name in FIGURE_NAMES
    for ext in ["png", "pdf"]
}


# --- cluster resources: runtime (minutes) and mem_mb per job -----------------------------
# Used by the SLURM profile (workflow/profiles/slurm) as sbatch -t / --mem; local runs ignore
# them. They grow with the config's sizes and with `attempt`: with the profile's `retries`, a
# job SLURM killed for time or memory comes back asking for 2x, then 3x. The rates are
# deliberately pessimistic (a slow GPU for training and Inception, one CPU core elsewhere),
# in 64-px images per minute, plus 10 minutes per job for start-up and loading. The profile
# gives the Inception jobs (reference_features, generation_metrics) a GPU; without one they
# run ~50x slower (about 8 images/s on 2 CPU cores): raise their runtime if you drop it.
import math

GPU_TRAIN_RATE = 20_000  # training, forward + backward, celeba64 nets
GPU_INCEPTION_RATE = 12_000  # Inception features (64 -> 299 px) on a GPU
CPU_RATE = 600  # forward passes and per-image metrics
GMM_ITERATIONS = 50  # EM iterations assumed; 7 measured on 10,000 codes in 1,024 dims
# per CPU thread (10 GFLOP/s); the GMM runs on the GPU if any
GMM_FLOP_PER_MINUTE = 6e11


def _images(*counts):
    """An image count in 64-px equivalents (the cost grows with the pixel count)."""
    return sum(counts) * (config["dataset"]["image_size"] / 64) ** 2


def _data_mb(*counts):
    """Size of this many images as uint8 arrays, in MB."""
    return sum(counts) * 3 * config["dataset"]["image_size"] ** 2 / 2**20


def _minutes(work, attempt):
    return attempt * (10 + math.ceil(work))


def train_runtime(wildcards, attempt):
    d = config["dataset"]
    cost = vb.families.BY_KEY[run_of(wildcards).model].cost  # e.g. a discriminator
    images = cost * config["training"]["epochs"] * _images(d["n_train"], d["n_val"])
    return _minutes(images / GPU_TRAIN_RATE, attempt)


def train_mem_mb(wildcards, attempt):
    # torch + CUDA host memory, then the splits as uint8 and as float32 tensors
    d = config["dataset"]
    return attempt * (4000 + math.ceil(6 * _data_mb(d["n_train"], d["n_val"])))


def reconstruct_runtime(wildcards, attempt):
    # the reconstruction, then elbo_samples decoder passes per image for the Monte Carlo -ELBO
    passes = 1 + config["metrics"]["elbo_samples"]
    return _minutes(passes * _images(config["dataset"]["n_test"]) / CPU_RATE, attempt)


def sample_runtime(wildcards, attempt):
    d, s = config["dataset"], config["sampling"]
    # encode the training set (gmm), decode the samples
    work = _images(d["n_train"], d["n_val"], s["n_samples"]) / CPU_RATE
    if wildcards.sampler == "pixelcnn":  # + a code prior trained on the training codes,
        codes = s["pixelcnn"]["epochs"] * d["n_train"]  # each ~1/10 of an image's cost
        work += codes / (10 * CPU_RATE)
    if wildcards.sampler == "gmm" and not config["compute"]["gpus"]:
        work += gmm_flop(run_of(wildcards).family_key) / (
            GMM_FLOP_PER_MINUTE * config["compute"]["eval_threads"]
        )
    return _minutes(work, attempt)


def gmm_flop(model):
    """The gmm sampler's EM: ~3·N·K·D² FLOP an iteration (vaebench.gmm), in D latent
    dimensions (VQ-VAE: its code grid, latent_dim x (image_size / 16)²)."""
    d = config["network"]["latent_dim"]
    if vb.families.lookup(model).encoder == "vector_quantised":
        d *= (config["dataset"]["image_size"] // 16) ** 2
    k = config["sampling"]["gmm"]["n_components"]
    return 3 * config["dataset"]["n_train"] * k * d**2 * GMM_ITERATIONS


def sample_mem_mb(wildcards, attempt):
    d = config["dataset"]
    n = d["n_train"] + d["n_val"] + config["sampling"]["n_samples"]
    return attempt * (3000 + math.ceil(6 * _data_mb(n)))


def reference_features_runtime(wildcards, attempt):
    return _minutes(
        _images(config["dataset"]["n_reference"]) / GPU_INCEPTION_RATE, attempt
    )


def recon_metrics_runtime(wildcards, attempt):
    return _minutes(_images(config["dataset"]["n_test"]) / CPU_RATE, attempt)


def generation_metrics_runtime(wildcards, attempt):
    # Inception features, then the round trip (reconstruction, Monte Carlo -ELBO draws and
    # per-image metrics), all on the job's GPU: a forward pass costs at most a training step
    n = _images(config["sampling"]["n_samples"])
    passes = 2 + config["metrics"]["elbo_samples"]
    return _minutes(n / GPU_INCEPTION_RATE + passes * n / GPU_TRAIN_RATE, attempt)


# The feature spaces' networks, images per minute on a GPU and the model's memory: scaled from
# Inception's rate by forward FLOPs (Inception at 299 px ~6 GFLOP, DINOv2 ViT-S/14 at 224 px
# ~6, ViT-L/14 ~80, CLIP ViT-L/14 at 336 px ~190), not measured; pessimistic like the rest.
SPACE_GPU_RATE = {
    "dinov2_vits14": 12_000,
    "dinov2_vitl14": 1_000,
    "clip_vitl14_336": 400,
}
SPACE_MODEL_MB = {
    "dinov2_vits14": 300,
    "dinov2_vitl14": 2_500,
    "clip_vitl14_336": 3_500,
}


def space_reference_runtime(wildcards, attempt):
    n = config["dataset"]["n_reference"]
    return _minutes(n / SPACE_GPU_RATE[wildcards.space], attempt)


def space_metrics_runtime(wildcards, attempt):
    # features of the samples (the resize to the network's size makes the cost per image
    # independent of the dataset's), then the k-NN and kernel sums, small beside them
    n = config["sampling"]["n_samples"]
    return _minutes(n / SPACE_GPU_RATE[wildcards.space], attempt)


def space_mem_mb(wildcards, attempt):
    return eval_mem_mb(wildcards, attempt) + attempt * SPACE_MODEL_MB[wildcards.space]


def eval_mem_mb(wildcards, attempt):
    d = config["dataset"]
    n = d["n_test"] + d["n_reference"] + config["sampling"]["n_samples"]
    return attempt * (3000 + math.ceil(6 * _data_mb(n)))
