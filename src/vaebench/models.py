"""Pythae models: network presets, model construction, loading and deterministic inference.

This module (with models_train and models_sample) is the only place that speaks to Pythae.
Everything else sees plain tensors and arrays.

Pythae facts this code relies on (measured on pythae 0.1.2):
- `AutoModel.load_from_folder` returns the model in train mode; BatchNorm then changes the
  output, so `load` calls `.eval()`.
- `reconstruct()`/`embed()` sample z; we decode the posterior mean instead (VQ-VAE: the
  quantized code), so reconstructions are deterministic.
- Forward losses are batch means with model-specific scales: per-image quantities (KL, the
  Monte Carlo -ELBO terms) are computed here from the encoder and decoder outputs.

Per-image posterior terms (`reconstruct`), the same for every Gaussian-posterior family
(VAE, beta-VAE and VAE-GAN's encoder; the decoders end in a sigmoid, read as Bernoulli means):
- kl: KL(q(z|x) || N(0, I)), analytic.
- nll_mc: E_q[BCE(decoder(z), x)] estimated with `elbo_samples` draws z ~ q(z|x), and
  nll_mc_se its Monte Carlo standard error (sample std / sqrt(draws); NaN for one draw).
  An ELBO is an expectation over q: decoding z = mu gives a plug-in value, not the ELBO, so
  -ELBO = nll_mc + kl, not bce(decoder(mu)) + kl. Draws are seeded per image from (seed,
  image index) on the CPU: the same numbers on rerun, on any device and at any batch size.
- VQ-VAE has a deterministic posterior and no KL term in its objective: all three are NaN
  (a constant log K per code position would be a code length, not a KL, and it made the
  tables print a rate for VQ-VAE that the study cannot measure).
The reconstruction itself stays deterministic (decoder of mu; VQ-VAE: the quantized code).
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pythae.models import (
    VAE,
    VAEGAN,
    VQVAE,
    AutoModel,
    BetaVAE,
    BetaVAEConfig,
    VAEConfig,
    VAEGANConfig,
    VQVAEConfig,
)
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseDiscriminator, BaseEncoder
from torch import nn

from vaebench import VaebenchError

POSTERIOR_TERMS = ("kl", "nll_mc", "nll_mc_se")
DRAW_SEED_STRIDE = 1_000_003  # per-image seeds of the -ELBO draws: seed * stride + index


def seed_everything(seed: int) -> None:
    """Seed every RNG a job touches (torch, numpy's global state used by sklearn, random)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --- the narrow preset: same shapes as Pythae's CelebA nets, a fraction of the width ---------


def _down(cin: int, cout: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.ReLU())


def _up(cin: int, cout: int) -> nn.Module:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.ReLU())


