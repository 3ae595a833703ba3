"""Image grids as PNG files (PIL only: fast, no matplotlib in the per-run jobs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vaebench import io


def tile(rows: list[np.ndarray], pad: int = 2) -> np.ndarray:
    """uint8 rows of N x C x H x W images -> one H' x W' x 3 picture, white padding."""
    n = max(len(r) for r in rows)
    c, h, w = rows[0].shape[1:]
    out = np.full((len(rows) * (h + pad) + pad, n * (w + pad) + pad, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            img = np.repeat(img, 3, axis=0) if c == 1 else img
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            out[y : y + h, x : x + w] = img.transpose(1, 2, 0)
    return out


def save_grid(path: str | Path, rows: list[np.ndarray], scale: int = 2) -> None:
    """Write rows of images as a PNG, each image shown `scale` times larger."""
    from PIL import Image

    pic = Image.fromarray(tile(rows))
    pic = pic.resize((pic.width * scale, pic.height * scale), Image.NEAREST)
    with io.atomic_path(path, ".png") as tmp:
        pic.save(tmp, format="PNG")
