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


def run_outputs(run):
    """What one run produces: model, history, reconstructions and samples (+ grids)."""
    base = f"results/runs/{run.id}"
    out = [f"{base}/model", f"{base}/history.parquet", f"{base}/recon.npy", f"{base}/recon_grid.png"]
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
        out += run_outputs(run)
    return out + TABLES + FIGURES
