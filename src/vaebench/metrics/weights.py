"""Pretrained weights for the metrics: staging and checking (stand-ins: metrics.standins).

The per-image metrics and Inception need three files: torchvision's AlexNet (the LPIPS trunk;
lpips ships only its linear layers), torchvision's VGG16 (the DISTS trunk; torchmetrics ships
DISTS's α and β, the authors' weights.pt) and pytorch-fid's Inception (FID/KID/precision-recall
features, loaded by piq from the same file). Each further feature space (metrics.spaces) needs
one: Meta's DINOv2 files (the ones dgm-eval's torch.hub call loads) and OpenAI's CLIP
ViT-L/14@336. All live in a torch-hub cache, `<cache>/hub/checkpoints/<file>`, so that
pointing torch.hub at `<cache>` (TORCH_HOME=<cache>) makes torchvision, lpips and piq load
them with no network.

torch.hub checks a file's hash only when it downloads it; a file already in the cache is
loaded as is. So we hash staged files ourselves and report whether they are the official
ones: against the published SHA-256 where there is one (torchvision and pytorch-fid put its
prefix in the file name, OpenAI the whole hash in the URL); Meta publishes none for DINOv2,
so there the file counts as official when `stage_weights` downloaded it from its URL, which it
records by writing the file's SHA-256 beside it (`<file>.sha256`), and a later change to the
file is caught. Downloads happen only in the staging rules (local, on a machine with network);
compute jobs call `check_weights`, which never touches the network.

Offline, the demo config (and every test) uses randomly initialised weights written by
`standins.write_random_weights`. Metric values are then meaningless but the real loading code
runs.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vaebench import VaebenchError
from vaebench.io import atomic_path, save_json, sha256_file
from vaebench.metrics.registry import LEARNED_TEXT

if TYPE_CHECKING:  # torch is imported inside functions: `import vaebench.config` stays light
    pass

# the workflow's target `weights` runs every staging rule the config needs
STAGE_COMMAND = ".venv/bin/snakemake --cores 1 weights --configfile <your config>"
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
    sha256: str | None  # of the official file; None: not published (see the module doc)
    size: int | None  # bytes of the official file (checked on download where known)
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
assert all(w.sha256.startswith(w.name.rsplit("-", 1)[1][:8]) for w in (ALEXNET, INCEPTION, VGG16))
# the feature spaces' files (metrics.spaces names them by key)
_DINOV2 = "https://dl.fbaipublicfiles.com/dinov2/dinov2_{0}/dinov2_{0}_pretrain.pth"
DINOV2_VITS14 = WeightFile(
    key="dinov2_vits14",
    name="dinov2_vits14_pretrain.pth",
    url=_DINOV2.format("vits14"),
    sha256=None,
    size=None,
    purpose="DINOv2 ViT-S/14 (Meta's file, as dgm-eval loads it)",
)
DINOV2_VITL14 = WeightFile(
    key="dinov2_vitl14",
    name="dinov2_vitl14_pretrain.pth",
    url=_DINOV2.format("vitl14"),
    sha256=None,
    size=1_217_586_395,
    purpose="DINOv2 ViT-L/14 (Meta's file, as dgm-eval loads it)",
)
CLIP_VITL14_336 = WeightFile(
    key="clip_vitl14_336",
    name="ViT-L-14-336px.pt",
    url="https://openaipublic.azureedge.net/clip/models/3035c92b350959924f9f00213499208652fc7"
    "ea050643e8b385c2dac08641f02/ViT-L-14-336px.pt",
    sha256="3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02",
    size=None,
    purpose="CLIP ViT-L/14@336 (OpenAI's file, as CMMD uses it)",
)
assert CLIP_VITL14_336.sha256 in CLIP_VITL14_336.url  # OpenAI's loader checks the same hash
WEIGHT_FILES = (ALEXNET, INCEPTION, VGG16, DINOV2_VITS14, DINOV2_VITL14, CLIP_VITL14_336)
BY_KEY = {wf.key: wf for wf in WEIGHT_FILES}


def needed(vgg16: bool = True) -> tuple[WeightFile, ...]:
    """The files the per-image metrics and Inception need: VGG16 only when the study computes
    DISTS or LPIPS-VGG (config.vgg16_needed). A further feature space's file: `space_file`."""
    keys = ("alexnet", "inception", "vgg16") if vgg16 else ("alexnet", "inception")
    return tuple(wf for wf in WEIGHT_FILES if wf.key in keys)


def space_file(space: str) -> WeightFile:
    """The weight file of a feature space (a key of metrics.spaces)."""
    from vaebench.metrics import spaces

    return BY_KEY[spaces.BY_KEY[space].weights]


