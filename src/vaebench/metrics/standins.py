"""Randomly initialised stand-ins for the metrics' weight files, for offline runs and tests.

Written under the official file names, so the real loaders (torchvision, lpips, piq, timm,
open_clip) read them with no network; `weights.check_weights` reports them as not official and
the tables mark every learned metric computed with them.
"""

from __future__ import annotations

import functools
import io
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from vaebench.io import atomic_path
from vaebench.metrics.weights import (
    ALEXNET,
    CLIP_VITL14_336,
    DINOV2_VITL14,
    DINOV2_VITS14,
    INCEPTION,
    VGG16,
    WEIGHT_FILES,
    record_path,
    weight_path,
)

if TYPE_CHECKING:
    import torch

# ----------------------------------------------------------------------------------------
# Random stand-ins. Each weight tensor is stored as a small random base expanded to its full
# shape: torch.save writes only the base's storage, so the files are a few hundred KB instead
# of 244 MB and 96 MB, and loading copies the expanded values into the real modules.
#
# The base is one random spatial filter per output channel, shared by all input channels,
# (out, 1, kh, kw) -> (out, in, kh, kw). A fully constant tensor, randn((1,) * ndim), is
# smaller still but makes every channel of a layer identical; LPIPS normalises features across
# channels, so it then only sees the sign of one map and stays ~0 under moderate noise and
# blur, i.e. the tests could not check anything. Biases are 0, BatchNorm scales 1.
# Inception (94 conv + BatchNorm layers) would blow up or vanish with fixed statistics, so its
# BatchNorm running mean/var are calibrated on one smooth random 299 px image (rounded to
# float16 so the bytes do not depend on the thread count).
# ----------------------------------------------------------------------------------------


def _tiny_random(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    import torch

    if len(shape) >= 2:
        fan_in = math.prod(shape[1:])
        base = torch.randn((shape[0], 1, *shape[2:]), generator=generator) / math.sqrt(fan_in)
        return base.expand(shape)
    return torch.zeros(1).expand(shape)


def _random_alexnet_state(generator: torch.Generator) -> dict:
    import torch
    import torchvision

    with torch.device("meta"):  # shapes only: skip allocating and initialising 61M parameters
        model = torchvision.models.alexnet(weights=None)
    return {k: _tiny_random(v.shape, generator) for k, v in model.state_dict().items()}


def _random_vgg16_state(generator: torch.Generator) -> dict:
    import torch
    import torchvision

    with torch.device("meta"):  # shapes only: skip allocating and initialising 138M parameters
        model = torchvision.models.vgg16(weights=None)
    return {k: _tiny_random(v.shape, generator) for k, v in model.state_dict().items()}


def _fid_inception_skeleton() -> torch.nn.Module:
    """piq's FID Inception (the pytorch-fid architecture) without loading any weights.

    Mirrors piq.feature_extractors.fid_inception.InceptionV3.fid_inception_v3, which always
    downloads; the strict load through the real piq path checks that keys and shapes agree.
    """
    import torchvision
    from piq.feature_extractors import fid_inception as fi

    inc = torchvision.models.inception_v3(
        weights=None, num_classes=1008, aux_logits=False, init_weights=False
    )
    inc.Mixed_5b = fi.FIDInceptionA(192, pool_features=32)
    inc.Mixed_5c = fi.FIDInceptionA(256, pool_features=64)
    inc.Mixed_5d = fi.FIDInceptionA(288, pool_features=64)
    inc.Mixed_6b = fi.FIDInceptionC(768, channels_7x7=128)
    inc.Mixed_6c = fi.FIDInceptionC(768, channels_7x7=160)
    inc.Mixed_6d = fi.FIDInceptionC(768, channels_7x7=160)
    inc.Mixed_6e = fi.FIDInceptionC(768, channels_7x7=192)
    inc.Mixed_7b = fi.FIDInceptionE1(1280)
    inc.Mixed_7c = fi.FIDInceptionE2(2048)
    return inc


def _random_inception_state(generator: torch.Generator) -> dict:
    import torch
    import torch.nn.functional as F

    with torch.device("meta"):  # shapes only; real tensors come from `state` below
        model = _fid_inception_skeleton()
    state = {}
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            state[k] = torch.zeros((), dtype=torch.long)
        elif k.endswith("running_mean"):
            state[k] = torch.zeros(v.shape)  # replaced by calibration below
        elif k.endswith("running_var"):
            state[k] = torch.ones(v.shape)
        elif v.ndim == 1 and k.endswith("weight"):  # BatchNorm scale
            state[k] = torch.ones(1).expand(v.shape)
        else:
            state[k] = _tiny_random(v.shape, generator)
    model = model.to_empty(device="cpu")
    model.load_state_dict(state)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.momentum = 1.0  # running stats := this batch's stats
    small = torch.rand((1, 3, 8, 8), generator=generator) * 2 - 1
    x = F.interpolate(small, size=(299, 299), mode="bilinear", align_corners=False)
    model.train()
    with torch.no_grad():
        model(x)
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            state[f"{name}.running_mean"] = module.running_mean.half().float()
            state[f"{name}.running_var"] = module.running_var.half().float()
            state[f"{name}.num_batches_tracked"] = torch.zeros((), dtype=torch.long)
    return state


# The feature spaces' files are 0.1 to 1.2 GB: their stand-ins are small networks of the same
# family, patch size and input size (width 128, two blocks), which the loaders build from the
# file's shapes as they build the real ones. Their features say nothing; the code path is real.
STANDIN_WIDTH, STANDIN_DEPTH = 128, 2


def _random_dinov2_state(arch: str):
    def build(generator: torch.Generator) -> dict:
        """A small timm DINOv2 ViT in Meta's file layout (with its mask token), at 518 px."""
        import timm
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**31, (1,), generator=generator)))
            model = timm.create_model(arch, pretrained=False, num_classes=0,
                                      embed_dim=STANDIN_WIDTH, depth=STANDIN_DEPTH,
                                      num_heads=STANDIN_WIDTH // 64)  # fmt: skip
        state = dict(model.state_dict())
        state["mask_token"] = torch.zeros(1, STANDIN_WIDTH)
        return state

    return build


def _random_clip_state(generator: torch.Generator) -> dict:
    """A small open_clip CLIP ViT at 336 px, patch 14, in OpenAI's state-dict layout."""
    import torch
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(2**31, (1,), generator=generator)))
        model = CLIP(embed_dim=64, quick_gelu=True,
                     vision_cfg=CLIPVisionCfg(layers=STANDIN_DEPTH, width=STANDIN_WIDTH,
                                              patch_size=14, image_size=336),
                     text_cfg=CLIPTextCfg(layers=1, width=64, heads=1, context_length=77,
                                          vocab_size=8))  # fmt: skip
    return dict(model.state_dict())


