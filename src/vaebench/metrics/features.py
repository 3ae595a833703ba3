"""Images to feature vectors on any feature space of vaebench.metrics.spaces: one entry point.

Each extractor module (feature_inception, feature_dinov2, feature_clip) has the same three
functions: `load` (the network from the staged weight file, eval mode), `preprocess` (uint8
images to the network's input, as its reference protocol does it) and `embed`.
"""

from __future__ import annotations

import importlib
import os

import numpy as np
import torch

from vaebench.metrics import spaces


def to_uint8(images) -> np.ndarray:
    """Images as the protocols read them, 8-bit: uint8 as is, float in [0, 1] rounded."""
    a = np.asarray(images)
    if a.dtype == np.uint8:
        return a
    return (np.clip(a, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def extractor(space: str):
    """The extractor module of a space."""
    return importlib.import_module(f"vaebench.metrics.feature_{spaces.BY_KEY[space].module}")


@torch.inference_mode()
def extract(space: str, images, cache: str | os.PathLike,
            device: str | torch.device = "cpu", batch_size: int = 32) -> np.ndarray:  # fmt: skip
    """(N, D) float64 features of (N, 3, H, W) images on `space`, in batches of `batch_size`."""
    images = to_uint8(images)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected N x 3 x H x W images, got shape {images.shape}")
    mod = extractor(space)
    model = mod.load(spaces.BY_KEY[space], cache, device)
    feats = []
    for i in range(0, len(images), batch_size):
        batch = mod.preprocess(images[i : i + batch_size], model).to(device)
        feats.append(mod.embed(model, batch).double().cpu().numpy())
    return np.concatenate(feats) if feats else np.empty((0, 0))
