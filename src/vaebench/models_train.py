"""Training one run with Pythae's trainers, driven epoch by epoch by our own loop.

Pythae's `train()` cannot resume, writes to a timestamped folder, keeps losses on stderr
and re-seeds once at the start. We keep its trainers (their optimizers and `train_step` /
`eval_step`, including VAE-GAN's coupled-optimizer adversarial steps) and own the loop:
- every epoch starts by seeding all RNGs from (seed, epoch), so a run resumed from an
  epoch-boundary checkpoint continues with exactly the random stream it would have had;
- one history row per epoch (train/eval losses, VAE-GAN's per-part losses, val_mse, seconds);
- one rule picks the kept model for every family (config training.checkpoint): `last`, the
  final epoch, or `best_val_mse`, the epoch with the lowest pixel MSE of the deterministic
  reconstruction (decoder of the posterior mean; VQ-VAE: the quantized code) on the
  validation split. Pythae keeps the epoch with the lowest validation *loss*, and that loss
  is a different quantity per family (the ELBO for VAEs, an adversarial sum in a moving
  feature space for VAE-GAN, MSE plus codebook terms for VQ-VAE), so families would be
  selected by incomparable criteria. val_mse is recorded every epoch in either mode, and the
  rule and the kept epoch go to the model folder's vaebench.json ("training");
- a checkpoint (model, optimizers, best model, history, epoch) every `checkpoint_every`
  epochs and when SIGTERM arrives (SLURM's warning before a kill);
- a NaN or infinite loss stops the run with one line naming run, epoch and last finite loss.
"""

from __future__ import annotations

import copy
import math
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pythae import trainers
from pythae.data.datasets import DatasetOutput

from vaebench import VaebenchError, families, io
from vaebench.models import (
    build,
    encode_decode,
    family,
    pythae_config,
    seed_everything,
    to_float,
)
from vaebench.runtime import device

CHECKPOINT_RULES = ("last", "best_val_mse")
OPTIMIZERS = ("optimizer", "autoencoder_optimizer", "encoder_optimizer", "decoder_optimizer",
              "discriminator_optimizer")  # fmt: skip
# every trainer's per-part losses: one column each in every history.parquet (NaN where absent)
PARTS = tuple(dict.fromkeys(p for t in families.TRAINERS.values() for p in t.parts))


class Uint8Images(torch.utils.data.Dataset):
    """uint8 N x C x H x W images held once in memory, converted to [0, 1] per item."""

    def __init__(self, images: np.ndarray):
        self.x = torch.from_numpy(np.ascontiguousarray(images))

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> DatasetOutput:
        return DatasetOutput(data=to_float(self.x[i]))


class DeviceBatches:
    """The trainers' data loaders: uint8 images moved to the device once, each batch a slice
    (shuffled for training) converted to [0, 1] there. No DataLoader, workers, per-item
    indexing or collation: on a GPU a batch costs one gather and one conversion kernel.

    Shuffling draws from torch's global generator, which our loop seeds at every epoch.
    Pythae reads `len(loader)` (batches) and `len(loader.dataset)` (images). A last batch of
    one image joins the batch before it: FactorVAE splits each batch in two, and β-TC-VAE's
    and the MMD families' estimators need two images.
    """

    def __init__(
        self,
        images: np.ndarray,
        batch_size: int,
        shuffle: bool,
        device_,
        memory_format: torch.memory_format = torch.contiguous_format,
    ):
        self.dataset = torch.from_numpy(np.ascontiguousarray(images)).to(device_)
        self.batch_size, self.shuffle, self.memory_format = batch_size, shuffle, memory_format

    def _starts(self) -> list[int]:
        n, bs = len(self.dataset), self.batch_size
        starts = list(range(0, n, bs))
        return starts[:-1] if len(starts) > 1 and n - starts[-1] == 1 else starts

    def __len__(self) -> int:
        return len(self._starts())

    def __iter__(self):
        n, starts = len(self.dataset), self._starts()
        order = torch.randperm(n).to(self.dataset.device) if self.shuffle else None
        for i, end in zip(starts, [*starts[1:], n], strict=True):
            batch = self.dataset[order[i:end]] if order is not None else self.dataset[i:end]
            batch = to_float(batch).contiguous(memory_format=self.memory_format)
            yield DatasetOutput(data=batch)


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % 2**31


