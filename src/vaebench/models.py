"""Pythae models: construction, loading and deterministic inference (networks: vaebench.nets).

This module (with nets, models_train and models_sample) is the only place that speaks to
Pythae. Everything else sees plain tensors and arrays.

Pythae facts this code relies on (measured on pythae 0.1.2):
- `AutoModel.load_from_folder` returns the model in train mode; BatchNorm then changes the
  output, so `load` calls `.eval()`.
- `reconstruct()`/`embed()` sample z; we decode `code()` instead (the flow of the posterior
  mean, a deterministic encoder's point, VQ-VAE's quantized code), so reconstructions are
  deterministic.
- Forward losses are batch means with model-specific scales: per-image quantities (KL, the
  Monte Carlo -ELBO terms) are computed here from the encoder and decoder outputs.

Per-image posterior terms (`reconstruct`), the same for every family whose posterior is one
Gaussian q(z|x) decoded as is and whose prior is N(0, I) (the decoders end in a sigmoid, read
as Bernoulli means); vaebench.families' `no_kl` says which families they do not apply to:
- kl: KL(q(z|x) || N(0, I)), analytic.
- nll_mc: E_q[BCE(decoder(z), x)] estimated with `elbo_samples` draws z ~ q(z|x).
  An ELBO is an expectation over q: decoding z = mu gives a plug-in value, not the ELBO, so
  -ELBO = nll_mc + kl, not bce(decoder(mu)) + kl. Draws are seeded per image from (seed,
  image index) on the CPU: the same numbers on rerun, on any device and at any batch size.
- kl_mc: for the families whose KL term has no closed form but whose Pythae loss estimates
  it by Monte Carlo (families' `mc_kl`), the same estimate with the same draws: VAE-LinNF
  and VAE-IAF, log q0(z0|x) − log|det J(z0)| − log N(z_K; 0, I) with z_K the flow of z0 (the
  decoder's input); VAMP, log q(z|x) − log p_VAMP(z). Their −ELBO = nll_mc + kl_mc; `kl`
  stays NaN for them (no analytic KL). NaN for every other family.
- mc_se: the Monte Carlo standard error of the −ELBO estimate, the sample std over draws of
  BCE + (kl_mc where it applies) / sqrt(draws); NaN for one draw.
- Elsewhere all are NaN: deterministic encoders (AE, WAE, RAE) and VQ-VAE have no
  posterior (a constant log K per VQ code position would be a code length, not a KL); HVAE
  decodes a Hamiltonian-refined z_K whose density needs its gradient steps.
The reconstruction itself stays deterministic (the decoder of `code()`).
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pythae.models
import torch
import torch.nn.functional as F
from pythae.models import AutoModel
from pythae.models.base.base_utils import ModelOutput

from vaebench import VaebenchError, families, nets
from vaebench.families import Family

POSTERIOR_TERMS = ("kl", "kl_mc", "nll_mc", "mc_se")


class VQVAEFixedLosses(pythae.models.VQVAE):
    """VQ-VAE with the codebook and commitment losses summed per image, as the reconstruction
    loss is: upstream's fix of Pythae 0.1.2 (benchmark_VAE b5c7462, #125, in no release).

    In 0.1.2 the Quantizer averages ||sg(q) − z||² and ||q − sg(z)||² over every element of
    the batch (B·positions·dim), while the loss adds them to the per-image sum of squared
    errors: the codebook term weighs about 1/(positions·dim) of what it should and the
    codebook barely learns. Upstream now sums over the whole batch, which makes the term
    grow with the batch size (B times a per-image sum, against the batch-mean reconstruction);
    this class sums per image (N/B times the mean, N the element count), so both terms are
    per-image sums whatever the batch, as in van den Oord et al. (2017). Only training
    changes: the saved model is Pythae's own VQVAE (same model_name, same state dict), and
    its reconstructions and codes do not read the loss. `vqvae.pythae_0_1_2_losses: true`
    trains the release's class instead.
    """

    def loss_function(self, recon_x, x, quantizer_output):
        recon_loss = F.mse_loss(
            recon_x.reshape(x.shape[0], -1), x.reshape(x.shape[0], -1), reduction="none"
        ).sum(dim=-1)  # 0.1.2's: per-image sum of squared errors, no 0.5
        per_image = quantizer_output.quantized_vector.numel() / x.shape[0]
        vq_loss = quantizer_output.loss * per_image
        return (
            (recon_loss + vq_loss).mean(dim=0),
            recon_loss.mean(dim=0),
            vq_loss.mean(dim=0),
        )


# Pythae classes replaced by a fixed subclass unless the family's config section asks for
# the release's behaviour: family key -> (the section's key, the class).
PYTHAE_FIXES = {"vqvae": ("pythae_0_1_2_losses", VQVAEFixedLosses)}
DRAW_SEED_STRIDE = 1_000_003  # per-image seeds of the -ELBO draws: seed * stride + index


def seed_everything(seed: int) -> None:
    """Seed every RNG a job touches (torch, numpy's global state used by sklearn, random)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --- building ---------------------------------------------------------------------------


def model_config_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """The Pythae model config of a run: image shape and latent size, the family's section
    (but its trainer's learning rates), β for swept families, the training loss where the
    family takes one, and what the family fixes."""
    fam = families.BY_KEY[params["model"]]
    kwargs: dict[str, Any] = {
        "input_dim": (3, params["image_size"], params["image_size"]),
        "latent_dim": params["network"]["latent_dim"],
    }
    section = params.get(fam.key, {})
    ours = {PYTHAE_FIXES[fam.key][0]} if fam.key in PYTHAE_FIXES else set()
    kwargs.update(
        {k: v for k, v in section.items() if not k.endswith("_learning_rate") and k not in ours}
    )
    if fam.swept:
        kwargs["beta"] = params["beta"]
    if fam.reconstruction_loss:
        kwargs["reconstruction_loss"] = params["training"]["reconstruction_loss"]
    kwargs.update(fam.fixed)
    return kwargs


def pythae_config(cls: type, kwargs: dict[str, Any], family_key: str) -> Any:
    """`cls(**kwargs)`, refusing keys the Pythae config class does not have: Pythae's configs
    silently drop unknown keys, so a misspelt registry or section key would train another
    model than the one the config describes."""
    import dataclasses

    unknown = sorted(set(kwargs) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise VaebenchError(
            f"family {family_key!r}: {cls.__name__} has no field(s) {unknown}; fix the "
            f"family's config section or its registry entry (vaebench.families)"
        )
    return cls(**kwargs)


def build(params: dict[str, Any]) -> torch.nn.Module:
    """A fresh Pythae model for one run, of its family's classes (vaebench.families). Seeds
    torch first: Pythae seeds only inside train()."""
    seed_everything(params["seed"])
    fam, net = families.BY_KEY[params["model"]], params["network"]
    model_cls, config_cls = (getattr(pythae.models, name) for name in fam.pythae)
    if fam.key in PYTHAE_FIXES:
        key, fixed = PYTHAE_FIXES[fam.key]
        model_cls = model_cls if params.get(fam.key, {}).get(key) else fixed
    cfg = pythae_config(config_cls, model_config_kwargs(params), fam.key)
    model = model_cls(cfg, **nets.build(net["preset"], fam, cfg, net["width"]))
    model.vaebench_family = fam.key
    return model


def family(model) -> Family:
    """The registry entry of a model built by `build` or loaded by `load` (families.OTHER for
    an evaluated model of a class the registry lacks)."""
    return families.lookup(model.vaebench_family)


def load(folder: str | Path, device_: torch.device | str = "cpu") -> torch.nn.Module:
    """Load a model folder of the workflow's (results/runs/<run>/model), in eval mode, on
    `device_`.

    The train job's folders carry its record (vaebench.json); Pythae's files beside it hold
    pickled networks (vaebench's own code), loaded by `AutoModel.load_from_folder`. The
    import job of an `evaluate:` entry (vaebench.outside) writes a record that says where the
    files came from: a vaebench publication's are loaded from model.safetensors without
    unpickling anything; another folder's pickles only where its entry trusts them.
    """
    import json

    folder = Path(folder)
    if not (folder / "vaebench.json").exists():
        raise VaebenchError(
            f"{folder}: not written by vaebench's train or import job (no vaebench.json); "
            "refusing to unpickle it; train the run with the workflow"
        )
    record = json.loads((folder / "vaebench.json").read_text())
    entry = record.get("evaluated")  # an evaluate: entry's import (vaebench.outside)
    if entry and entry["route"] == "safetensors":
        from vaebench import safe_weights

        model = safe_weights.load(folder, device_)
    else:
        if not (folder / "model.pt").exists():
            raise VaebenchError(f"{folder}: no Pythae model here (missing model.pt); rerun "
                                "training")  # fmt: skip
        from vaebench import outside

        code = outside.pickled(folder) if entry else []
        if code and not entry["trust_pickled_code"]:
            raise VaebenchError(f"{folder}: holds pickled code ({', '.join(code)}) that "
                                "its evaluate entry does not trust; not loading it")  # fmt: skip
        model = AutoModel.load_from_folder(str(folder))
    model = model.to(device_).eval()
    model.vaebench_family = record["config"]["model"] or families.OTHER.key
    model.device = str(device_)
    return model


# --- inference: deterministic reconstructions, per-image posterior terms -------------------


def to_float(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 images -> float in [0, 1]; floats pass through."""
    x = torch.as_tensor(x)
    return x.float().div_(255) if x.dtype == torch.uint8 else x.float()


def _quantized(model, emb: torch.Tensor) -> torch.Tensor:
    """VQ-VAE's quantized code for encoder output `emb`, shaped as the decoder expects."""
    flat = emb.ndim == 2
    grid = emb.reshape(emb.shape[0], 1, 1, -1) if flat else emb
    q = model.quantizer(grid.permute(0, 2, 3, 1), uses_ddp=False).quantized_vector
    return q.reshape(q.shape[0], -1) if flat else q


def flow(model, z: torch.Tensor) -> torch.Tensor:
    """The family's flow from a posterior sample to the decoder's input (identity without one):
    VAE-LinNF's planar/radial layers, VAE-IAF's inverse autoregressive flow (as in their
    Pythae forward passes)."""
    kind = family(model).flow
    if kind == "planar":
        for layer in model.net:
            z = layer(z).out
    elif kind == "iaf":
        z = model.iaf_flow.inverse(z).out
    return z


def code(model, x: torch.Tensor, out: ModelOutput | None = None) -> torch.Tensor:
    """The deterministic decoder input of a batch: the flow of the posterior mean (Gaussian
    encoders; HVAE: the mean, without its Hamiltonian steps, which need gradients), the point
    of a deterministic encoder, or VQ-VAE's quantized code. Reconstructions, val_mse and the
    GMM sampler all decode this."""
    out = model.encoder(x) if out is None else out
    if family(model).encoder == "vector_quantised":
        return _quantized(model, out.embedding)
    return flow(model, out.embedding)


def has_kl(model) -> bool:
    """Whether the per-image KL and Monte Carlo -ELBO apply (vaebench.families' no_kl)."""
    return family(model).no_kl is None


@torch.inference_mode()
def encode_decode(model, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic reconstruction and per-image KL (nats, float64) of one batch in [0, 1].

    The decoder of `code`; KL(q(z|x) || N(0, I)) analytically where the family's posterior is
    that Gaussian and its prior N(0, I), else NaN (see vaebench.families: no_kl).
    """
    out = model.encoder(x)
    recon = model.decoder(code(model, x, out)).reconstruction.clamp(0, 1)
    if not has_kl(model):
        return recon, torch.full((x.shape[0],), math.nan, dtype=torch.float64)
    mu, log_var = out.embedding, out.log_covariance
    kl = -0.5 * torch.sum(1 + log_var - mu.pow(2) - log_var.exp(), dim=-1)
    return recon, kl.double()


def _draws(shape: tuple[int, ...], n: int, seed: int, first: int) -> torch.Tensor:
    """N(0, I) noise (len x n x latent) for images first, first+1, ...: one CPU generator per
    image seeded from (seed, index), so the draws do not depend on batching or device."""
    out = torch.empty((shape[0], n, *shape[1:]))
    for j in range(shape[0]):
        gen = torch.Generator().manual_seed((seed * DRAW_SEED_STRIDE + first + j) % 2**63)
        out[j] = torch.randn((n, *shape[1:]), generator=gen)
    return out


def _log_normal(z: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """Σ_d log N(z; mu, exp(log_var)) without the −(d/2)·log 2π, which cancels in q − p (as
    in Pythae's losses)."""
    return (-0.5 * (log_var + (z - mu).pow(2) / log_var.exp())).sum(dim=-1)


def _mc_kl(model, z0: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor):
    """(decoder input z_K, per-draw KL-term estimate) for a family with `mc_kl`."""
    log_q = _log_normal(z0, mu, log_var)
    if family(model).mc_kl == "vamp":
        return z0, log_q - model._log_p_z(z0)
    z, log_det = z0, torch.zeros(z0.shape[0], device=z0.device, dtype=z0.dtype)
    if family(model).flow == "planar":
        for layer in model.net:
            out = layer(z)
            z, log_det = out.out, log_det + out.log_abs_det_jac
    else:  # iaf
        out = model.iaf_flow.inverse(z0)
        z, log_det = out.out, out.log_abs_det_jac
    return z, log_q - log_det - _log_normal(z, torch.zeros_like(z), torch.zeros_like(z))


@torch.inference_mode()
def mc_elbo_terms(
    model, x: torch.Tensor, n: int, seed: int, first: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(nll_mc, kl_mc, mc_se) per image (nats, float64) from `n` draws z0 ~ q(z|x) (module
    doc); images are indices first, first+1, ... of the evaluated set. NaN where the family
    has no ELBO of this kind; kl_mc NaN where the KL is analytic; mc_se NaN when n == 1."""
    from vaebench.metrics.pixel import bce_per_image  # one BCE formula for metrics and -ELBO

    nan = torch.full((x.shape[0],), math.nan, dtype=torch.float64)
    mc = family(model).mc_kl
    if not has_kl(model) and mc is None:
        return nan, nan, nan
    out = model.encoder(x)
    mu, log_var = out.embedding, out.log_covariance
    std = torch.exp(0.5 * log_var)
    eps = _draws(tuple(mu.shape), n, seed, first).to(mu.device, mu.dtype)
    nll, kl = [], []
    for s in range(n):
        z = mu + std * eps[:, s]
        if mc is not None:
            z, k = _mc_kl(model, z, mu, log_var)
            kl.append(k.double())
        nll.append(bce_per_image(model.decoder(z).reconstruction.clamp(0, 1), x))
    nll = torch.stack(nll, dim=1)
    kl = torch.stack(kl, dim=1) if mc is not None else None
    total = nll + kl if kl is not None else nll  # an analytic KL adds a constant: no error
    se = total.std(dim=1, correction=1) / math.sqrt(n) if n > 1 else nan
    return nll.mean(dim=1), kl.mean(dim=1) if kl is not None else nan, se


def elbo_settings(elbo_samples: int, seed: int) -> dict[str, Any]:
    """How kl / neg_elbo / neg_elbo_se / objective were computed, for Parquet metadata."""
    return {
        "kl": "KL(q(z|x) || N(0, I)) analytic, nats/image; null where the family's posterior "
        "or prior is another distribution (vaebench.families: no_kl)",
        "neg_elbo": "E_q[BCE(decoder(z), x)] + KL, Monte Carlo over z ~ q(z|x); the KL analytic, "
        "or where it has no closed form (VAE-LinNF, VAE-IAF: log q0(z0) - log|det J| - log "
        "N(z_K; 0, I); VAMP: log q(z|x) - log p_VAMP(z)) a Monte Carlo estimate with the same "
        "draws, as in the family's Pythae loss; null where the family has no such ELBO",
        "neg_elbo_se": "Monte Carlo standard error of neg_elbo (std over draws / sqrt(samples)); "
        "also that of objective, KL being analytic there; null for 1 sample",
        "objective": "E_q[BCE(decoder(z), x)] + beta * KL, same draws",
        "samples": elbo_samples,
        "seed": seed,
        "draws": f"N(0, I), a CPU torch.Generator per image seeded seed * {DRAW_SEED_STRIDE}"
        " + image index",
        "deterministic": "bce, bce_excess, mse, psnr, ssim, ms_ssim, gmsd, lpips use the decoder "
        "of its deterministic code: the flow of the posterior mean (deterministic encoders: the "
        "point; VQ-VAE: the quantized code; HVAE: the mean without its Hamiltonian steps)",
    }


def reconstruct(
    model, images: np.ndarray, *, elbo_samples: int, seed: int, batch_size: int = 64
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Reconstructions (float32 in [0, 1], same order) of uint8 images, and per-image posterior
    terms (float64): {"kl", "kl_mc", "nll_mc", "mc_se"} as in the module doc.

    `elbo_samples` draws per image (config metrics.elbo_samples), seeded from `seed`.
    """
    dev = next(model.parameters()).device
    recons, terms = [], {k: [] for k in POSTERIOR_TERMS}
    for i in range(0, len(images), batch_size):
        x = to_float(np.asarray(images[i : i + batch_size])).to(dev)
        r, kl = encode_decode(model, x)
        nll, kl_mc, se = mc_elbo_terms(model, x, elbo_samples, seed, first=i)
        recons.append(r.float().cpu().numpy())
        for k, v in zip(POSTERIOR_TERMS, (kl, kl_mc, nll, se), strict=True):
            terms[k].append(v.cpu().numpy())
    return np.concatenate(recons), {k: np.concatenate(v) for k, v in terms.items()}
