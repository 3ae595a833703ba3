"""The metric jobs: weights, per-image metrics of reconstructions, reference features, and
the set-level and round-trip metrics of sample sets (called through vaebench.jobs, which
wraps every job alike and holds the helpers they share with the model jobs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from vaebench import (
    families,
    io,
    jobs,  # its helpers, at call time (jobs imports this module)
)


def stage_weights(cache: str, allow_random: bool, report: str, dists: bool = True,
                  threads: int = 1) -> None:  # fmt: skip
    """The one job that may reach the network: fetch or place the LPIPS/DISTS/FID weights
    (VGG16, the trunk of DISTS and LPIPS-VGG, only when `dists`: config.vgg16_needed)."""
    jobs._torch(threads)
    from vaebench.metrics import weights

    weights.stage_weights(cache, allow_random=allow_random, report=report,
                                  files=weights.needed(dists))  # fmt: skip


def _metrics_meta(mcfg: dict, cache: str, extra: dict | None = None) -> dict:
    from vaebench.metrics import images, weights

    vgg = mcfg.get("lpips_vgg", False)  # present only when on (config._optional_metrics)
    checked = weights.check_weights(cache, weights.needed(mcfg["dists"] or vgg))
    meta = io.provenance({"metrics": mcfg, **(extra or {})}, device=str(jobs._device()))
    meta["metrics"] = images.metric_settings(
        mcfg["ms_ssim"]["kernel"], mcfg["ms_ssim"]["scales"], mcfg["dists"], vgg
    )
    meta["weights"] = checked
    meta["weights_official"] = all(w["official"] for w in checked.values())
    return meta


def per_image_columns() -> tuple[str, ...]:
    """The per-image Parquet columns: the registry's per-image metrics in its order, each
    Monte Carlo −ELBO followed by its standard error."""
    from vaebench.metrics.registry import PER_IMAGE

    return tuple(c for k in PER_IMAGE for c in ((k, "neg_elbo_se") if k == "neg_elbo" else (k,)))


def per_image_frame(
    info: dict,
    x,
    x_hat,
    terms: dict[str, np.ndarray],
    learned,
    mcfg: dict,
    *,
    reconstruction_loss: str | None,
):
    """One row per image: identifying columns, then per_image_columns().

    Image metrics compare x with the deterministic reconstruction x_hat (`learned`: the
    networks of images.load_learned). From the posterior
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

    from vaebench.metrics import images

    df = images.reconstruction_metrics(
        x,
        x_hat,
        learned=learned,
        ms_ssim_kernel=mcfg["ms_ssim"]["kernel"],
        ms_ssim_scales=mcfg["ms_ssim"]["scales"],
        batch_size=mcfg["batch_size"],
        device=jobs._device(),
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
    jobs._torch(threads)
    from vaebench.metrics import images

    meta = _metrics_meta(mcfg, weights_cache, {"run": info})
    trained = json.loads(Path(recon_meta).read_text())["config"]["model"]
    if trained["training"]["checkpoint"]:  # None: a model vaebench did not train
        meta["checkpoint"] = trained["training"]["checkpoint"]
    post, meta["metrics"]["elbo"] = jobs.load_terms(terms)
    learned = images.load_learned(weights_cache, jobs._device(), mcfg["dists"],
                                  mcfg.get("lpips_vgg", False))  # fmt: skip
    loss = trained["training"].get("reconstruction_loss")
    df = per_image_frame(info, io.load_npy(test), io.load_npy(recon), post, learned, mcfg,
                         reconstruction_loss=loss)  # fmt: skip
    io.save_parquet(out, df, meta)


def reference_features(
    reference: str, weights_cache: str, out: str, batch_size: int = 32, threads: int = 1
) -> None:
    """Inception features of the reference set, computed once and shared by every run."""
    jobs._torch(threads)
    from vaebench.metrics import features, weights

    weights.check_weights(weights_cache, (weights.INCEPTION,))
    feats = features.extract("inception", io.load_npy(reference), weights_cache, jobs._device(),
                             batch_size)  # fmt: skip
    io.save_npy(out, feats)


def _set_level(info: dict, sampler: str, mcfg: dict, x, reference_features: str,
               weights_cache: str) -> tuple[Any, dict]:
    """The set-level row of one sample set on Inception (FID, FID∞, KID, precision/recall,
    density/coverage against the reference set: metrics.sets.scores) and its metadata.

    FID is biased ~c/N with a model-dependent c, so beside FID@N this fits FID(N) =
    FID∞ + k/N to FID on subsets of the same features (stats.fid_curve, fixed seed) and
    reports the extrapolated FID∞ with the fit's residual."""
    import pandas as pd

    from vaebench.metrics import features, sets, spaces

    meta = _metrics_meta(mcfg, weights_cache, {"run": info, "sampler": sampler})
    dev = jobs._device()
    real = io.load_npy(reference_features)
    fake = features.extract("inception", x, weights_cache, dev, mcfg["batch_size"])
    s, settings = sets.scored(real, fake, mcfg, info["seed"], dev)
    subset = settings["kid_subset_size"]
    meta["generation"] = {
        "features": "Inception-v3 pool3 (2048-d, the pytorch-fid weights)",
        "resize": "bilinear resize to 299 px",
        **settings,
        "reference": "dataset.n_reference images (CelebA: of the test partition, disjoint "
        "from the n_test reconstruction images), features computed once per study",
    }
    s.pop("cmmd")  # not on Inception (CLIP's protocol: vaebench.jobs_spaces)
    names = spaces.INCEPTION_COLUMNS
    row = {**info, "sampler": sampler, **{names.get(k, k): v for k, v in s.items()}}
    row.update(n_generated=len(fake), n_reference=len(real), kid_subset_size=subset)
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
    jobs._torch(threads)
    from vaebench import models
    from vaebench.metrics import images

    x = io.load_npy(samples)
    set_level, meta = _set_level(info, sampler, mcfg, x, reference_features, weights_cache)
    dev = jobs._device()
    net = models.load(model, dev)
    x_hat, post, meta["metrics"]["elbo"] = jobs._reconstruct(net, model, x, mcfg["elbo_samples"])
    loss = jobs._trained(model)["config"]["training"].get("reconstruction_loss")
    learned = images.load_learned(weights_cache, dev, mcfg["dists"], mcfg.get("lpips_vgg", False))
    rt = per_image_frame(info, x, x_hat, post, learned, mcfg, reconstruction_loss=loss)
    rt.insert(5, "sampler", sampler)
    io.save_parquet(out_set, set_level, meta)
    io.save_parquet(out_roundtrip, rt, meta)


def supplied_metrics(info: dict, mcfg: dict, samples: str, reference_features: str,
                     weights_cache: str, out: str, threads: int = 1) -> None:
    """The set-level metrics of an `evaluate:` samples entry, as a model's samples get them
    (no model: no round trip)."""
    from vaebench import outside

    jobs._torch(threads)
    x = io.load_npy(samples)
    set_level, meta = _set_level(info, outside.SUPPLIED, mcfg, x, reference_features,
                                 weights_cache)  # fmt: skip
    io.save_parquet(out, set_level, meta)