def make_trainer(model, params: dict, train_x: np.ndarray, val_x: np.ndarray, workdir: Path):
    """The Pythae trainer of the model's family (families.TRAINERS, as Pythae's training
    pipeline picks it): the base trainer at training.learning_rate, or the adversarial and
    coupled-optimizer trainers at the per-part learning rates of the family's section.
    RAE-L2's decoder gets weight decay reg_weight (Family.decoder_weight_decay), as in
    Pythae's pipeline."""
    t, fam = params["training"], family(model)
    kwargs: dict[str, Any] = dict(
        output_dir=str(workdir),
        num_epochs=t["epochs"],
        per_device_train_batch_size=t["batch_size"],
        per_device_eval_batch_size=t["batch_size"],
        seed=params["seed"],
        no_cuda=device().type != "cuda",
        # One process, whatever the environment says: Pythae's config takes WORLD_SIZE, RANK
        # and LOCAL_RANK from the environment when these are -1, and a stray WORLD_SIZE > 1
        # (a launcher's, a SLURM prolog's) would put the trainer in distributed mode and hang
        # it in init_process_group, while a stray RANK > 0 would skip its saving.
        world_size=1,
        rank=0,
        local_rank=0,
    )
    section = params.get(fam.key, {})
    if fam.trainer == "base":
        kwargs["learning_rate"] = t["learning_rate"]
    kwargs.update({k: v for k, v in section.items() if k.endswith("_learning_rate")})
    if fam.decoder_weight_decay:
        kwargs["decoder_optimizer_params"] = {"weight_decay": section["reg_weight"]}
    name = families.TRAINERS[fam.trainer].cls
    cfg = pythae_config(getattr(trainers, f"{name}Config"), kwargs, fam.key)
    train_ds, val_ds = Uint8Images(train_x), Uint8Images(val_x)  # for Pythae's sanity check
    trainer = getattr(trainers, name)(model, train_ds, val_ds, training_config=cfg)
    # CUDA-only speed options, off by default until measured on the user's GPU
    cuda = device().type == "cuda"
    if cuda and t["bf16_autocast"]:
        trainer.amp_context = torch.autocast("cuda", dtype=torch.bfloat16)
    layout = torch.channels_last if cuda and t["channels_last"] else torch.contiguous_format
    model.to(memory_format=layout)
    trainer.train_loader = DeviceBatches(train_x, t["batch_size"], True, device(), layout)
    trainer.eval_loader = DeviceBatches(val_x, t["batch_size"], False, device(), layout)
    return trainer


