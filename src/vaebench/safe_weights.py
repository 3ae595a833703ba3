"""Model weights without pickles: the one module that speaks to safetensors.

Pythae saves a model as `model.pt` plus `encoder.pkl`/`decoder.pkl`, the networks pickled by
value, so loading a Pythae folder (`AutoModel.load_from_folder`, `allow_pickle=True` on the
Hub) runs whatever code those files hold. A vaebench model needs none of that code: its
networks are vaebench's `small` preset or Pythae's benchmark classes, rebuilt from the train
job's record (`vaebench.json`, the run's params) by `vaebench.models.build`. So the publish
job writes `model.safetensors` beside Pythae's files, converted from `model.pt` with
`torch.load(weights_only=True)` (a dict of tensors: no code runs), and `load` rebuilds the
model from the record and fills it from that file: no byte is unpickled on either side.

Beside the state dict, Pythae's RHVAE saves its learned metric (`M`, `centroids`) as plain
tensors in `model.pt`; they are stored under `pythae_extra.<name>` and restored to the
attributes Pythae's own loader sets. Any other entry, or a custom RHVAE metric (metric.pkl),
is refused in one line rather than dropped.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from vaebench import VaebenchError, io

FILE = "model.safetensors"
RECORD = "vaebench.json"
EXTRA = "pythae_extra."
# model.pt entries beside the state dict -> the model attribute Pythae's loader sets (RHVAE)
EXTRAS = {"M": "M_tens", "centroids": "centroids_tens"}


def write(model_pt: str | Path, out: str | Path) -> None:
    """Convert Pythae's `model.pt` into `out` (safetensors), atomically."""
    model_pt = Path(model_pt)
    if (model_pt.parent / "metric.pkl").exists():
        raise VaebenchError(f"{model_pt.parent}: a custom RHVAE metric (metric.pkl) is code, "
                            "not weights; it has no pickle-free form")  # fmt: skip
    blob = torch.load(model_pt, map_location="cpu", weights_only=True)
    unknown = sorted(set(blob) - {"model_state_dict", *EXTRAS})
    if unknown:
        raise VaebenchError(f"{model_pt}: entries {unknown} beside the state dict have no "
                            "pickle-free form (vaebench.safe_weights.EXTRAS)")  # fmt: skip
    tensors = {k: v.detach().clone().contiguous() for k, v in blob["model_state_dict"].items()}
    tensors |= {EXTRA + k: blob[k].detach().clone().contiguous() for k in EXTRAS if k in blob}
    with io.atomic_path(out) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", "written_by": "vaebench"})


def load(folder: str | Path, device: torch.device | str = "cpu") -> torch.nn.Module:
    """A vaebench model folder (a run's or a publication) from `model.safetensors` and the
    train job's record, in eval mode on `device`; nothing in the folder is unpickled."""
    from vaebench import models

    folder = Path(folder)
    for name in (FILE, RECORD):
        if not (folder / name).exists():
            raise VaebenchError(f"{folder}: no {name}; publish the run again with this "
                                "vaebench to get the pickle-free files")  # fmt: skip
    params = json.loads((folder / RECORD).read_text())["config"]
    model = models.build(params)
    tensors = load_file(str(folder / FILE))
    extras = {k.removeprefix(EXTRA): tensors.pop(k) for k in list(tensors) if k.startswith(EXTRA)}
    model.load_state_dict(tensors, strict=True)
    model = model.to(device).eval()
    for key, value in extras.items():
        setattr(model, EXTRAS[key], value.to(device))
    model.device = str(device)
    return model
