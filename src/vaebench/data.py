"""Dataset preparation: raw images (CelebA, any folder, or built-in shapes) -> uint8 .npy splits.

Which images form each split is `vaebench.sources`; this module decodes, crops and resizes
them and writes the arrays and their manifest.

This runs once, in the prepare_data job. Everything downstream memory-maps the arrays and
never decodes an image again, so every choice that changes pixels (subset, crop, filter,
mode conversion) is made here and recorded in the manifest.

Subsets are ranked by sha256(salt + name) and cut at k, so a smaller subset is a prefix of a
larger one on any machine and numpy version. The shapes generator is counter-based (value i
depends only on the seed, the factor and i) for the same reason. Arrays are written
atomically and the manifest last: a complete manifest means complete arrays.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from vaebench import VaebenchError
from vaebench.io import atomic_path, load_npy, provenance, save_json, save_npy, sha256_file
from vaebench.sources import (  # noqa: F401 (rank, shapes: re-exported)
    REFERENCE,
    SHAPE_FACTORS,
    SHAPES_GENERATOR,
    celeba_names,
    folder_names,
    rank,
    shapes,
    shapes_seed,
)

SPLITS = ("train", "val", "test")  # prepare_data's splits
REFERENCE_MANIFEST = "reference.json"  # the reference set's manifest (sources.REFERENCE)
FILTER = "BICUBIC"  # PIL's antialiased bicubic; fixed so every run resizes the same way
STRETCHED = 1.25  # an uncropped image whose sides differ more than this is visibly distorted
MANIFEST = "manifest.json"
CHUNK = 32  # images per decoding task: workers finish within ~30 ms of each other


# ----------------------------------------------------------------------------- entry point


def prepare(
    dataset: dict,
    out_dir: str | Path,
    workers: int = 1,
    splits: tuple[str, ...] = SPLITS,
    manifest_name: str = MANIFEST,
) -> dict:
    """Write out_dir/<split>.npy (uint8, N x 3 x S x S) for `splits` and the manifest
    (train/val/test with manifest.json; the reference set alone with reference.json).

    Returns the manifest. All cheap checks (layout, counts, missing files) run before any
    decoding, and a stale manifest is removed first, so a failure never leaves a manifest
    that vouches for arrays it did not describe.
    """
    _check_config(dataset, splits)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / manifest_name).unlink(missing_ok=True)
    if dataset["name"] == "shapes":
        manifest = _prepare_shapes(dataset, out_dir, splits)
        manifest["provenance"] = provenance(dict(dataset))
    else:
        manifest = _prepare_images(dataset, out_dir, workers, splits)
    manifest = {"dataset": dict(dataset)} | manifest
    save_json(out_dir / manifest_name, manifest)
    return manifest


def _prepare_images(dataset: dict, out_dir: Path, workers: int, splits: tuple[str, ...]) -> dict:
    """CelebA or folder: pick names, decode all splits in one pass, write the arrays."""
    source = (celeba_names if dataset["name"] == "celeba" else folder_names)(dataset, splits)
    size, crop = int(dataset["image_size"]), dataset.get("crop")
    manifest = {k: v for k, v in source.items() if k not in ("names", "image_dir")}
    manifest["preprocessing"] = {
        "crop": crop,
        "crop_rule": "centre square, offsets int(round((side - crop) / 2)) as torchvision",
        "size": size,
        "filter": FILTER,
        "convert": "PIL convert('RGB'), alpha dropped; 16-bit greyscale scaled by 1/257",
        "exif_orientation": "ignored, as torchvision's image loader",
    }
    manifest["source_sha256_rule"] = "sha256 of the concatenated sha256 digests of the files"
    names = source["names"]
    prefix = str(source["image_dir"]) + os.sep  # str, not Path: 10,000 Paths cost 0.15 s
    with contextlib.ExitStack() as stack:
        # workers decode straight into the .npy files (renamed into place only on success)
        tmp = {s: stack.enter_context(atomic_path(out_dir / f"{s}.npy", ".npy")) for s in splits}
        outs = [
            np.lib.format.open_memmap(tmp[s], "w+", np.uint8, (len(names[s]), 3, size, size))
            for s in splits
        ]
        # provenance (~50 ms of package metadata and git) runs while the workers decode
        modes, digests, aspects, manifest["provenance"] = _decode_all(
            [[prefix + n for n in names[s]] for s in splits],
            outs,
            crop,
            workers,
            meanwhile=lambda: provenance(dict(dataset)),
        )
        # unmap before the files are renamed; no msync: like np.save, leave the write-back
        # to the kernel (a forced flush of 36 MB cost 80 ms here, all of it serial)
        del outs
    manifest["splits"], total, start = {}, Counter(), 0
    for split in splits:
        stop = start + len(names[split])
        converted = Counter(m for m in modes[start:stop] if m != "RGB")
        total.update(converted)
        manifest["splits"][split] = {
            "count": stop - start,
            "names": names[split],
            "conversions": dict(sorted(converted.items())),
            "source_sha256": hashlib.sha256(b"".join(digests[start:stop])).hexdigest(),
        } | _describe(out_dir / f"{split}.npy")
        start = stop
    manifest["conversions"] = dict(sorted(total.items()))
    stretched = [(a, n) for a, n in zip(aspects, (n for s in splits for n in names[s]),
                                        strict=True) if a > STRETCHED]  # fmt: skip
    manifest["preprocessing"]["stretched"] = len(stretched)
    if stretched:
        worst, name = max(stretched)
        print(
            f"vaebench: warning: {len(stretched)} of {len(aspects)} images are not square (up "
            f"to {worst:.3g}:1, e.g. {name}) and are stretched to {size}x{size} because "
            "dataset.crop is null; set dataset.crop to take a centred square of that side "
            "first (the manifest records the count)",
            file=sys.stderr,
        )
    return manifest


def _prepare_shapes(dataset: dict, out_dir: Path, splits: tuple[str, ...]) -> dict:
    """Built-in shapes: each split from its own seed, so splits never shift one another."""
    size = int(dataset["image_size"])
    manifest: dict = {
        "layout": "shapes",
        "root": None,
        "partition_file": None,
        "partition_sha256": None,
        "preprocessing": {
            "crop": None,
            "size": size,
            "filter": None,
            "note": "rendered at image_size; dataset.crop does not apply",
        },
        "factors": SHAPE_FACTORS,
        "generator": SHAPES_GENERATOR,
        "splits": {},
    }
    for split in splits:
        seed = shapes_seed(dataset["salt"], split)
        images, _ = shapes(int(dataset[f"n_{split}"]), size, seed)
        manifest["splits"][split] = {"count": len(images), "seed": seed}
        manifest["splits"][split] |= _write(out_dir, split, images)
    return manifest


def load_split(data_dir: str | Path, split: str, mmap: bool = False) -> np.ndarray:
    """Load one prepared split (uint8 N x 3 x S x S), refusing a folder without a manifest."""
    if split not in (*SPLITS, REFERENCE):
        raise VaebenchError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}, reference")
    data_dir = Path(data_dir)
    if not (data_dir / MANIFEST).is_file():
        raise VaebenchError(
            f"{data_dir / MANIFEST} is missing, so {data_dir} is incomplete; rerun prepare_data"
        )
    return load_npy(data_dir / f"{split}.npy", mmap=mmap)


def _write(out_dir: Path, split: str, images: np.ndarray) -> dict:
    save_npy(out_dir / f"{split}.npy", images)
    return _describe(out_dir / f"{split}.npy")


def _describe(path: Path) -> dict:
    shape = list(load_npy(path, mmap=True).shape)
    return {"npy": path.name, "npy_sha256": sha256_file(path), "shape": shape}


def _check_config(dataset: dict, splits: tuple[str, ...] = SPLITS) -> None:
    """Catch a bad slice here when prepare() is called without the workflow's schema check."""
    counts = ("n_train", "n_val", "n_test", *(("n_reference",) if REFERENCE in splits else ()))
    for key in ("name", *counts, "image_size", "salt"):
        if key not in dataset:
            raise VaebenchError(f"dataset.{key} is missing from the config; set it")
    if dataset["name"] not in ("celeba", "folder", "shapes"):
        raise VaebenchError(
            f"dataset.name = {dataset['name']!r} is unknown; use celeba, folder or shapes"
        )
    for key in (*counts, "image_size"):
        value = dataset[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise VaebenchError(f"dataset.{key} = {value!r}; set it to an integer >= 1")
    crop = dataset.get("crop")
    if crop is not None and (isinstance(crop, bool) or not isinstance(crop, int) or crop < 1):
        raise VaebenchError(f"dataset.crop = {crop!r}; set it to an integer >= 1 or null")
    if not isinstance(dataset["salt"], str) or not dataset["salt"]:
        raise VaebenchError(f"dataset.salt = {dataset['salt']!r}; set it to a non-empty string")


# ----------------------------------------------------------------------------- decoding


def _decode_all(
    paths: list[list[str]],
    outs: list[np.ndarray],
    crop: int | None,
    workers: int,
    meanwhile: Callable[[], Any] = lambda: None,
) -> tuple[list[str], list[bytes], list[float], Any]:
    """Decode paths[k] into outs[k] on `workers` processes; return modes, sha256 digests and
    the aspect ratio (long side / short side) of what each image resized.

    outs are shared memory maps (the .npy files), so forked workers write pixels in place
    and no image crosses a pipe: pickling them back cost the parent as much CPU as a fifth
    of the decoding. Only modes and digests return, in order. Tasks of CHUNK images from
    all splits go to one pool, so workers stay busy across split boundaries and finish
    together; the result does not depend on the chunking. `meanwhile` runs here once the
    work is submitted (its result is returned last), so serial bookkeeping overlaps it.
    """
    tasks = [(k, s, p[s : s + CHUNK]) for k, p in enumerate(paths) for s in range(0, len(p), CHUNK)]
    workers = min(workers, len(tasks))
    if workers > 1 and "fork" not in multiprocessing.get_all_start_methods():
        print("vaebench: this platform cannot fork; decoding on one core", file=sys.stderr)
        workers = 1
    modes: list[str] = []
    digests: list[bytes] = []
    aspects: list[float] = []
    with contextlib.ExitStack() as stack:
        if workers <= 1:
            results: Iterator = (_decode_chunk(outs[k], s, p, crop) for k, s, p in tasks)
        else:
            Image.preinit()  # import the common format plugins once, before forking
            # fork starts workers in milliseconds and shares the maps (this module never
            # imports torch, so forking is safe); cancel_futures stops after a bad image
            fork = multiprocessing.get_context("fork")
            pool = ProcessPoolExecutor(workers, fork, initializer=_attach, initargs=(outs,))
            stack.callback(pool.shutdown, wait=True, cancel_futures=True)
            results = pool.map(_decode_shared, *zip(*tasks, strict=True), [crop] * len(tasks))
        extra = meanwhile()
        for chunk_modes, chunk_digests, chunk_aspects in results:
            modes += chunk_modes
            digests += chunk_digests
            aspects += chunk_aspects
    return modes, digests, aspects, extra


_OUTS: list[np.ndarray] = []  # a forked worker's views of the parent's output maps


def _attach(outs: list[np.ndarray]) -> None:
    _OUTS[:] = outs


def _decode_shared(
    k: int, start: int, paths: list[str], crop: int | None
) -> tuple[list[str], list[bytes], list[float]]:
    return _decode_chunk(_OUTS[k], start, paths, crop)


def _decode_chunk(
    out: np.ndarray, start: int, paths: list[str], crop: int | None
) -> tuple[list[str], list[bytes], list[float]]:
    """Decode paths into out[start:]; truncation is an error, whatever PIL's global says.

    The per-file digests let the parent hash each split's sources in order without shipping
    the files' bytes between processes.
    """
    modes, digests, aspects = [], [], []
    saved = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        for i, path in enumerate(paths, start):
            with open(path, "rb") as f:
                data = f.read()
            digests.append(hashlib.sha256(data).digest())
            image, mode, aspect = _decode(path, data, crop, out.shape[-1])
            out[i] = image.transpose(2, 0, 1)
            modes.append(mode)
            aspects.append(aspect)
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = saved
    return modes, digests, aspects


def _decode(
    path: str, data: bytes, crop: int | None, size: int
) -> tuple[np.ndarray, str, float]:
    """One image -> (S x S x 3 uint8, its original mode, the aspect ratio it was resized
    from): open, RGB, centre crop, resize."""
    if not data:
        raise VaebenchError(f"image {path} is empty (0 bytes); replace it with a good copy")
    try:
        with Image.open(BytesIO(data)) as img:
            img.load()
            mode = img.mode
            rgb = _to_rgb(img, path)
    except VaebenchError:
        raise
    except UnidentifiedImageError:
        raise VaebenchError(
            f"image {path} is not a readable image (corrupt or wrong format); "
            "replace it with a good copy"
        ) from None
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError... for bad files
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise VaebenchError(
            f"image {path} cannot be decoded ({reason}); replace it with a good copy"
        ) from None
    if crop is not None:
        w, h = rgb.size
        if w < crop or h < crop:
            raise VaebenchError(
                f"image {path} is {w}x{h}, smaller than dataset.crop = {crop}; lower "
                "dataset.crop (or set it to null) or remove the image"
            )
        left, top = int(round((w - crop) / 2.0)), int(round((h - crop) / 2.0))
        rgb = rgb.crop((left, top, left + crop, top + crop))
    aspect = max(rgb.size) / min(rgb.size)
    rgb = rgb.resize((size, size), getattr(Image.Resampling, FILTER))
    return np.asarray(rgb, dtype=np.uint8), mode, aspect


def _to_rgb(img: Image.Image, path: str) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode.startswith("I;16"):  # 16-bit greyscale: convert('RGB') would clip to white
        grey = np.asarray(img).astype(np.float64) / 257.0
        return Image.fromarray(np.rint(grey).astype(np.uint8), "L").convert("RGB")
    if img.mode in ("I", "F"):
        raise VaebenchError(
            f"image {path} has mode {img.mode} (32-bit) with no standard 8-bit mapping; "
            "convert it to 8-bit RGB"
        )
    return img.convert("RGB")
