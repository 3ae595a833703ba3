"""Pythae models: network presets, model construction, loading and deterministic inference.

This module (with models_train and models_sample) is the only place that speaks to Pythae.
Everything else sees plain tensors and arrays.

Pythae facts this code relies on (measured on pythae 0.1.2):
- `AutoModel.load_from_folder` returns the model in train mode; BatchNorm then changes the
  output, so `load` calls `.eval()`.
- `reconstruct()`/`embed()` sample z; we decode the posterior mean instead (VQ-VAE: the
  quantized code), so reconstructions are deterministic.
- Forward losses are batch means with model-specific scales: per-image quantities (KL) are
  computed here from the encoder outputs.
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


class SmallDiscriminator(BaseDiscriminator):
    """Pythae's discriminator protocol: `output_layer_levels` selects feature maps (1-based)."""

    def __init__(self, args: Any, width: int = 32):
        BaseDiscriminator.__init__(self)
        c, s = args.input_dim[0], args.input_dim[1]
        self.layers = nn.ModuleList(
            [_down(c, width), _down(width, 2 * width), _down(2 * width, 4 * width),
             _down(4 * width, 4 * width),
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


# --- deterministic inference ------------------------------------------------------------


def to_float(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 images -> float in [0, 1]; floats pass through."""
    x = torch.as_tensor(x)
    return x.float().div_(255) if x.dtype == torch.uint8 else x.float()


@torch.inference_mode()
def encode_decode(model, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic reconstruction and per-image KL (nats) of one batch in [0, 1].

    Gaussian posteriors: decode the posterior mean; KL(q(z|x) || N(0, I)) analytically.
    VQ-VAE: decode the quantized code; its KL against a uniform prior over K codes is the
    constant log(K) per code position (a deterministic one-hot posterior).
    """
    out = model.encoder(x)
    if isinstance(model, VQVAE):
        emb = out.embedding
        flat = emb.ndim == 2
        if flat:
            emb = emb.reshape(emb.shape[0], 1, 1, -1)
        emb = emb.permute(0, 2, 3, 1)
        q = model.quantizer(emb, uses_ddp=False).quantized_vector  # B x D x h x w
        positions = q.shape[2] * q.shape[3]
        q = q.reshape(q.shape[0], -1) if flat else q
        recon = model.decoder(q).reconstruction
        kl = torch.full((x.shape[0],), positions * math.log(model.model_config.num_embeddings))
        return recon.clamp(0, 1), kl.to(torch.float64)
    mu, log_var = out.embedding, out.log_covariance
    recon = model.decoder(mu).reconstruction
    kl = -0.5 * torch.sum(1 + log_var - mu.pow(2) - log_var.exp(), dim=-1)
    return recon.clamp(0, 1), kl.double()


def reconstruct(model, images: np.ndarray, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Reconstructions (float32 in [0, 1], same order) and KL per image of uint8 images."""
    dev = next(model.parameters()).device
    recons, kls = [], []
    for i in range(0, len(images), batch_size):
        x = to_float(np.asarray(images[i : i + batch_size])).to(dev)
        r, k = encode_decode(model, x)
        recons.append(r.float().cpu().numpy())
        kls.append(k.cpu().numpy())
    return np.concatenate(recons), np.concatenate(kls)
