"""Dataset preparation: raw images (CelebA, any folder, or built-in shapes) -> uint8 .npy splits.

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
import csv
import hashlib
import math
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
from vaebench.config import LAYOUT_HELP
from vaebench.io import atomic_path, load_npy, provenance, save_json, save_npy, sha256_file

SPLITS = ("train", "val", "test")  # prepare_data's splits
# The generation metrics' reference set: prepared by its own job (prepare_reference), so its
# size never touches the training data. CelebA: the test partition's images ranked after the
# n_test reconstruction images (disjoint from them); folder: ranked after the training
# images; shapes: its own seed.
REFERENCE = "reference"
REFERENCE_MANIFEST = "reference.json"
CELEBA_PARTITIONS = {"train": 0, "val": 1, "test": 2, REFERENCE: 2}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
FILTER = "BICUBIC"  # PIL's antialiased bicubic; fixed so every run resizes the same way
MANIFEST = "manifest.json"
CHUNK = 32  # images per decoding task: workers finish within ~30 ms of each other

CELEBA_HELP = LAYOUT_HELP["celeba"]


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
    source = (_celeba if dataset["name"] == "celeba" else _folder)(dataset, splits)
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
        modes, digests, manifest["provenance"] = _decode_all(
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
        "generator": _SHAPES_GENERATOR,
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


def rank(names: list[str], salt: str) -> list[str]:
    """Names sorted by sha256(salt + name): a numpy-free, machine-independent shuffle."""
    return sorted(names, key=lambda n: (hashlib.sha256((salt + n).encode()).hexdigest(), n))


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


# ----------------------------------------------------------------------------- sources


def _root(dataset: dict, hint: str) -> Path:
    root = dataset.get("root")
    if not root:
        raise VaebenchError(f"dataset.root is not set; {hint}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise VaebenchError(f"dataset.root = {root} does not exist or is not a folder; {hint}")
    return path.resolve()


def _celeba(dataset: dict, splits: tuple[str, ...]) -> dict:
    """Detect the official or Kaggle layout, read the partition, pick each split's subset."""
    root = _root(dataset, CELEBA_HELP)
    layouts = {
        "celeba-official": (root / "img_align_celeba", root / "list_eval_partition.txt"),
        "celeba-kaggle": (
            root / "img_align_celeba" / "img_align_celeba",
            root / "list_eval_partition.csv",
        ),
    }
    layout = next(
        (k for k, (d, p) in layouts.items() if p.is_file() and d.is_dir() and _has_jpeg(d)), None
    )
    if layout is None:
        found = [str(p.relative_to(root)) for pair in layouts.values() for p in pair if p.exists()]
        raise VaebenchError(
            f"dataset.root = {root} is not a CelebA folder (found: {', '.join(found) or 'none'}"
            f" of the expected paths); {CELEBA_HELP}"
        )
    image_dir, partition_file = layouts[layout]

    partitions = _read_partition(partition_file)
    names = {}
    for split in splits:
        part = CELEBA_PARTITIONS[split]
        pool = [n for n, p in partitions.items() if p == part]
        k = int(dataset[f"n_{split}"])
        skip = int(dataset["n_test"]) if split == REFERENCE else 0  # after the test images
        if skip + k > len(pool):
            what = "dataset.n_test + dataset.n_reference" if skip else f"dataset.n_{split}"
            raise VaebenchError(
                f"{what} = {skip + k} but partition {part} ({split}) of {root} has "
                f"{len(pool):,} images; lower dataset.n_{split}"
            )
        names[split] = rank(pool, dataset["salt"])[skip : skip + k]
    _check_present(image_dir, names, f"listed in {partition_file.name} but")
    return {
        "layout": layout,
        "root": str(root),
        "image_dir": image_dir,
        "partition_file": str(partition_file),
        "partition_sha256": sha256_file(partition_file),
        "ranking": "per partition, names sorted by sha256(salt + name) hex digest; first k "
        "(reference: the n_reference test-partition names after the n_test test images)",
        "names": names,
    }


def _has_jpeg(folder: Path) -> bool:
    with os.scandir(folder) as it:
        return any(e.name.lower().endswith(".jpg") and e.is_file() for e in it)


def _read_partition(path: Path) -> dict[str, int]:
    """Parse list_eval_partition.txt ('000001.jpg 0') or Kaggle's .csv ('image_id,partition')."""
    out: dict[str, int] = {}
    with open(path, newline="") as f:
        if path.suffix == ".csv":
            rows = csv.reader(f)
            header = next(rows, None)
            if header is None or [h.strip() for h in header] != ["image_id", "partition"]:
                raise VaebenchError(
                    f"{path} does not start with the header 'image_id,partition'; "
                    "replace it with Kaggle's original list_eval_partition.csv"
                )
            start = 2
        else:
            rows = (line.split() for line in f)
            start = 1
        for lineno, row in enumerate(rows, start):
            if not row:
                continue
            if len(row) != 2 or row[1].strip() not in ("0", "1", "2"):
                raise VaebenchError(
                    f"{path} line {lineno} is {' '.join(row)!r}, not 'name partition' with "
                    "partition 0, 1 or 2; replace the file with the original"
                )
            out[row[0].strip()] = int(row[1])
    if not out:
        raise VaebenchError(f"{path} lists no images; replace it with the original")
    return out


