# Config -> run table and input functions. All logic lives in vaebench.config (no torch here).
import sys

from vaebench import VaebenchError
from vaebench import config as vb

try:
    config.update(vb.validate(config, source="config"))
except VaebenchError as err:
    sys.exit(f"vaebench: {err}")

RUNS = vb.runs(config)
DATA = "results/data"
WEIGHTS = config["weights"]["cache"]


wildcard_constraints:
    run=r"(vae|beta_vae/beta~[0-9.e+-]+|vqvae|vaegan)/seed~\d+",
    sampler="|".join(vb.SAMPLER_ORDER),


def run_of(wildcards):
    return vb.run_by_id(config, wildcards.run)


def train_params(wildcards):
    return vb.train_params(config, run_of(wildcards))


def sampler_params(wildcards):
    return vb.sampler_params(config, run_of(wildcards), wildcards.sampler)


def run_info(wildcards):
    return vb.run_info(run_of(wildcards))


def recon_metric_params(wildcards):
    m = config["metrics"]
    return {"batch_size": m["batch_size"], "ms_ssim": m["ms_ssim"]}


def generation_metric_params(wildcards):
    m = config["metrics"]
    return {k: m[k] for k in ("batch_size", "ms_ssim", "kid", "pr_k")}


SAMPLERS_USED = [
    s for s in vb.SAMPLER_ORDER if any(s in vb.samplers(config, r) for r in RUNS)
]


def metric_files(kind):
    """Every run's reconstruction / generation_<sampler> / roundtrip_<sampler> Parquet."""
    if kind == "reconstruction":
        return [f"results/metrics/{r.id}/reconstruction.parquet" for r in RUNS]
    return [
        f"results/metrics/{r.id}/{kind}_{s}.parquet"
        for r in RUNS
        for s in vb.samplers(config, r)
    ]


def figure_files():
    """Row label -> file maps for the figures (one seed per row: the first)."""
    first = [r for r in RUNS if r.seed == min(config["seeds"])]
    return {
        "test": f"{DATA}/test.npy",
        "recons": {r.label: f"results/runs/{r.id}/recon.npy" for r in first},
        "samples": {
            s: {
                r.label: f"results/runs/{r.id}/samples_{s}.npy"
                for r in first
                if s in vb.samplers(config, r)
            }
            for s in SAMPLERS_USED
        },
        "histories": {r.id: f"results/runs/{r.id}/history.parquet" for r in RUNS},
        "recon_table": "results/tables/reconstruction.parquet",
        "agreement_table": "results/tables/metric_agreement.parquet",
    }


def figure_inputs(wildcards):
    f = figure_files()
    return {
        "test": f["test"],
        "recons": list(f["recons"].values()),
        "samples": [p for files in f["samples"].values() for p in files.values()],
        "histories": list(f["histories"].values()),
        "recon_table": f["recon_table"],
        "agreement_table": f["agreement_table"],
    }


def run_outputs(run):
    """What one run produces: model, history, reconstructions and samples (+ grids)."""
    base = f"results/runs/{run.id}"
    out = [
        f"{base}/model",
        f"{base}/history.parquet",
        f"{base}/recon.npy",
        f"{base}/recon_grid.png",
    ]
    for s in vb.samplers(config, run):
        out += [f"{base}/samples_{s}.npy", f"{base}/samples_{s}.png"]
    return out


def metric_outputs(run):
    base = f"results/metrics/{run.id}"
    out = [f"{base}/reconstruction.parquet"]
    for s in vb.samplers(config, run):
        out += [f"{base}/generation_{s}.parquet", f"{base}/roundtrip_{s}.parquet"]
    return out


def all_outputs():
    out = []
    for run in RUNS:
        out += run_outputs(run) + metric_outputs(run)
    return out + TABLES + FIGURES


# --- aggregate outputs: tables and figures ----------------------------------------------
TABLE_NAMES = ["reconstruction", "generation", "metric_agreement", "paired_comparisons"]
TABLES = expand(
    "results/tables/{name}.{ext}", name=TABLE_NAMES, ext=["parquet", "csv", "md", "tex"]
)
FIGURE_NAMES = [
    "reconstruction_grid",
    *[f"samples_{s}" for s in SAMPLERS_USED],
    "metric_vs_beta",
    "rate_distortion",
    "learning_curves",
    "agreement_heatmap",
]
FIGURES = expand("results/figures/{name}.{ext}", name=FIGURE_NAMES, ext=["png", "pdf"])


def _caption(name):
    stem = "sample_grid" if name.startswith("samples_") else name
    return (
        f"../report/{stem}_table.rst"
        if name in ("reconstruction", "generation")
        else f"../report/{stem}.rst"
    )


# Tables and figures as named outputs; the CSVs and PNGs go into `snakemake --report`.
def _output(kind, name, ext, shown):
    path = f"results/{kind}/{name}.{ext}"
    if ext != shown:
        return path
    return report(path, caption=_caption(name), category=kind.capitalize())


TABLE_OUTPUTS = {
    f"{name}_{ext}": _output("tables", name, ext, "csv")
    for name in TABLE_NAMES
    for ext in ["parquet", "csv", "md", "tex"]
}
FIGURE_OUTPUTS = {
    f"{name}_{ext}": _output("figures", name, ext, "png")
    for name in FIGURE_NAMES
    for ext in ["png", "pdf"]
}