@functools.lru_cache(maxsize=8)
def _random_state(key: str, seed: int) -> dict:
    """Cached: building and calibrating the Inception takes seconds; tests write it often."""
    import torch

    builders = {ALEXNET.key: _random_alexnet_state, INCEPTION.key: _random_inception_state,
                VGG16.key: _random_vgg16_state, CLIP_VITL14_336.key: _random_clip_state,
                DINOV2_VITS14.key: _random_dinov2_state("vit_small_patch14_dinov2"),
                DINOV2_VITL14.key: _random_dinov2_state("vit_large_patch14_dinov2")}  # fmt: skip
    index = [wf.key for wf in WEIGHT_FILES].index(key)
    return builders[key](torch.Generator().manual_seed(seed * 1000 + index))


def write_random_weights(
    cache: str | os.PathLike, seed: int = 0, only: Iterable[str] | None = None
) -> dict[str, Path]:
    """Write randomly initialised stand-ins for the weight files (all, or keys in `only`).

    Deterministic for a seed. This is how tests (and the offline demo) get weights: the real
    torchvision/lpips/piq loaders read them from the hub cache with no network.
    """
    import torch

    keys = {wf.key for wf in WEIGHT_FILES} if only is None else set(only)
    out = {}
    for wf in WEIGHT_FILES:
        if wf.key in keys:
            # Through memory: torch.save names the zip's top folder after the file, and the
            # temporary name is random, which would make the bytes differ between runs.
            buffer = io.BytesIO()
            torch.save(_random_state(wf.key, seed), buffer)
            path = weight_path(cache, wf)
            with atomic_path(path, ".part") as tmp:
                tmp.write_bytes(buffer.getvalue())
            record_path(cache, wf).unlink(missing_ok=True)  # a stand-in is never "downloaded"
            out[wf.key] = path
    return out