def _folder(dataset: dict, splits: tuple[str, ...]) -> dict:
    """Rank every image under root; test, then val, then train are consecutive slices."""
    hint = LAYOUT_HELP["folder"]
    root = _root(dataset, hint)
    found = _list_images(root)
    if not found:
        raise VaebenchError(f"dataset.root = {root} holds no images; {hint}")
    n_test, n_val, n_train = (int(dataset[f"n_{s}"]) for s in ("test", "val", "train"))
    if n_test + n_val > len(found):
        raise VaebenchError(
            f"dataset.n_test + dataset.n_val = {n_test + n_val} but {root} has "
            f"{len(found):,} images; lower them or add images"
        )
    if n_test + n_val + n_train > len(found):
        raise VaebenchError(
            f"dataset.n_train = {n_train} but {root} has {len(found):,} images, "
            f"{n_test + n_val} of them taken by dataset.n_test + dataset.n_val; "
            "lower dataset.n_train or add images"
        )
    ranked = rank(found, dataset["salt"])
    start = {"test": 0, "val": n_test, "train": n_test + n_val, REFERENCE: n_test + n_val + n_train}
    if REFERENCE in splits and start[REFERENCE] + int(dataset["n_reference"]) > len(found):
        raise VaebenchError(
            f"dataset.n_reference = {dataset['n_reference']} but {root} has {len(found):,} "
            f"images, {start[REFERENCE]} of them taken by the test, validation and training "
            "sets; lower dataset.n_reference or add images"
        )
    names = {s: ranked[start[s] : start[s] + int(dataset[f"n_{s}"])] for s in splits}
    return {
        "layout": "folder",
        "root": str(root),
        "image_dir": root,
        "partition_file": None,
        "partition_sha256": None,
        "ranking": "names sorted by sha256(salt + name) hex digest; test, val, train, "
        "reference in turn",
        "names": names,
    }


def _list_images(root: Path) -> list[str]:
    """Image files under root as sorted posix paths relative to it, skipping hidden entries.

    os.walk rather than Path.rglob: this runs before the decoding workers start, and on
    10,000 files pathlib's per-path objects cost more than the decoding they delay.
    """
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel = os.path.relpath(dirpath, root)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        found += [
            prefix + f
            for f in filenames
            if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS
        ]
    return sorted(found)


def _check_present(image_dir: Path, names: dict[str, list[str]], what: str) -> None:
    missing = [n for split in names for n in names[split] if not (image_dir / n).is_file()]
    if missing:
        raise VaebenchError(
            f"{len(missing):,} selected image(s) {what} missing from {image_dir} "
            f"(first: {missing[0]}); re-extract the dataset"
        )


# ----------------------------------------------------------------------------- decoding


