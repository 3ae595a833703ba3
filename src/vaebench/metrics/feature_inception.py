"""Inception-v3 pool3 features, the pytorch-fid protocol (the literature's FID), through piq.

piq's FID Inception is pytorch-fid's network and loads pytorch-fid's weight file; it resizes
its input to 299 x 299 itself (bilinear, align_corners=False) and maps [0, 1] to [-1, 1].
~8 images/s at 64 -> 299 px on two CPU cores: keep N small off a GPU.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import torch

from vaebench.metrics import spaces
from vaebench.metrics.weights import INCEPTION, offline_load

if TYPE_CHECKING:
    from piq.feature_extractors import InceptionV3

FEATURE_DIM = 2048


def load(space: spaces.Space, cache: str | os.PathLike,
         device: str | torch.device = "cpu") -> InceptionV3:  # fmt: skip
    """piq's FID Inception (pytorch-fid weights) returning pool3 features, in eval mode."""
    from piq.feature_extractors import InceptionV3

    with offline_load(cache, INCEPTION):
        model = InceptionV3(output_blocks=[3], resize_input=True, normalize_input=True)
    # channels-last: ~1.5x faster on CPU (the 299 px convolutions dominate)
    model = model.to(device, memory_format=torch.channels_last)
    return model.eval().requires_grad_(False)


def preprocess(images: np.ndarray, model) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> [0, 1] float32; the network resizes and rescales itself."""
    return torch.from_numpy(np.ascontiguousarray(images)).to(torch.float32) / 255.0


def embed(model, batch: torch.Tensor) -> torch.Tensor:
    return model(batch)[0].flatten(1)
