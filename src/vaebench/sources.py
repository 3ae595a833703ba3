"""Dataset sources: which images form each split (CelebA, any folder, built-in shapes).

Subsets are ranked by sha256(salt + name) and cut at k, so a smaller subset is a prefix of a
larger one on any machine and numpy version. The shapes generator is counter-based (value i
depends only on the seed, the factor and i) for the same reason. Decoding and writing the
arrays is `vaebench.data`.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vaebench import VaebenchError
from vaebench.config import LAYOUT_HELP
from vaebench.io import sha256_file

# The generation metrics' reference set: prepared by its own job (prepare_reference), so its
# size never touches the training data. CelebA: the test partition's images ranked after the
# n_test reconstruction images (disjoint from them); folder: ranked after the training
# images; shapes: its own seed.
REFERENCE = "reference"
CELEBA_PARTITIONS = {"train": 0, "val": 1, "test": 2, REFERENCE: 2}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
CELEBA_HELP = LAYOUT_HELP["celeba"]


def rank(names: list[str], salt: str) -> list[str]:
    """Names sorted by sha256(salt + name): a numpy-free, machine-independent shuffle."""
    return sorted(names, key=lambda n: (hashlib.sha256((salt + n).encode()).hexdigest(), n))


# ----------------------------------------------------------------------------- sources


def _root(dataset: dict, hint: str) -> Path:
    root = dataset.get("root")
    if not root:
        raise VaebenchError(f"dataset.root is not set; {hint}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise VaebenchError(f"dataset.root = {root} does not exist or is not a folder; {hint}")
    return path.resolve()


def celeba_names(dataset: dict, splits: tuple[str, ...]) -> dict:
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


def folder_names(dataset: dict, splits: tuple[str, ...]) -> dict:
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


# ----------------------------------------------------------------------------- shapes

SHAPE_NAMES = ("square", "circle", "triangle", "cross", "heart")
SHAPE_FACTORS: dict = {
    "shape": {"values": list(SHAPE_NAMES), "note": "circle is rotation invariant"},
    "scale": {"min": 0.2, "max": 0.32, "unit": "shape radius / image side"},
    "rotation": {"min": 0.0, "max": 2 * math.pi, "unit": "radians"},
    "x": {"min": 0.3, "max": 0.7, "unit": "centre / image side, left to right"},
    "y": {"min": 0.3, "max": 0.7, "unit": "centre / image side, top to bottom"},
    "hue": {"min": 0.0, "max": 1.0, "unit": "HSV hue at full saturation and value"},
}
SHAPES_GENERATOR = (
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
