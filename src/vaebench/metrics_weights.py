"""Pretrained weights for the metrics: staging, checking, and tiny random stand-ins.

Three files feed the metrics: torchvision's AlexNet (the LPIPS trunk; lpips ships only its
linear layers), torchvision's VGG16 (the DISTS trunk; torchmetrics ships DISTS's α and β, the
authors' weights.pt) and pytorch-fid's Inception (FID/KID/precision-recall features, loaded
by piq from the same file). All live in a torch-hub cache, `<cache>/hub/checkpoints/<file>`, so
that pointing torch.hub at `<cache>` (TORCH_HOME=<cache>) makes torchvision, lpips and piq
load them with no network.

torch.hub checks a file's hash only when it downloads it; a file already in the cache is
loaded as is. So we hash staged files ourselves and report whether they are the official
ones. Downloads happen only in `stage_weights` (one local rule, on a machine with network);
compute jobs call `check_weights`, which never touches the network.

Offline, the demo config (and every test) uses randomly initialised weights written by
`write_random_weights`. Metric values are then meaningless but the real loading code runs.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import os
import socket
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vaebench import VaebenchError
from vaebench.io import atomic_path, save_json, sha256_file
from vaebench.metric_registry import LEARNED_TEXT

if TYPE_CHECKING:  # torch is imported inside functions: `import vaebench.config` stays light
    import torch

STAGE_COMMAND = ".venv/bin/snakemake --cores 1 stage_weights --configfile <your config>"
# the way to run without the files, named wherever a user meets their absence
OFFLINE_HINT = (
    "or, to run offline without them, set `weights.allow_random: true` in the config: "
    f"randomly initialised stand-ins, so {LEARNED_TEXT} read 'n/a (stand-in weights)' while "
    "every other metric is real"
)
DOWNLOAD_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class WeightFile:
    key: str
    name: str
    url: str
    sha256: str  # of the official file; its first 8 hex digits are the suffix of `name`
    size: int  # bytes of the official file (for messages)
    purpose: str


# Full SHA-256s as recorded by several independent public projects that pin these files; each
# starts with the 8-hex suffix that torch.hub puts in the file name.
ALEXNET = WeightFile(
    key="alexnet",
    name="alexnet-owt-7be5be79.pth",
    url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    sha256="7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",
    size=244_408_911,
    purpose="LPIPS AlexNet trunk (torchvision)",
)
INCEPTION = WeightFile(
    key="inception",
    name="pt_inception-2015-12-05-6726825d.pth",
    url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
    "pt_inception-2015-12-05-6726825d.pth",
    sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
    size=95_628_359,
    purpose="FID Inception (pytorch-fid, loaded by piq)",
)
VGG16 = WeightFile(
    key="vgg16",
    name="vgg16-397923af.pth",
    url="https://download.pytorch.org/models/vgg16-397923af.pth",
    sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
    size=553_433_881,
    purpose="DISTS VGG16 trunk (torchvision)",
)
WEIGHT_FILES = (ALEXNET, INCEPTION, VGG16)
assert all(w.sha256.startswith(w.name.rsplit("-", 1)[1][:8]) for w in WEIGHT_FILES)


def needed(dists: bool = True) -> tuple[WeightFile, ...]:
    """The files a study's metrics need: VGG16 only when it computes DISTS (metrics.dists)."""
    return tuple(wf for wf in WEIGHT_FILES if dists or wf is not VGG16)


def weight_path(cache: str | os.PathLike, wf: WeightFile) -> Path:
    return Path(cache) / "hub" / "checkpoints" / wf.name


def _missing_message(path: Path, wf: WeightFile) -> str:
    return (
        f"missing pretrained weights {path} ({wf.purpose}): run `{STAGE_COMMAND}` on a machine "
        f"with network, or download {wf.url} ({wf.size / 1e6:.0f} MB) to that path by hand, "
        f"{OFFLINE_HINT}"
    )


def require_weights(cache: str | os.PathLike, wf: WeightFile) -> Path:
    """The path of `wf` in `cache`, or a one-line VaebenchError saying how to fetch it."""
    path = weight_path(cache, wf)
    if not path.is_file():
        raise VaebenchError(_missing_message(path, wf))
    return path


@contextlib.contextmanager
def hub_dir(cache: str | os.PathLike) -> Iterator[Path]:
    """Point torch.hub (and TORCH_HOME) at `<cache>/hub` for the duration; restore after.

    torch.hub.set_dir wins over TORCH_HOME once anything has called it, so we set both and
    put back the previous values, leaving the rest of the process as we found it. Inside,
    every torch.load is weights_only (TORCH_FORCE_WEIGHTS_ONLY_LOAD): torchvision and piq load
    the cached AlexNet / Inception files through torch.hub, whose default unpickles anything.
    """
    import torch.hub

    hub = Path(cache) / "hub"
    env = {"TORCH_HOME": str(Path(cache)), "TORCH_FORCE_WEIGHTS_ONLY_LOAD": "1",
           "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": None}  # fmt: skip
    old_env = {k: os.environ.get(k) for k in env}
    old_dir = getattr(torch.hub, "_hub_dir", None)
    _set_env(env)
    torch.hub.set_dir(str(hub))
    try:
        yield hub
    finally:
        torch.hub._hub_dir = old_dir
        _set_env(old_env)