class SmallEncoder(BaseEncoder):
    """Four stride-2 convs to a 4x4 map, then linear heads for the Gaussian posterior."""

    def __init__(self, args: Any, width: int = 32):
        BaseEncoder.__init__(self)
        c, s = args.input_dim[0], args.input_dim[1]
        self.trunk = nn.Sequential(
            _down(c, width), _down(width, 2 * width), _down(2 * width, 4 * width),
            _down(4 * width, 4 * width), nn.Flatten(),
        )  # fmt: skip
        feat = 4 * width * (s // 16) ** 2
        self.embedding = nn.Linear(feat, args.latent_dim)
        self.log_var = nn.Linear(feat, args.latent_dim)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        h = self.trunk(x)
        return ModelOutput(embedding=self.embedding(h), log_covariance=self.log_var(h))


class SmallDecoder(BaseDecoder):
    """Mirror of SmallEncoder, ending in a sigmoid so outputs are in [0, 1]."""

    def __init__(self, args: Any, width: int = 32):
        BaseDecoder.__init__(self)
        c, s = args.input_dim[0], args.input_dim[1]
        self.width, self.side = width, s // 16
        self.fc = nn.Linear(args.latent_dim, 4 * width * self.side**2)
        self.net = nn.Sequential(
            _up(4 * width, 4 * width), _up(4 * width, 2 * width), _up(2 * width, width),
            nn.ConvTranspose2d(width, c, 4, 2, 1), nn.Sigmoid(),
        )  # fmt: skip

    def forward(self, z: torch.Tensor) -> ModelOutput:
        h = self.fc(z).reshape(z.shape[0], 4 * self.width, self.side, self.side)
        return ModelOutput(reconstruction=self.net(h))


class SmallVQEncoder(BaseEncoder):
    """Four stride-2 convs to an (S/16)x(S/16) grid of latent_dim-dimensional codes.

    The same 4x4 grid at 64 px as Pythae's CelebA ResNet VQ-VAE (a real spatial code grid
    that a PixelCNN prior can model).
    """

    def __init__(self, args: Any, width: int = 32):
        BaseEncoder.__init__(self)
        c = args.input_dim[0]
        self.net = nn.Sequential(
            _down(c, width), _down(width, 2 * width), _down(2 * width, 4 * width),
            _down(4 * width, 4 * width), nn.Conv2d(4 * width, args.latent_dim, 1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> ModelOutput:
        return ModelOutput(embedding=self.net(x))


class SmallVQDecoder(BaseDecoder):
    def __init__(self, args: Any, width: int = 32):
        BaseDecoder.__init__(self)
        c = args.input_dim[0]
        self.net = nn.Sequential(
            nn.Conv2d(args.latent_dim, 4 * width, 1), nn.ReLU(),
            _up(4 * width, 4 * width), _up(4 * width, 2 * width), _up(2 * width, width),
            nn.ConvTranspose2d(width, c, 4, 2, 1), nn.Sigmoid(),
        )  # fmt: skip

    def forward(self, z: torch.Tensor) -> ModelOutput:
        return ModelOutput(reconstruction=self.net(z))


def _down_plain(cin: int, cout: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1), nn.LeakyReLU(0.2))


class SmallDiscriminator(BaseDiscriminator):
    """Pythae's discriminator protocol: `output_layer_levels` selects feature maps (1-based).

    No BatchNorm: VAE-GAN's reconstruction loss matches these feature maps between a batch of
    images and a batch of reconstructions, and BatchNorm in train mode normalises each batch
    by its own statistics, so the loss cannot see a per-channel offset of the whole batch
    (measured on the demo: test SSIM 0.03 with BatchNorm, 0.76 without, same budget)."""

    def __init__(self, args: Any, width: int = 32):
        BaseDiscriminator.__init__(self)
        c, s = args.input_dim[0], args.input_dim[1]
        self.layers = nn.ModuleList(
            [_down_plain(c, width), _down_plain(width, 2 * width),
             _down_plain(2 * width, 4 * width), _down_plain(4 * width, 4 * width),
             nn.Sequential(nn.Flatten(), nn.Linear(4 * width * (s // 16) ** 2, 1), nn.Sigmoid())]
        )  # fmt: skip
        self.depth = len(self.layers)

    def forward(self, x: torch.Tensor, output_layer_levels: list[int] | None = None):
        wanted = set(output_layer_levels or [])
        out = ModelOutput()
        for i, layer in enumerate(self.layers, start=1):
            x = layer(x)
            if i in wanted:
                out[f"embedding_layer_{i}"] = x
        if -1 in wanted:
            out["embedding_layer_-1"] = x
        out["embedding"] = x
        return out


# --- building ---------------------------------------------------------------------------


def _nets(preset: str, model: str, cfg: Any, width: int) -> dict[str, nn.Module]:
    if preset == "small":
        if model == "vqvae":
            return {"encoder": SmallVQEncoder(cfg, width), "decoder": SmallVQDecoder(cfg, width)}
        nets = {"encoder": SmallEncoder(cfg, width), "decoder": SmallDecoder(cfg, width)}
        if model == "vaegan":
            nets["discriminator"] = SmallDiscriminator(cfg, width)
        return nets
    from pythae.models.nn.benchmarks import celeba as pb

    if tuple(cfg.input_dim) != (3, 64, 64):
        raise VaebenchError(
            "network.preset 'celeba64' needs 3x64x64 images; set dataset.image_size: 64 "
            "or use network.preset: small"
        )
    if model == "vqvae":
        return {
            "encoder": pb.Encoder_ResNet_VQVAE_CELEBA(cfg),
            "decoder": pb.Decoder_ResNet_VQVAE_CELEBA(cfg),
        }
    nets = {
        "encoder": pb.Encoder_ResNet_VAE_CELEBA(cfg),
        "decoder": pb.Decoder_ResNet_AE_CELEBA(cfg),
    }
    if model == "vaegan":
        nets["discriminator"] = pb.Discriminator_Conv_CELEBA(cfg)
    return nets


def build(params: dict[str, Any]) -> torch.nn.Module:
    """A fresh Pythae model for one run. Seeds torch first: Pythae seeds only inside train()."""
    seed_everything(params["seed"])
    model, net = params["model"], params["network"]
    common = {"input_dim": (3, params["image_size"], params["image_size"])}
    common["latent_dim"] = net["latent_dim"]
    if model == "vqvae":
        vq = params["vqvae"]
        cfg = VQVAEConfig(
            **common,
            num_embeddings=vq["num_embeddings"],
            commitment_loss_factor=vq["commitment_loss_factor"],
            use_ema=False,  # Pythae 0.1.2's PixelCNN sampler fails with EMA codebooks
        )
        return VQVAE(cfg, **_nets(net["preset"], model, cfg, net["width"]))
    if model == "vaegan":
        g = params["vaegan"]
        cfg = VAEGANConfig(
            **common,
            adversarial_loss_scale=g["adversarial_loss_scale"],
            reconstruction_layer=g["reconstruction_layer"],
            uses_default_discriminator=False,
        )
        return VAEGAN(cfg, **_nets(net["preset"], model, cfg, net["width"]))
    loss = params["training"]["reconstruction_loss"]
    if model == "vae":
        cfg = VAEConfig(**common, reconstruction_loss=loss)
        return VAE(cfg, **_nets(net["preset"], model, cfg, net["width"]))
    cfg = BetaVAEConfig(**common, reconstruction_loss=loss, beta=params["beta"])
    return BetaVAE(cfg, **_nets(net["preset"], model, cfg, net["width"]))


def load(folder: str | Path, device_: torch.device | str = "cpu") -> torch.nn.Module:
    """Load a model folder written by the train job, in eval mode, on `device_`.

    Pythae's folder holds pickled networks (torch.load with weights_only=False), so only
    folders the train job wrote are loaded: they carry its vaebench.json record. The
    workflow passes only its own results/runs/<run>/model folders.
    """
    folder = Path(folder)
    if not (folder / "model.pt").exists():
        raise VaebenchError(f"{folder}: no Pythae model here (missing model.pt); rerun training")
    if not (folder / "vaebench.json").exists():
        raise VaebenchError(
            f"{folder}: not written by vaebench's train job (no vaebench.json); refusing to "
            "unpickle it; train the run with the workflow"
        )
    model = AutoModel.load_from_folder(str(folder))
    model = model.to(device_).eval()
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


@torch.inference_mode()
def encode_decode(model, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic reconstruction and per-image KL (nats, float64) of one batch in [0, 1].

    Gaussian posteriors: decode the posterior mean; KL(q(z|x) || N(0, I)) analytically.
    VQ-VAE: decode the quantized code; KL is NaN (no stochastic posterior, no KL term).
    """
    out = model.encoder(x)
    if isinstance(model, VQVAE):
        recon = model.decoder(_quantized(model, out.embedding)).reconstruction
        return recon.clamp(0, 1), torch.full((x.shape[0],), math.nan, dtype=torch.float64)
    mu, log_var = out.embedding, out.log_covariance
    recon = model.decoder(mu).reconstruction
    kl = -0.5 * torch.sum(1 + log_var - mu.pow(2) - log_var.exp(), dim=-1)
    return recon.clamp(0, 1), kl.double()


def _draws(shape: tuple[int, ...], n: int, seed: int, first: int) -> torch.Tensor:
    """N(0, I) noise (len x n x latent) for images first, first+1, ...: one CPU generator per
    image seeded from (seed, index), so the draws do not depend on batching or device."""
    out = torch.empty((shape[0], n, *shape[1:]))
    for j in range(shape[0]):
        gen = torch.Generator().manual_seed((seed * DRAW_SEED_STRIDE + first + j) % 2**63)
        out[j] = torch.randn((n, *shape[1:]), generator=gen)
    return out


@torch.inference_mode()
def mc_nll(
    model, x: torch.Tensor, n: int, seed: int, first: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """E_q[BCE(decoder(z), x)] per image (nats, float64) from `n` draws z ~ q(z|x), and its
    Monte Carlo standard error; images are indices first, first+1, ... of the evaluated set.
    NaN for VQ-VAE (deterministic posterior); the standard error is NaN when n == 1."""
    from vaebench.metrics import bce_per_image  # one BCE formula for metrics and -ELBO

    nan = torch.full((x.shape[0],), math.nan, dtype=torch.float64)
    if isinstance(model, VQVAE):
        return nan, nan
    out = model.encoder(x)
    mu, std = out.embedding, torch.exp(0.5 * out.log_covariance)
    eps = _draws(tuple(mu.shape), n, seed, first).to(mu.device, mu.dtype)
    nll = torch.stack(
        [
            bce_per_image(model.decoder(mu + std * eps[:, s]).reconstruction.clamp(0, 1), x)
            for s in range(n)
        ],
        dim=1,
    )
    se = nll.std(dim=1, correction=1) / math.sqrt(n) if n > 1 else nan
    return nll.mean(dim=1), se


def elbo_settings(elbo_samples: int, seed: int) -> dict[str, Any]:
    """How kl / neg_elbo / neg_elbo_se / objective were computed, for Parquet metadata."""
    return {
        "kl": "KL(q(z|x) || N(0, I)) analytic, nats/image; null for VQ-VAE (no KL term)",
        "neg_elbo": "E_q[BCE(decoder(z), x)] + KL, Monte Carlo over z ~ q(z|x); null for VQ-VAE",
        "neg_elbo_se": "Monte Carlo standard error of neg_elbo (std / sqrt(samples)); also that "
        "of objective, KL being analytic; null for 1 sample",
        "objective": "E_q[BCE(decoder(z), x)] + beta * KL, same draws",
        "samples": elbo_samples,
        "seed": seed,
        "draws": f"N(0, I), a CPU torch.Generator per image seeded seed * {DRAW_SEED_STRIDE}"
        " + image index",
        "deterministic": "bce, bce_excess, mse, psnr, ssim, ms_ssim, gmsd, lpips use the decoder "
        "of the posterior mean (VQ-VAE: of the quantized code)",
    }


def reconstruct(
    model, images: np.ndarray, *, elbo_samples: int, seed: int, batch_size: int = 64
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Reconstructions (float32 in [0, 1], same order) of uint8 images, and per-image posterior
    terms (float64): {"kl", "nll_mc", "nll_mc_se"} as in the module doc (NaN for VQ-VAE).

    `elbo_samples` draws per image (config metrics.elbo_samples), seeded from `seed`.
    """
    dev = next(model.parameters()).device
    recons, terms = [], {k: [] for k in POSTERIOR_TERMS}
    for i in range(0, len(images), batch_size):
        x = to_float(np.asarray(images[i : i + batch_size])).to(dev)
        r, kl = encode_decode(model, x)
        nll, se = mc_nll(model, x, elbo_samples, seed, first=i)
        recons.append(r.float().cpu().numpy())
        for k, v in zip(POSTERIOR_TERMS, (kl, nll, se), strict=True):
            terms[k].append(v.cpu().numpy())
    return np.concatenate(recons), {k: np.concatenate(v) for k, v in terms.items()}
