"""One function per workflow job; workflow/scripts/*.py only pass Snakemake's paths in.

`run` wraps every job the same way: stdout/stderr (Pythae's chatter, progress bars) go to
the rule's log, torch uses the job's threads, and a VaebenchError ends the job with one
line on the terminal that names the cause, instead of a traceback in a log file.

The reconstruct job computes, besides the deterministic reconstructions, the per-image terms
that need the model: the analytic KL and the Monte Carlo E_q[BCE] (with its standard error)
of the -ELBO. They go to a small .npz that recon_metrics combines with the image metrics.

The study-level jobs (`tables`, `figures`, `compare`) live in vaebench.jobs_study and are
imported here, so that every script calls `jobs.<name>`: a script's text is part of its
rule's code, and Snakemake reruns a rule whose code changed.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vaebench import VaebenchError, families, io
from vaebench.jobs_study import compare, figures, tables  # noqa: F401  (see the docstring)


def run(smk: Any, job: Callable[..., Any], **kwargs: Any) -> None:
    """Run `job(**kwargs)` inside a Snakemake `script:` with logging and one-line errors."""
    log_path = Path(smk.log[0]) if smk.log else None
    terminal = os.dup(2)
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(fd, 1), os.dup2(fd, 2)
        os.close(fd)
    try:
        from vaebench import gpus
        from vaebench.config import DEVICE_ENV

        card = gpus.assign(int(getattr(smk.resources, "gpu", 0)), os.environ.get(DEVICE_ENV, ""))
        if card is not None:
            print(f"vaebench: this job runs on GPU {card} (CUDA_VISIBLE_DEVICES={card})")
        job(**kwargs, threads=smk.threads)
    except VaebenchError as err:
        line = f"vaebench: {err}"
        print(line, file=sys.stderr, flush=True)
        os.write(terminal, (line + "\n").encode())
        sys.exit(1)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        where = f" (see {log_path})" if log_path else ""
        os.write(terminal, f"vaebench: job failed with an unexpected error{where}\n".encode())
        raise


def _torch(threads: int, deterministic: bool = True) -> None:
    """Threads, and numerics: fp32 and deterministic kernels for every job but a train job
    with training.deterministic: false (on the CPU neither changes a number)."""
    from vaebench import runtime

    runtime.set_threads(threads)
    runtime.deterministic_training(deterministic)


def _device():
    from vaebench import runtime

    return runtime.device()


def prepare_data(dataset: dict, out_dir: str, threads: int = 1) -> None:
    from vaebench import data

    data.prepare(dataset, out_dir, workers=threads)


def prepare_reference(dataset: dict, out_dir: str, threads: int = 1) -> None:
    """The generation metrics' reference images (dataset.n_reference), in their own job: the
    reference size never touches the training data."""
    from vaebench import data

    data.prepare(dataset, out_dir, threads, (data.REFERENCE,), data.REFERENCE_MANIFEST)


def train(
    params: dict,
    train: str,
    val: str,
    model: str,
    history: str,
    checkpoint: str,
    diverged: str,
    threads: int = 1,
) -> None:
    """Train one run. A divergence still fails the job, after recording it in `diverged`
    (see vaebench.config.diverged_runs) so the tables can say so instead of showing NaN."""
    _torch(threads, params["training"]["deterministic"])
    from vaebench import models_train

    try:
        summary = models_train.train(
            params, io.load_npy(train), io.load_npy(val), model, history, checkpoint
        )
    except models_train.Diverged as err:
        record = {"params": params, "epoch": err.epoch, "last_finite_train_loss": err.last_finite}
        io.save_json(diverged, {**record, "message": str(err), **io.provenance()})
        raise
    Path(diverged).unlink(missing_ok=True)  # a record from other settings is now stale
    print(f"done: {summary}")


def _trained(model: str) -> dict:
    """The train job's record in the model folder (its params under "config")."""
    return json.loads((Path(model) / "vaebench.json").read_text())


def _record(out: str, model: str, config_slice: dict, files: list[str]) -> None:
    """The provenance sidecar of .npy outputs (which cannot carry metadata themselves): the
    config slice, the model's training params, versions, commit, device and file hashes."""
    trained = _trained(model)
    meta = io.provenance({**config_slice, "model": trained.get("config")}, device=str(_device()))
    meta["sha256"] = {Path(f).name: io.sha256_file(f) for f in files}
    io.save_json(out, meta)