@torch.inference_mode()
def val_mse(model, loader: DeviceBatches) -> float:
    """Mean over validation images of the per-image pixel MSE (mean over C*H*W) of the
    deterministic reconstruction, computed in eval mode; the model's mode is restored. Draws
    no random numbers, so it leaves the training stream (and resumes) unchanged."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in loader:
        x = batch["data"]
        r, _ = encode_decode(model, x)
        total += float((r - x).square().flatten(1).mean(1, dtype=torch.float64).sum())
        count += len(x)
    model.train(was_training)
    return total / count


def _losses(out, trainer: str) -> tuple[float, dict[str, float]]:
    """Pythae returns a float, or (total, *parts) with the parts of families.TRAINERS."""
    if isinstance(out, tuple):
        parts = families.TRAINERS[trainer].parts
        return float(out[0]), dict(zip(parts, map(float, out[1:]), strict=True))
    return float(out), {}


class _Terminated(Exception):
    pass


def train(
    params: dict[str, Any],
    train_x: np.ndarray,
    val_x: np.ndarray,
    model_dir: str | Path,
    history_path: str | Path,
    checkpoint_path: str | Path,
    log=print,
) -> dict[str, Any]:
    """Train one run; write the kept model folder and history.parquet atomically.

    Returns a summary (checkpoint rule, kept epoch and its val_mse, epochs run, seconds,
    resumed-from epoch), also stored as "training" in the model's vaebench.json.
    """
    import pandas as pd

    run, seed = params["run"], params["seed"]
    epochs, every = params["training"]["epochs"], params["training"]["checkpoint_every"]
    rule = params["training"]["checkpoint"]
    if rule not in CHECKPOINT_RULES:
        raise VaebenchError(f"training.checkpoint: {rule!r} is not one of {CHECKPOINT_RULES}")
    checkpoint_path = Path(checkpoint_path)
    model = build(params)
    Path(model_dir).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".pythae-", dir=Path(model_dir).parent) as work:
        trainer = make_trainer(model, params, train_x, val_x, Path(work))
        trainer.prepare_training()
        optims = {n: getattr(trainer, n) for n in OPTIMIZERS if getattr(trainer, n, None)}

        state = {"epoch": 0, "history": [], "best_val_mse": math.inf, "best_epoch": 0}
        best_weights = None  # kept weights of the best val_mse epoch (best_val_mse only)
        start = _load_checkpoint(checkpoint_path, params, model, optims)
        if start is not None:
            state, best_weights = start
            log(f"{run}: resuming from the checkpoint at epoch {state['epoch']}")
        resumed_from = state["epoch"]

        def snapshot() -> dict:
            return {
                "params": params,
                "state": copy.deepcopy(state),
                "model": copy.deepcopy(model.state_dict()),
                "best": best_weights,
                "optimizers": {n: copy.deepcopy(o.state_dict()) for n, o in optims.items()},
            }

        last = snapshot()

        def on_term(signum, frame):  # SLURM sends SIGTERM before killing a job
            raise _Terminated

        previous = signal.signal(signal.SIGTERM, on_term)
        try:
            for epoch in range(state["epoch"] + 1, epochs + 1):
                seed_everything(epoch_seed(seed, epoch))
                t0 = time.perf_counter()
                try:
                    kind = family(model).trainer
                    train_loss, parts = _losses(trainer.train_step(epoch), kind)
                    eval_loss, _ = _losses(trainer.eval_step(epoch), kind)
                except (ArithmeticError, RuntimeError) as err:
                    # Pythae raises ArithmeticError on NaN losses; torch's BCE raises "should
                    # be between 0 and 1" on NaN outputs. Any other error is a real bug.
                    nan_output = "between 0 and 1" in str(err) or not _finite(model)
                    if isinstance(err, RuntimeError) and not nan_output:
                        raise
                    train_loss = eval_loss = math.nan
                seconds = time.perf_counter() - t0
                _check_diverged(run, epoch, train_loss, eval_loss, state["history"])
                mse = val_mse(model, trainer.eval_loader)
                row = {"epoch": epoch, "train_loss": train_loss, "eval_loss": eval_loss}
                row.update({p: parts.get(p, math.nan) for p in PARTS})
                row.update(val_mse=mse, seconds=seconds)
                state["history"].append(row)
                if rule == "best_val_mse" and mse < state["best_val_mse"]:
                    state["best_val_mse"], state["best_epoch"] = mse, epoch
                    best_weights = copy.deepcopy(model.state_dict())
                state["epoch"] = epoch
                log(f"{run}: epoch {epoch}/{epochs} train {train_loss:.4f} "
                    f"eval {eval_loss:.4f} val_mse {mse:.5f} ({seconds:.1f} s)")  # fmt: skip
                last = snapshot()
                if epoch % every == 0 and epoch < epochs:
                    _save_checkpoint(checkpoint_path, last)
        except _Terminated:
            _save_checkpoint(checkpoint_path, last)
            raise VaebenchError(
                f"{run}: stopped by SIGTERM; checkpoint of epoch {last['state']['epoch']} "
                f"saved to {checkpoint_path}, the next attempt resumes from it"
            ) from None
        finally:
            signal.signal(signal.SIGTERM, previous)

        kept = state["best_epoch"] if rule == "best_val_mse" else epochs
        if rule == "best_val_mse":
            if best_weights is None:
                raise VaebenchError(f"{run}: no epoch had a finite validation MSE to keep")
            model.load_state_dict(best_weights)
        meta = io.provenance(params, device=str(device()))
        summary = {
            "run": run,
            "checkpoint": rule,
            "kept_epoch": kept,
            "kept_val_mse": state["history"][kept - 1]["val_mse"],
            "epochs": epochs,
            "resumed_from_epoch": resumed_from,
            "train_seconds": sum(r["seconds"] for r in state["history"]),
        }
        meta["training"] = summary
        history = pd.DataFrame(state["history"])
        history.insert(0, "run", run)
        with io.atomic_dir(model_dir) as tmp:
            model.save(str(tmp))
            io.save_json(Path(tmp) / "vaebench.json", meta)
        io.save_parquet(history_path, history, meta)
    if checkpoint_path.exists():
        checkpoint_path.unlink()
    return summary


def _finite(model) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


# A run has diverged when a loss is not finite or when it exploded: EXPLODED times its first
# epoch's train loss (the VAMP whose eval loss reached 1e23 with the demo's learning rate).
EXPLODED = 1e4


class Diverged(VaebenchError):
    """A diverged run (the rules above): it stops; `epoch` and `last_finite` say where."""

    def __init__(self, message: str, epoch: int, last_finite: float | None):
        super().__init__(message)
        self.epoch, self.last_finite = epoch, last_finite


def _check_diverged(run: str, epoch: int, train_loss: float, eval_loss: float, history) -> None:
    """Raise Diverged on a non-finite loss or one EXPLODED times the first epoch's train loss
    (this epoch's, at epoch 1)."""
    first = abs(history[0]["train_loss"]) if history else abs(train_loss)
    worst = max(abs(train_loss), abs(eval_loss))
    if math.isfinite(train_loss) and math.isfinite(eval_loss):
        if worst <= EXPLODED * max(first, 1e-12):
            return
        raise Diverged(
            f"{run}: diverged at epoch {epoch}: loss exploded (train {train_loss:.4g}, eval "
            f"{eval_loss:.4g}, more than {EXPLODED:g} times the first epoch's train loss "
            f"{first:.4g}); lower training.learning_rate (or the family's *_learning_rate) "
            "and rerun",
            epoch,
            train_loss,
        )
    last = next((r["train_loss"] for r in reversed(history)), None)
    last_txt = f"{last:.6g} at epoch {epoch - 1}" if last is not None else "none (first epoch)"
    raise Diverged(
        f"{run}: diverged at epoch {epoch} (train loss {train_loss}, eval loss {eval_loss}); "
        f"last finite train loss: {last_txt}; lower training.learning_rate and rerun",
        epoch,
        last,
    )


def _save_checkpoint(path: Path, snap: dict) -> None:
    with io.atomic_path(path, ".pt") as tmp:
        torch.save(snap, tmp)


def _load_checkpoint(path: Path, params: dict, model, optims: dict):
    """(state, best_weights) from a checkpoint of the same params, else None."""
    if not path.exists():
        return None
    snap = torch.load(path, map_location="cpu", weights_only=True)
    if snap.get("params") != params:
        os.unlink(path)  # written under other settings: not ours to continue
        return None
    model.load_state_dict(snap["model"])
    for name, opt in optims.items():
        opt.load_state_dict(snap["optimizers"][name])
    return snap["state"], snap["best"]
