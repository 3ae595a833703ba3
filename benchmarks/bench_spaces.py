"""Benchmark: what each feature space costs per image, against Inception, side by side.

    .venv/bin/python benchmarks/bench_spaces.py --out results/bench/spaces.json

Every space's extractor (vaebench.metrics.features: the protocol's preprocessing, then the
network) on the same N uint8 64 px images, in one process, at the real networks' sizes with
random weights (the cost does not depend on the values): Inception-v3 (the stand-in file's
full-size network), DINOv2 ViT-S/14 and ViT-L/14 at 224 px (timm), CLIP ViT-L/14@336
(open_clip). `space_cost_ratio_<space>` = seconds per image on that space / on Inception,
on the device given (the CPU with --threads threads, or CUDA where usable with --device cuda):
how much a study's generation metrics grow when the space is added. The seconds are context.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from vaebench.io import save_json, versions
from vaebench.metrics import features, spaces, standins


def full_size(space: str, cache: str, device: str):
    """The space's network at its real size, random weights."""
    sp = spaces.BY_KEY[space]
    if sp.module == "inception":
        return features.extractor(space).load(sp, cache, device)
    if sp.module == "dinov2":
        import timm

        model = timm.create_model(sp.arch, pretrained=False, num_classes=0, img_size=224)
    else:
        import open_clip

        model = open_clip.create_model(sp.arch, pretrained=None)
    return model.to(device).eval().requires_grad_(False)


@torch.inference_mode()
def seconds_per_image(space: str, model, images: np.ndarray, batch: int, device: str) -> float:
    mod = features.extractor(space)
    mod.embed(model, mod.preprocess(images[:1], model).to(device))  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for i in range(0, len(images), batch):
        mod.embed(model, mod.preprocess(images[i : i + batch], model).to(device)).cpu()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / len(images)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=16, help="images per space")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.n, 3, 64, 64), dtype=np.uint8)
    result: dict = {"threads": args.threads, "device": args.device, "n": args.n,
                    "batch_size": args.batch_size, "seconds_per_image": {}}  # fmt: skip
    with tempfile.TemporaryDirectory() as cache:
        standins.write_random_weights(cache, only=["inception"])
        for space in spaces.KEYS:
            model = full_size(space, cache, args.device)
            s = seconds_per_image(space, model, images, args.batch_size, args.device)
            result["seconds_per_image"][space] = s
            print(f"{space}: {s:.3f} s/image", flush=True)
            del model
    base = result["seconds_per_image"][spaces.INCEPTION]
    for space, s in result["seconds_per_image"].items():
        if space != spaces.INCEPTION:
            result[f"space_cost_ratio_{space}"] = s / base
    result["versions"] = versions()
    save_json(args.out, result)


if __name__ == "__main__":
    main()
