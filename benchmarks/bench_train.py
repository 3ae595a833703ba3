"""Benchmark: the pipeline's training against a bare PyTorch loop, per model family.

    .venv/bin/python benchmarks/bench_train.py --out results/bench/train.json

pipeline  vaebench.models_train.train: Pythae's trainer (its train_step / eval_step, Adam),
          data feeding from the uint8 array, per-epoch seeding, history, best-model copy,
          checkpoints (every epoch here, the worst case) and the final atomic save.
bare      the same freshly built model, batch size, images and optimizer(s) in a plain loop:
          shuffle indices, slice the uint8 tensor, convert to [0, 1], forward, backward, step
          (VAE-GAN: Pythae's coupled encoder/decoder/discriminator update), then a no-grad
          pass over the validation images, as the pipeline does to pick its best epoch.

train_throughput_ratio_<model> = bare seconds / pipeline seconds (images per second of the
pipeline over those of the bare loop; target >= 0.9 for vae and vqvae). The two alternate,
best of --repeats, in one process.

flop_limit_fraction_<model> = pipeline images/s / the arithmetic limit, where the limit is a
measured float32 matmul rate (1024 x 1024, same threads) divided by the FLOPs of one training
step per image (forward + backward(s), counted by torch.utils.flop_counter on the real model).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from pythae.data.datasets import DatasetOutput

from vaebench import config as vb
from vaebench import data, models, models_train
from vaebench.io import save_json, versions

CONFIG = {
    "dataset": {"name": "shapes"},
    "network": {"preset": "small", "latent_dim": 16, "width": 16},
}


def params_for(model: str, preset: str, epochs: int, batch_size: int) -> dict:
    cfg = vb.validate(
        {
            **CONFIG,
            "models": [model],
            "seeds": [0],
            "network": {**CONFIG["network"], "preset": preset},
            "training": {"epochs": epochs, "batch_size": batch_size, "checkpoint_every": 1},
        }
    )
    return vb.train_params(cfg, vb.runs(cfg)[0])


def pipeline(params: dict, train_x: np.ndarray, val_x: np.ndarray) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        models_train.train(
            params, train_x, val_x, Path(tmp, "model"), Path(tmp, "h.parquet"),
            Path(tmp, "c.pt"), log=lambda *a: None,
        )  # fmt: skip
        return time.perf_counter() - t0


def bare(params: dict, train_x: np.ndarray, val_x: np.ndarray) -> float:
    t0 = time.perf_counter()
    model = models.build(params)
    t = params["training"]
    if params["model"] == "vaegan":
        g = params["vaegan"]
        parts = {
            "encoder": (model.encoder, g["encoder_learning_rate"]),
            "decoder": (model.decoder, g["decoder_learning_rate"]),
            "discriminator": (model.discriminator, g["discriminator_learning_rate"]),
        }
        optims = {k: torch.optim.Adam(m.parameters(), lr=lr) for k, (m, lr) in parts.items()}
    else:
        optims = {"all": torch.optim.Adam(model.parameters(), lr=t["learning_rate"])}
    x, v = torch.from_numpy(train_x), torch.from_numpy(val_x)
    bs = t["batch_size"]
    for epoch in range(1, t["epochs"] + 1):
        model.train()
        order = torch.randperm(len(x))
        for i in range(0, len(x), bs):
            batch = x[order[i : i + bs]].float().div_(255)
            out = model(DatasetOutput(data=batch), epoch=epoch, dataset_size=len(x))
            if "all" in optims:
                optims["all"].zero_grad()
                out.loss.backward()
                optims["all"].step()
            else:  # Pythae's CoupledOptimizerAdversarialTrainer._optimizers_step
                for name in ("encoder", "decoder", "discriminator"):
                    optims[name].zero_grad()
                    getattr(out, f"{name}_loss").backward(retain_graph=name != "discriminator")
                for o in optims.values():
                    o.step()
            out.loss.item()
        model.update()
        model.eval()
        with torch.no_grad():
            for i in range(0, len(v), bs):
                batch = v[i : i + bs].float().div_(255)
                model(DatasetOutput(data=batch), epoch=epoch, dataset_size=len(v)).loss.item()
    return time.perf_counter() - t0


def train_flops_per_image(params: dict, images: np.ndarray) -> float:
    """FLOPs of one training step per image: forward and the family's backward pass(es)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = models.build(params).train()
    x = torch.from_numpy(images).float().div_(255)
    with FlopCounterMode(display=False) as counter:
        out = model(DatasetOutput(data=x), epoch=1, dataset_size=len(x))
        if params["model"] == "vaegan":  # Pythae's three coupled backward passes
            for name in ("encoder", "decoder", "discriminator"):
                getattr(out, f"{name}_loss").backward(retain_graph=name != "discriminator")
        else:
            out.loss.backward()
    return counter.get_total_flops() / len(x)


def matmul_flops_per_second(n: int = 1024, repeats: int = 20) -> float:
    """Best of three timings of `repeats` float32 n x n matmuls: the CPU's arithmetic rate."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 * repeats / best


def measure(
    models_: tuple[str, ...] = ("vae", "vqvae", "vaegan"),
    n_train: int = 2048,
    n_val: int = 256,
    epochs: int = 2,
    batch_size: int = 64,
    preset: str = "small",
    repeats: int = 3,
    threads: int = 2,
) -> dict:
    torch.set_num_threads(threads)
    images, _ = data.shapes(n_train + n_val, seed=0)
    train_x, val_x = images[:n_train], images[n_train:]
    out: dict = {
        "n_train": n_train,
        "n_val": n_val,
        "epochs": epochs,
        "batch_size": batch_size,
        "preset": preset,
        "torch_threads": threads,
        "device": str(models_train.device()),
        "per_model": {},
        "matmul_flops_per_second": matmul_flops_per_second(),
    }
    for model in models_:
        params = params_for(model, preset, epochs, batch_size)
        pipeline(params, train_x[:256], val_x[:64])  # warm-up
        runs = {"pipeline": [], "bare": []}
        for _ in range(repeats):
            runs["pipeline"].append(pipeline(params, train_x, val_x))
            runs["bare"].append(bare(params, train_x, val_x))
        p, b = min(runs["pipeline"]), min(runs["bare"])
        flops = train_flops_per_image(params, train_x[:batch_size])
        limit = out["matmul_flops_per_second"] / flops
        out["per_model"][model] = {
            "pipeline_images_per_second": epochs * n_train / p,
            "bare_images_per_second": epochs * n_train / b,
            "train_flops_per_image": flops,
            "flop_limit_images_per_second": limit,
            "all_seconds": runs,
        }
        out[f"train_throughput_ratio_{model}"] = b / p
        out[f"flop_limit_fraction_{model}"] = epochs * n_train / p / limit
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="vae,vqvae,vaegan")
    ap.add_argument("--n-train", type=int, default=2048)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--preset", default="small", choices=["small", "celeba64"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out")
    args = ap.parse_args()
    result = measure(
        tuple(args.models.split(",")),
        n_train=args.n_train,
        epochs=args.epochs,
        preset=args.preset,
        repeats=args.repeats,
        batch_size=args.batch_size,
        threads=args.threads,
    )
    result["versions"] = versions()
    result["cpu_count"] = os.cpu_count()
    for k, v in result.items():
        if k.startswith(("train_throughput_ratio", "flop_limit_fraction")):
            print(f"{k:<36} {v:.3f}")
    for m, r in result["per_model"].items():
        print(m, {k: round(v, 1) for k, v in r.items() if k != "all_seconds"})
    if args.out:
        save_json(args.out, result)


if __name__ == "__main__":
    main()