def weight_path(cache: str | os.PathLike, wf: WeightFile) -> Path:
    return Path(cache) / "hub" / "checkpoints" / wf.name


def _size(wf: WeightFile) -> str:
    return f" ({wf.size / 1e6:.0f} MB)" if wf.size else ""


def _missing_message(path: Path, wf: WeightFile) -> str:
    return (
        f"missing pretrained weights {path} ({wf.purpose}): run `{STAGE_COMMAND}` on a machine "
        f"with network, or download {wf.url}{_size(wf)} to that path by hand, {OFFLINE_HINT}"
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
    files = needed() if files is None else files
    missing = [wf for wf in files if not weight_path(cache, wf).is_file()]
    if missing:
        raise VaebenchError("; ".join(_missing_message(weight_path(cache, w), w) for w in missing))
    out = {}
    for wf in files:
        path = weight_path(cache, wf)
        sha = sha256_file(path)
        out[wf.name] = {"path": str(path), "sha256": sha, "official": sha == expected(cache, wf)}
    return out


def record_path(cache: str | os.PathLike, wf: WeightFile) -> Path:
    """Where stage_weights records the SHA-256 of a file with no published hash it downloaded."""
    return weight_path(cache, wf).with_name(wf.name + ".sha256")


def expected(cache: str | os.PathLike, wf: WeightFile) -> str | None:
    """The official file's SHA-256: the published one, else the one recorded on download
    (None: neither, so no file there counts as official)."""
    if wf.sha256:
        return wf.sha256
    record = record_path(cache, wf)
    return record.read_text().strip() if record.is_file() else None


def _download(cache: str | os.PathLike, wf: WeightFile) -> str:
    """Fetch `wf` into the cache atomically and return its SHA-256; raise if the bytes are not
    the official ones (hash, or size where that is all that is published). A file with no
    published hash gets its hash recorded beside it (record_path)."""
    import torch.hub

    path = weight_path(cache, wf)
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # a firewalled node must fail, not hang
    try:
        with atomic_path(path, ".part") as tmp:
            torch.hub.download_url_to_file(wf.url, str(tmp), progress=False)
            sha, size = sha256_file(tmp), tmp.stat().st_size
            if wf.sha256 and sha != wf.sha256:
                raise OSError(f"downloaded sha256 {sha} differs from the official {wf.sha256}")
            if not wf.sha256 and wf.size and size != wf.size:  # all that is published
                raise OSError(f"downloaded {size} bytes, the official file has {wf.size}")
    finally:
        socket.setdefaulttimeout(old_timeout)
    if not wf.sha256:
        with atomic_path(record_path(cache, wf)) as tmp:
            tmp.write_text(sha + "\n")
    return sha


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
    for wf in needed() if files is None else files:
        path = weight_path(cache, wf)
        sha = sha256_file(path) if path.is_file() else None
        source = "cached" if sha is not None and sha == expected(cache, wf) else None
        reason = "file missing" if sha is None else "the present file is not the official one"
        if source is None and download:
            try:
                sha, source = _download(cache, wf), "downloaded"
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
                from vaebench.metrics.standins import write_random_weights

                write_random_weights(cache, only=[wf.key])
                sha, source = sha256_file(path), "random"
                _warn(path, wf, "RANDOMLY INITIALISED", reason)
            else:
                source = "cached"
                _warn(path, wf, "NON-OFFICIAL (e.g. earlier random)", reason)
        out[wf.name] = {
            "path": str(path),
            "sha256": sha,
            "official": sha == expected(cache, wf),
            "source": source,
            "url": wf.url,
        }
    if errors:
        raise VaebenchError("; ".join(errors) + f"; {OFFLINE_HINT}")
    if report is not None:
        save_json(report, out)
    return out


def _bad_weights(path: Path, wf: WeightFile, err: Exception) -> VaebenchError:
    first = (str(err).strip().splitlines() or [""])[0][:200]
    return VaebenchError(
        f"{path} could not be loaded as the {wf.purpose} ({type(err).__name__}: {first}); "
        f"delete it and run `{STAGE_COMMAND}`, or put the file from {wf.url} there"
    )


@contextlib.contextmanager
def offline_load(cache: str | os.PathLike, wf: WeightFile) -> Iterator[None]:
    """Load library weights from our cache only; a bad file becomes a one-line error.

    The file is checked first, so torch.hub finds it cached and never tries to download.
    torchvision's deprecation warnings (lpips and piq still pass `pretrained=`) are muted.
    """
    path = require_weights(cache, wf)
    with hub_dir(cache), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        try:
            yield
        except VaebenchError:
            raise
        except Exception as e:  # unpickling, zip or state-dict mismatch: all mean a bad file
            raise _bad_weights(path, wf, e) from e