def _set_env(values: dict[str, str | None]) -> None:
    """Set environment variables; None removes one."""
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def check_weights(
    cache: str | os.PathLike, files: tuple[WeightFile, ...] | None = None
) -> dict[str, dict]:
    """For compute jobs: every file must exist; report their hashes. Never uses the network.

    Returns {file name: {"path", "sha256", "official"}}; callers put it in their artifacts'
    metadata and mark results computed with non-official (e.g. random) weights.
    """
    files = WEIGHT_FILES if files is None else files
    missing = [wf for wf in files if not weight_path(cache, wf).is_file()]
    if missing:
        raise VaebenchError("; ".join(_missing_message(weight_path(cache, w), w) for w in missing))
    out = {}
    for wf in files:
        path = weight_path(cache, wf)
        sha = sha256_file(path)
        out[wf.name] = {"path": str(path), "sha256": sha, "official": sha == wf.sha256}
    return out


def _download(wf: WeightFile, path: Path) -> None:
    """Fetch `wf` into `path` atomically; raise if the bytes are not the official ones."""
    import torch.hub

    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # a firewalled node must fail, not hang
    try:
        with atomic_path(path, ".part") as tmp:
            torch.hub.download_url_to_file(wf.url, str(tmp), progress=False)
            sha = sha256_file(tmp)
            if sha != wf.sha256:
                raise OSError(f"downloaded sha256 {sha} differs from the official {wf.sha256}")
    finally:
        socket.setdefaulttimeout(old_timeout)


def _warn(path: Path, wf: WeightFile, what: str, reason: str) -> None:
    bar = "!" * 78
    print(
        f"\n{bar}\n"
        f"WARNING: {wf.purpose}: using {what} weights at {path}\n"
        f"  ({reason}).\n"
        f"  {LEARNED_TEXT} computed with them are MEANINGLESS.\n"
        f"  For real numbers run `{STAGE_COMMAND}` with network, or download\n"
        f"  {wf.url} to that path by hand.\n"
        f"{bar}\n",
        file=sys.stderr,
        flush=True,
    )


def stage_weights(
    cache: str | os.PathLike,
    allow_random: bool,
    download: bool = True,
    report: str | os.PathLike | None = None,
    files: tuple[WeightFile, ...] | None = None,
) -> dict[str, dict]:
    """Make every weight file of `files` present in `cache`; return (and optionally write) a
    report.

    Per file: a present official file is kept ("cached"); a missing or non-official one is
    downloaded when `download` ("downloaded"). If that fails or is not allowed: with
    `allow_random` a missing file is replaced by random weights ("random") and a present
    non-official one is kept ("cached"), both with a loud warning; without it we raise a
    VaebenchError, so a study never runs on weights that are not the official ones.

    Report: {file name: {"path", "sha256", "official", "source", "url"}}.
    """
    out, errors = {}, []
    for wf in WEIGHT_FILES if files is None else files:
        path = weight_path(cache, wf)
        sha = sha256_file(path) if path.is_file() else None
        source = "cached" if sha == wf.sha256 else None
        reason = "file missing" if sha is None else "the present file is not the official one"
        if source is None and download:
            try:
                _download(wf, path)
                sha, source = wf.sha256, "downloaded"
            except Exception as e:  # any network/HTTP/hash failure: report it, decide below
                reason = f"{reason}; download failed: {type(e).__name__}: {e}".splitlines()[0]
        elif source is None:
            reason += "; download disabled"
        if source is None:
            if not allow_random:  # collect every file's problem, then stop with all of them
                errors.append(
                    f"{path} is not the official {wf.name} ({reason}): delete it and run "
                    f"`{STAGE_COMMAND}` with network, or put the file from {wf.url} there"
                    if sha is not None
                    else f"{_missing_message(path, wf)} ({reason})"
                )
                continue
            if sha is None:
                write_random_weights(cache, only=[wf.key])
                sha, source = sha256_file(path), "random"
                _warn(path, wf, "RANDOMLY INITIALISED", reason)
            else:
                source = "cached"
                _warn(path, wf, "NON-OFFICIAL (e.g. earlier random)", reason)
        out[wf.name] = {
            "path": str(path),
            "sha256": sha,
            "official": sha == wf.sha256,
            "source": source,
            "url": wf.url,
        }
    if errors:
        raise VaebenchError("; ".join(errors) + f"; {OFFLINE_HINT}")
    if report is not None:
        save_json(report, out)
    return out


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


@functools.lru_cache(maxsize=4)
def _random_state(key: str, seed: int) -> dict:
    """Cached: building and calibrating the Inception takes seconds; tests write it often."""
    import torch

    builders = {ALEXNET.key: _random_alexnet_state, INCEPTION.key: _random_inception_state,
                VGG16.key: _random_vgg16_state}  # fmt: skip
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
            out[wf.key] = path
    return out
