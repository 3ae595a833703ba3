"""Encoder, decoder and discriminator networks for each family's encoder kind and preset.

`celeba64` takes Pythae's own CelebA benchmark nets (pythae.models.nn.benchmarks.celeba), as
Pythae's paper does; `small` is a narrow net of the same shapes for CPU studies and tests.
Pythae pickles custom nets by value when it saves a model, so these classes can move without
breaking saved models.
"""

from __future__ import annotations

from typing import Any

import torch
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseDiscriminator, BaseEncoder
from torch import nn

from vaebench import VaebenchError
from vaebench.families import Family

# --- the narrow preset: same shapes as Pythae's CelebA nets, a fraction of the width ---------


def _down(cin: int, cout: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.ReLU())


def _up(cin: int, cout: int) -> nn.Module:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.ReLU())


class SmallEncoder(BaseEncoder):
    """Four stride-2 convs to a 4x4 map, then linear heads for the Gaussian posterior (mean
    and log-variance), or one head for a deterministic encoder (`variance=False`)."""

    def __init__(self, args: Any, width: int = 32, variance: bool = True):
        BaseEncoder.__init__(self)
        c, s = args.input_dim[0], args.input_dim[1]
        self.trunk = nn.Sequential(
            _down(c, width), _down(width, 2 * width), _down(2 * width, 4 * width),
            _down(4 * width, 4 * width), nn.Flatten(),
        )  # fmt: skip
        feat = 4 * width * (s // 16) ** 2
        self.embedding = nn.Linear(feat, args.latent_dim)
        self.log_var = nn.Linear(feat, args.latent_dim) if variance else None

    def forward(self, x: torch.Tensor) -> ModelOutput:
        h = self.trunk(x)
        if self.log_var is None:
            return ModelOutput(embedding=self.embedding(h))
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


# --- both presets ---------------------------------------------------------------------


def build(preset: str, fam: Family, cfg: Any, width: int) -> dict[str, nn.Module]:
    """Encoder and decoder for the family's encoder kind (plus VAE-GAN's image discriminator);
    Adversarial AE and FactorVAE build their own latent discriminators in Pythae."""
    gan = fam.trainer == "coupled_adversarial"
    if preset == "small":
        if fam.encoder == "vector_quantised":
            return {"encoder": SmallVQEncoder(cfg, width), "decoder": SmallVQDecoder(cfg, width)}
        nets = {"encoder": SmallEncoder(cfg, width, variance=fam.encoder == "gaussian"),
                "decoder": SmallDecoder(cfg, width)}  # fmt: skip
        if gan:
            nets["discriminator"] = SmallDiscriminator(cfg, width)
        return nets
    from pythae.models.nn.benchmarks import celeba as pb

    if tuple(cfg.input_dim) != (3, 64, 64):
        raise VaebenchError(
            "network.preset 'celeba64' needs 3x64x64 images; set dataset.image_size: 64 "
            "or use network.preset: small"
        )
    if fam.encoder == "vector_quantised":
        return {
            "encoder": pb.Encoder_ResNet_VQVAE_CELEBA(cfg),
            "decoder": pb.Decoder_ResNet_VQVAE_CELEBA(cfg),
        }
    gaussian = fam.encoder == "gaussian"
    encoder = pb.Encoder_ResNet_VAE_CELEBA if gaussian else pb.Encoder_ResNet_AE_CELEBA
    nets = {"encoder": encoder(cfg), "decoder": pb.Decoder_ResNet_AE_CELEBA(cfg)}
    if gan:
        nets["discriminator"] = pb.Discriminator_Conv_CELEBA(cfg)
    return nets
