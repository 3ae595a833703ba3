"""CLIP image embeddings, CMMD's protocol (Jayasumana et al. 2024), through open_clip.

CMMD embeds images with CLIP ViT-L/14@336 and compares L2-normalised image embeddings. Here
open_clip builds the network from OpenAI's own file (`ViT-L-14-336px.pt`, whose URL carries its
SHA-256), with quick GELU, in float32; the input is open_clip's preprocess for that model
(PIL bicubic resize of the shorter side to 336, centre crop, CLIP normalisation). The
architecture is read from the file, so a small random stand-in loads through the same code.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import torch

from vaebench.io import sha256_file
from vaebench.metrics import spaces, weights


def _state(path, wf: weights.WeightFile) -> dict:
    """OpenAI's file is a TorchScript archive, read (as open_clip does) only when its SHA-256
    is OpenAI's; any other file, such as a stand-in, as a plain state dict, weights only."""
    if sha256_file(path) == wf.sha256:
        with warnings.catch_warnings():  # torch.jit.load's deprecation notice
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.load(str(path), map_location="cpu").state_dict()
    return torch.load(path, map_location="cpu", weights_only=True)


def load(space: spaces.Space, cache: str | os.PathLike, device: str | torch.device = "cpu"):
    """open_clip's CLIP built from the file's state dict, float32, eval mode."""
    from open_clip.model import build_model_from_openai_state_dict

    wf = weights.BY_KEY[space.weights]
    path = weights.require_weights(cache, wf)
    model = build_model_from_openai_state_dict(_state(path, wf), quick_gelu=True, cast_dtype=None)
    return model.float().to(device).eval().requires_grad_(False)


def transform(model):
    """open_clip's own inference preprocess for this model (OpenAI's mean and std)."""
    import open_clip

    return open_clip.image_transform(model.visual.image_size, is_train=False,
                                     mean=open_clip.OPENAI_DATASET_MEAN,
                                     std=open_clip.OPENAI_DATASET_STD)  # fmt: skip


def preprocess(images: np.ndarray, model) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> open_clip's input tensors, one PIL image at a time."""
    from PIL import Image

    t = transform(model)
    return torch.stack([t(Image.fromarray(np.ascontiguousarray(im.transpose(1, 2, 0))))
                        for im in images])  # fmt: skip


def embed(model, batch: torch.Tensor) -> torch.Tensor:
    """L2-normalised image embeddings, as CMMD compares them."""
    return torch.nn.functional.normalize(model.encode_image(batch), dim=-1)
