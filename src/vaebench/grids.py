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


def save_grid(
    path: str | Path,
    rows: list[np.ndarray],
    scale: int = 2,
    labels: list[str] | None = None,
    title: str | None = None,
) -> None:
    """Write rows of images as a PNG, each image shown `scale` times larger, with an optional
    title line on top and a label left of each row (so a grid read on its own says what it
    shows)."""
    from PIL import Image, ImageDraw, ImageFont

    pic = Image.fromarray(tile(rows))
    pic = pic.resize((pic.width * scale, pic.height * scale), Image.NEAREST)
    if labels or title:
        font = ImageFont.load_default()
        margin = 8 + max((int(font.getlength(t)) for t in labels or []), default=0)
        top = 16 if title else 0
        canvas = Image.new("RGB", (pic.width + margin, pic.height + top), "white")
        canvas.paste(pic, (margin, top))
        draw = ImageDraw.Draw(canvas)
        if title:
            draw.text((4, 2), title, fill="black", font=font)
        row_h = pic.height / max(len(rows), 1)
        for i, text in enumerate(labels or []):
            draw.text((4, top + (i + 0.5) * row_h - 5), text, fill="black", font=font)
        pic = canvas
    with io.atomic_path(path, ".png") as tmp:
        pic.save(tmp, format="PNG")