def _decode_all(
    paths: list[list[str]],
    outs: list[np.ndarray],
    crop: int | None,
    workers: int,
    meanwhile: Callable[[], Any] = lambda: None,
) -> tuple[list[str], list[bytes], Any]:
    """Decode paths[k] into outs[k] on `workers` processes; return modes and sha256 digests.

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
        for chunk_modes, chunk_digests in results:
            modes += chunk_modes
            digests += chunk_digests
    return modes, digests, extra


_OUTS: list[np.ndarray] = []  # a forked worker's views of the parent's output maps


def _attach(outs: list[np.ndarray]) -> None:
    _OUTS[:] = outs


def _decode_shared(
    k: int, start: int, paths: list[str], crop: int | None
) -> tuple[list[str], list[bytes]]:
    return _decode_chunk(_OUTS[k], start, paths, crop)


def _decode_chunk(
    out: np.ndarray, start: int, paths: list[str], crop: int | None
) -> tuple[list[str], list[bytes]]:
    """Decode paths into out[start:]; truncation is an error, whatever PIL's global says.

    The per-file digests let the parent hash each split's sources in order without shipping
    the files' bytes between processes.
    """
    modes, digests = [], []
    saved = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        for i, path in enumerate(paths, start):
            with open(path, "rb") as f:
                data = f.read()
            digests.append(hashlib.sha256(data).digest())
            image, mode = _decode(path, data, crop, out.shape[-1])
            out[i] = image.transpose(2, 0, 1)
            modes.append(mode)
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = saved
    return modes, digests


def _decode(path: str, data: bytes, crop: int | None, size: int) -> tuple[np.ndarray, str]:
    """One image -> (S x S x 3 uint8, its original mode): open, RGB, centre crop, resize."""
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
    rgb = rgb.resize((size, size), getattr(Image.Resampling, FILTER))
    return np.asarray(rgb, dtype=np.uint8), mode


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


# ----------------------------------------------------------------------------- shapes

SHAPE_NAMES = ("square", "circle", "triangle", "cross", "heart")
SHAPE_FACTORS: dict = {
    "shape": {"values": list(SHAPE_NAMES), "note": "circle is rotation invariant"},
    "scale": {"min": 0.12, "max": 0.25, "unit": "shape radius / image side"},
    "rotation": {"min": 0.0, "max": 2 * math.pi, "unit": "radians"},
    "x": {"min": 0.3, "max": 0.7, "unit": "centre / image side, left to right"},
    "y": {"min": 0.3, "max": 0.7, "unit": "centre / image side, top to bottom"},
    "hue": {"min": 0.0, "max": 1.0, "unit": "HSV hue at full saturation and value"},
}
_SHAPES_GENERATOR = (
    "factor i of each split = splitmix64(sha256(f'{seed}|{factor}')[:8] + i); "
    "antialiased by signed distance; black background"
)


def shapes_seed(salt: str, split: str) -> int:
    """The integer seed of one split's shapes, derived from the salt (63 bits)."""
    digest = hashlib.sha256(f"{salt}|shapes|{split}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def shape_factors(n: int, seed: int) -> dict[str, np.ndarray]:
    """Factors of images 0..n-1; image i's factors do not depend on n (prefix property)."""
    out: dict[str, np.ndarray] = {}
    for name, spec in SHAPE_FACTORS.items():
        u = _uniform(f"{seed}|{name}", n)
        if name == "shape":
            out[name] = np.minimum((u * len(SHAPE_NAMES)).astype(np.int64), len(SHAPE_NAMES) - 1)
        else:
            out[name] = spec["min"] + u * (spec["max"] - spec["min"])
    return out


def shapes(n: int, size: int = 64, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Render n coloured shapes as uint8 n x 3 x size x size; returns (images, factors)."""
    factors = shape_factors(n, seed)
    out = np.empty((n, 3, size, size), np.uint8)
    step = max(1, (1 << 21) // (size * size))  # ~8 MB float32 per intermediate array
    for s in range(0, n, step):
        out[s : s + step] = _render({k: v[s : s + step] for k, v in factors.items()}, size)
    return out, factors


def _uniform(key: str, n: int) -> np.ndarray:
    """n floats in [0, 1) from a splitmix64 counter: exact uint64 arithmetic, any platform."""
    seed = np.uint64(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little"))
    z = seed + np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _render(f: dict[str, np.ndarray], size: int) -> np.ndarray:
    """Signed distance (in shape radii, negative inside) -> antialiased alpha -> colour."""
    n = len(f["x"])
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size
    r = f["scale"].astype(np.float32)[:, None, None]
    dx = (grid[None, None, :] - f["x"].astype(np.float32)[:, None, None]) / r
    dy = (f["y"].astype(np.float32)[:, None, None] - grid[None, :, None]) / r  # y up
    c = np.cos(f["rotation"]).astype(np.float32)[:, None, None]
    s = np.sin(f["rotation"]).astype(np.float32)[:, None, None]
    u, v = c * dx + s * dy, c * dy - s * dx
    dist = np.empty((n, size, size), np.float32)
    for k, name in enumerate(SHAPE_NAMES):
        idx = np.flatnonzero(f["shape"] == k)
        if idx.size:
            dist[idx] = _SDF[name](u[idx], v[idx])
    alpha = np.clip(0.5 - dist * (r * size), 0.0, 1.0)  # one pixel wide edge
    h6 = f["hue"].astype(np.float32)[:, None] * 6
    rgb = np.clip(
        np.concatenate([np.abs(h6 - 3) - 1, 2 - np.abs(h6 - 2), 2 - np.abs(h6 - 4)], axis=1),
        0.0,
        1.0,
    )
    img = alpha[:, None] * (rgb * 255)[:, :, None, None]
    return np.rint(img).astype(np.uint8)


def _sdf_heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A diamond with two circles on its upper edges, centred in the unit disc."""
    d = np.float32(0.85)
    cy = np.float32(-0.1035) * d
    au = np.abs(u)
    diamond = (au + np.abs(v - cy) - d) / np.float32(math.sqrt(2))
    lobes = np.sqrt((au - d / 2) ** 2 + (v - cy - d / 2) ** 2) - d / np.float32(math.sqrt(2))
    return np.minimum(diamond, lobes)


_SQRT3_2 = np.float32(math.sqrt(3) / 2)
_SDF: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "square": lambda u, v: np.maximum(np.abs(u), np.abs(v)) - np.float32(0.75),
    "circle": lambda u, v: np.sqrt(u * u + v * v) - np.float32(0.9),
    "triangle": lambda u, v: (
        np.maximum(np.maximum(-v, _SQRT3_2 * u + v / 2), -_SQRT3_2 * u + v / 2) - np.float32(0.5)
    ),
    "cross": lambda u, v: np.minimum(
        np.maximum(np.abs(u) - 1, np.abs(v) - np.float32(0.33)),
        np.maximum(np.abs(u) - np.float32(0.33), np.abs(v) - 1),
    ),
    "heart": _sdf_heart,
}
