"""DINOv2 features, dgm-eval's protocol (Stein et al. 2023), on timm's architecture.

dgm-eval's DINOv2Encoder: each image as a PIL image, `Resize((224, 224), BICUBIC)`,
`ToTensor`, ImageNet normalisation, then the model's output, the CLS token after the final
norm. The weights are Meta's own file (`dinov2_vit?14_pretrain.pth`, the one dgm-eval's
torch.hub call loads); the network is timm's VisionTransformer, so that it builds offline, and
timm's converter maps Meta's keys and resamples the position embedding from 518 px to 224 px
once at load (bicubic; dgm-eval's hub model interpolates it at every forward, so features agree
with dgm-eval's closely, not bitwise). The architecture (width, depth) is read from the file,
so a small random stand-in loads through the same code.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from vaebench.metrics import spaces, weights

SIZE = 224
MEAN = (0.485, 0.456, 0.406)  # ImageNet, as dgm-eval
STD = (0.229, 0.224, 0.225)


def load(space: spaces.Space, cache: str | os.PathLike, device: str | torch.device = "cpu"):
    """timm's DINOv2 ViT at 224 px with the file's weights; eval mode, no gradients."""
    import timm
    from timm.models.vision_transformer import checkpoint_filter_fn

    path = weights.require_weights(cache, weights.BY_KEY[space.weights])
    state = torch.load(path, map_location="cpu", weights_only=True)
    width, depth = state["cls_token"].shape[-1], 1 + max(
        int(k.split(".")[1]) for k in state if k.startswith("blocks.")
    )
    model = timm.create_model(space.arch, pretrained=False, num_classes=0, img_size=SIZE,
                              embed_dim=width, depth=depth, num_heads=width // 64)  # fmt: skip
    model.load_state_dict(checkpoint_filter_fn(state, model))
    return model.to(device).eval().requires_grad_(False)


def preprocess(images: np.ndarray, model=None) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> dgm-eval's input: PIL bicubic resize to 224, [0, 1], ImageNet
    normalisation (the same calls as torchvision's transforms, applied per image)."""
    from PIL import Image

    out = torch.empty((len(images), 3, SIZE, SIZE))
    for i, im in enumerate(images):
        pil = Image.fromarray(np.ascontiguousarray(im.transpose(1, 2, 0)))
        pil = pil.resize((SIZE, SIZE), Image.Resampling.BICUBIC)
        out[i] = torch.from_numpy(np.asarray(pil, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean, std = torch.tensor(MEAN)[:, None, None], torch.tensor(STD)[:, None, None]
    return (out - mean) / std


def embed(model, batch: torch.Tensor) -> torch.Tensor:
    """The final-norm CLS token (timm's num_classes=0, global_pool='token')."""
    return model(batch)