def _reconstruct(
    net, model: str, images: np.ndarray, elbo_samples: int
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
    """models.reconstruct with the Monte Carlo draws seeded from the run's seed (read from the
    model's own record, so the rules pass no seed), and the settings for the metadata."""
    from vaebench import models

    seed = int(_trained(model)["config"]["seed"])
    x_hat, terms = models.reconstruct(net, images, elbo_samples=elbo_samples, seed=seed)
    return x_hat, terms, models.elbo_settings(elbo_samples, seed)


def save_terms(path: str, terms: dict[str, np.ndarray], settings: dict) -> None:
    """The per-image posterior terms (models.POSTERIOR_TERMS; float64, NaN where none) and the
    draws' count and seed, as one .npz (written atomically)."""
    extra = {"elbo_samples": np.int64(settings["samples"]), "elbo_seed": np.int64(settings["seed"])}
    with io.atomic_path(path, ".npz") as tmp:
        np.savez(tmp, **{k: np.asarray(v, np.float64) for k, v in terms.items()}, **extra)


def load_terms(path: str) -> tuple[dict[str, np.ndarray], dict]:
    """(terms, elbo settings) written by save_terms."""
    from vaebench import models

    with np.load(path, allow_pickle=False) as f:
        missing = [k for k in models.POSTERIOR_TERMS if k not in f.files]
        if missing:
            raise VaebenchError(
                f"{path}: no {', '.join(missing)} (written by an older vaebench); rerun its "
                "reconstruct job: snakemake --forcerun reconstruct"
            )
        terms = {k: f[k] for k in models.POSTERIOR_TERMS}
        settings = models.elbo_settings(int(f["elbo_samples"]), int(f["elbo_seed"]))
    return terms, settings


def reconstruct(
    model: str,
    test: str,
    recon: str,
    terms: str,
    grid: str,
    meta: str,
    elbo_samples: int,
    threads: int = 1,
) -> None:
    """Deterministic test reconstructions (recon.npy) and per-image posterior terms with
    `elbo_samples` Monte Carlo draws (terms .npz, see save_terms): the model is needed for both."""
    _torch(threads)
    from vaebench import grids, models

    net = models.load(model, _device())
    images = io.load_npy(test)
    x_hat, post, settings = _reconstruct(net, model, images, elbo_samples)
    io.save_npy(recon, x_hat.astype(np.float32))
    save_terms(terms, post, settings)
    run = _trained(model)["config"]["run"]
    rows = [images[:8], (x_hat[:8] * 255).round().astype(np.uint8)]
    grids.save_grid(grid, rows, labels=["test", "recon."], title=f"{run}: test / reconstruction")
    _record(meta, model, {"test": test, "elbo_samples": elbo_samples}, [recon, terms])


def sample(
    model: str,
    params: dict,
    train: str,
    val: str,
    samples: str,
    grid: str,
    meta: str,
    threads: int = 1,
) -> None:
    _torch(threads)
    from vaebench import grids, models, models_sample

    net = models.load(model, _device())
    x = models_sample.sample(net, params, io.load_npy(train), io.load_npy(val))
    io.save_npy(samples, x)
    _record(meta, model, {"sampling": params}, [samples])
    grids.save_grid(grid, [x[i : i + 8] for i in range(0, min(len(x), 32), 8)],
                    title=f"{params['run']}: samples, {params['sampler']} sampler")  # fmt: skip


# --- metrics -----------------------------------------------------------------------------


def stage_weights(cache: str, allow_random: bool, report: str, threads: int = 1) -> None:
    """The one job that may reach the network: fetch or place the LPIPS/FID weights."""
    _torch(threads)
    from vaebench import metrics_weights

    metrics_weights.stage_weights(cache, allow_random=allow_random, report=report)


def _metrics_meta(mcfg: dict, cache: str, extra: dict | None = None) -> dict:
    from vaebench import metrics, metrics_weights

    weights = metrics_weights.check_weights(cache)
    meta = io.provenance({"metrics": mcfg, **(extra or {})}, device=str(_device()))
    meta["metrics"] = metrics.metric_settings(mcfg["ms_ssim"]["kernel"], mcfg["ms_ssim"]["scales"])
    meta["weights"] = weights
    meta["weights_official"] = all(w["official"] for w in weights.values())
    return meta


def per_image_columns() -> tuple[str, ...]:
    """The per-image Parquet columns: the registry's per-image metrics in its order, each
    Monte Carlo −ELBO followed by its standard error."""
    from vaebench.metric_registry import PER_IMAGE

    return tuple(c for k in PER_IMAGE for c in ((k, "neg_elbo_se") if k == "neg_elbo" else (k,)))


def per_image_frame(
    info: dict,
    x,
    x_hat,
    terms: dict[str, np.ndarray],
    lpips_model,
    mcfg: dict,
    *,
    reconstruction_loss: str | None,
):
    """One row per image: identifying columns, then per_image_columns().

    Image metrics compare x with the deterministic reconstruction x_hat. From the posterior
    `terms` (models.reconstruct): kl; neg_elbo = nll_mc + kl (or + kl_mc, the Monte Carlo KL
    term of VAE-LinNF, VAE-IAF and VAMP), the Monte Carlo -ELBO, with its standard error
    neg_elbo_se; objective = nll_mc + beta * kl (same standard error). Every quantity the
    family's registry entry says does not apply (no KL for deterministic encoders, VQ-VAE,
    flows, HVAE, VAMP; no -ELBO for the first three and HVAE; no BCE + β·KL objective but for
    VAE and β-VAE) is
    NaN, i.e. null in Parquet: never a number that means something else. `objective` is
    also null when the run trained on another reconstruction loss than BCE
    (`reconstruction_loss`, from the model's training params): it is then not its loss.
    """
    import pandas as pd

    from vaebench import metrics

    df = metrics.reconstruction_metrics(
        x,
        x_hat,
        lpips_model=lpips_model,
        ms_ssim_kernel=mcfg["ms_ssim"]["kernel"],
        ms_ssim_scales=mcfg["ms_ssim"]["scales"],
        batch_size=mcfg["batch_size"],
        device=_device(),
    )
    kl, kl_mc, nll = (np.asarray(terms[k], dtype=np.float64) for k in ("kl", "kl_mc", "nll_mc"))
    df["kl"] = kl
    df["neg_elbo"] = nll + np.where(np.isnan(kl_mc), kl, kl_mc)
    df["neg_elbo_se"] = np.asarray(terms["mc_se"], dtype=np.float64)
    beta = info["beta"]
    df["objective"] = nll + beta * kl if beta is not None else np.nan
    for col in families.lookup(info.get("family_key", info["model"])).not_applicable:
        df[col] = np.nan
    if reconstruction_loss != "bce":
        df["objective"] = np.nan
    ids = {k: info[k] for k in ("run", "model", "family", "beta", "seed")}
    head = pd.DataFrame({**ids, "image": np.arange(len(df))})
    head["beta"] = head["beta"].astype("float64")
    return pd.concat([head, df[list(per_image_columns())]], axis=1)


def recon_metrics(
    info: dict,
    mcfg: dict,
    test: str,
    recon: str,
    terms: str,
    recon_meta: str,
    weights_cache: str,
    out: str,
    threads: int = 1,
) -> None:
    """Per-image metrics of the test reconstructions; `terms` is the reconstruct job's .npz and
    `recon_meta` its provenance record, whose model params say which checkpoint rule kept
    the model (recorded in the metadata: the tables print it)."""
    _torch(threads)
    from vaebench import metrics

    meta = _metrics_meta(mcfg, weights_cache, {"run": info})
    trained = json.loads(Path(recon_meta).read_text())["config"]["model"]
    if trained["training"]["checkpoint"]:  # None: a model vaebench did not train
        meta["checkpoint"] = trained["training"]["checkpoint"]
    post, meta["metrics"]["elbo"] = load_terms(terms)
    lp = metrics.load_lpips(weights_cache, _device())
    loss = trained["training"].get("reconstruction_loss")
    df = per_image_frame(info, io.load_npy(test), io.load_npy(recon), post, lp, mcfg,
                         reconstruction_loss=loss)  # fmt: skip
    io.save_parquet(out, df, meta)


def reference_features(
    reference: str, weights_cache: str, out: str, batch_size: int = 32, threads: int = 1
) -> None:
    """Inception features of the reference set, computed once and shared by every run."""
    _torch(threads)
    from vaebench import metrics, metrics_weights

    metrics_weights.check_weights(weights_cache)
    feats = metrics.inception_features(io.load_npy(reference), weights_cache, _device(), batch_size)
    io.save_npy(out, feats)


def _set_level(info: dict, sampler: str, mcfg: dict, x, reference_features: str,
               weights_cache: str) -> tuple[Any, dict]:
    """The set-level row of one sample set (FID, FID∞, KID, precision/recall, density/
    coverage against the reference set) and its Parquet metadata.

    FID is biased ~c/N with a model-dependent c, so beside FID@N this fits FID(N) =
    FID∞ + k/N to FID on subsets of the same features (stats.fid_curve, fixed seed) and
    reports the extrapolated FID∞ with the fit's residual."""
    import pandas as pd

    from vaebench import feature_metrics, metrics, stats

    meta = _metrics_meta(mcfg, weights_cache, {"run": info, "sampler": sampler})
    dev = _device()
    real = io.load_npy(reference_features)
    fake = metrics.inception_features(x, weights_cache, dev, mcfg["batch_size"])
    subset = min(mcfg["kid"]["subset_size"], len(real), len(fake))
    kid_mean, kid_std = feature_metrics.kid(
        real, fake, subset, mcfg["kid"]["n_subsets"], seed=info["seed"]
    )
    precision, recall = feature_metrics.precision_recall(real, fake, mcfg["pr_k"], dev)
    density, coverage = feature_metrics.density_coverage(real, fake, mcfg["dc_k"], dev)
    sizes, fids = stats.fid_curve(real, fake, seed=info["seed"])
    fid_inf, _, fid_inf_residual = stats.fid_infinity(sizes, fids)
    meta["generation"] = {
        "features": "Inception-v3 pool3 (2048-d, the pytorch-fid weights)",
        "resize": "bilinear resize to 299 px",
        "pr_k": mcfg["pr_k"],
        "dc_k": mcfg["dc_k"],
        "kid_subset_size": subset,
        "kid_n_subsets": mcfg["kid"]["n_subsets"],
        "fid_sizes": [int(n) for n in sizes],
        "fid_subset_seed": info["seed"],
        "reference": "dataset.n_reference images (CelebA: of the test partition, disjoint "
        "from the n_test reconstruction images), features computed once per study",
    }
    row = {
        **info,
        "sampler": sampler,
        "fid": feature_metrics.frechet_distance(real, fake),
        "fid_inf": fid_inf,
        "fid_inf_residual": fid_inf_residual,
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        "precision": precision,
        "recall": recall,
        "density": density,
        "coverage": coverage,
        "n_generated": len(fake),
        "n_reference": len(real),
        "kid_subset_size": subset,
    }
    set_level = pd.DataFrame([row])
    set_level["beta"] = set_level["beta"].astype("float64")
    return set_level, meta


def generation_metrics(
    info: dict,
    sampler: str,
    mcfg: dict,
    model: str,
    samples: str,
    reference_features: str,
    weights_cache: str,
    out_set: str,
    out_roundtrip: str,
    threads: int = 1,
) -> None:
    """The set-level metrics of a model's samples (`_set_level`) and their round-trip
    metrics: each sample reconstructed and scored as a test image is."""
    _torch(threads)
    from vaebench import metrics, models

    x = io.load_npy(samples)
    set_level, meta = _set_level(info, sampler, mcfg, x, reference_features, weights_cache)
    dev = _device()
    net = models.load(model, dev)
    x_hat, post, meta["metrics"]["elbo"] = _reconstruct(net, model, x, mcfg["elbo_samples"])
    loss = _trained(model)["config"]["training"].get("reconstruction_loss")
    lp = metrics.load_lpips(weights_cache, dev)
    rt = per_image_frame(info, x, x_hat, post, lp, mcfg, reconstruction_loss=loss)
    rt.insert(5, "sampler", sampler)
    io.save_parquet(out_set, set_level, meta)
    io.save_parquet(out_roundtrip, rt, meta)


def supplied_metrics(info: dict, mcfg: dict, samples: str, reference_features: str,
                     weights_cache: str, out: str, threads: int = 1) -> None:
    """The set-level metrics of an `evaluate:` samples entry, as a model's samples get them
    (no model: no round trip)."""
    from vaebench import outside

    _torch(threads)
    x = io.load_npy(samples)
    set_level, meta = _set_level(info, outside.SUPPLIED, mcfg, x, reference_features,
                                 weights_cache)  # fmt: skip
    io.save_parquet(out, set_level, meta)


def fetch_model(params: dict, out: str, record: str, threads: int = 1) -> None:
    """The one job that reaches the Hub: an `evaluate:` hub entry's repository."""
    from vaebench import outside

    outside.fetch(**params, out=out, record=record)


def import_model(params: dict, files: list[str], out: str, fetch_record: str | None = None,
                 threads: int = 1) -> None:
    """An `evaluate:` model entry's files into its run's model folder (vaebench.outside)."""
    from vaebench import outside

    outside.import_model(params, files, out, fetch_record)


def import_samples(params: dict, files: list[str], image_size: int, out: str,
                   threads: int = 1) -> None:
    """An `evaluate:` samples entry's images as one array (vaebench.outside)."""
    from vaebench import outside

    outside.import_samples(params, files, image_size, out)
