"""Image figures: reconstructions of the test images and generated samples, one row per model.

Rows are labelled with the tables' row labels and coloured by family. No metric is drawn, so
these figures carry no weights warning.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from vaebench import VaebenchError
from vaebench.figstyle import family_colour, new_figure, save_figure
from vaebench.names import SAMPLER_TITLES


def to_display(images: np.ndarray, n: int, what: str) -> np.ndarray:
    """First n images of an N x C x H x W array as float N x H x W x C in [0, 1].

    uint8 is divided by 255; floats are clipped to [0, 1] (decoders may overshoot).
    """
    images = np.asarray(images[:n])
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise VaebenchError(f"{what}: expected N x C x H x W with C 1 or 3, got {images.shape}")
    if np.issubdtype(images.dtype, np.integer):
        out = images.astype(np.float32) / 255.0
    else:
        out = np.clip(images.astype(np.float32), 0.0, 1.0)
    return out.transpose(0, 2, 3, 1)


def _strip(images: np.ndarray, gap: int = 1) -> np.ndarray:
    """Images side by side with a white gap: one imshow per row is faster than one per image."""
    h, _, c = images.shape[1:]
    pad = np.ones((h, gap, c), dtype=images.dtype)
    parts = []
    for k, im in enumerate(images):
        parts += [pad, im] if k else [im]
    return np.concatenate(parts, axis=1)


def _image_row(ax, images: np.ndarray, label: str, colour: str, n: int) -> None:
    """One labelled row of n images; a row with fewer is padded with white so columns align."""
    if len(images) < n:
        images = np.concatenate([images, np.ones((n - len(images), *images.shape[1:]), "f4")])
    strip = _strip(images)
    ax.imshow(strip[..., 0] if strip.shape[-1] == 1 else strip, cmap="gray", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9, color=colour)


def _grid(rows: list[tuple[str, np.ndarray]], n: int, title: str) -> Figure:
    h, w = rows[0][1].shape[1:3]
    width = 1.8 + n * 0.75 * w / 64
    fig = new_figure(width, 0.4 + len(rows) * 0.8 * h / 64)
    axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
    for ax, (label, images) in zip(axes, rows, strict=True):
        colour = "black" if label == "original" else family_colour(label)
        _image_row(ax, images, label, colour, n)
    axes[0].set_title(title, fontsize=10)
    return fig


def reconstruction_grid(
    test: np.ndarray,
    recons: Mapping[str, np.ndarray],
    path_stem: str | Path,
    n: int = 8,
    weights_official: bool = True,
) -> list[Path]:
    """Originals in the first row, then one row per model/β, as in the original study.

    `test` is the uint8 test set (N x 3 x H x W), `recons` maps a row label to that model's
    reconstructions of the same images in the same order (float in [0, 1] or uint8). The
    first n images are shown, so every row shows the same faces. No learned metric is drawn,
    so `weights_official` changes nothing (kept for the callers' uniform signature).
    """
    if not recons:
        raise VaebenchError("reconstruction_grid needs at least one model's reconstructions")
    n = min(n, len(test))
    rows = [("original", to_display(test, n, "test images"))]
    for label, rec in recons.items():
        if len(rec) < n:
            raise VaebenchError(f"{label}: {len(rec)} reconstructions, need the first {n}")
        rows.append((label, to_display(rec, n, f"{label} reconstructions")))
    fig = _grid(rows, n, f"Reconstructions of the first {n} test images")
    return save_figure(fig, path_stem)


def sample_grid(
    samples: Mapping[str, np.ndarray] | np.ndarray,
    path_stem: str | Path,
    n: int = 16,
    weights_official: bool = True,
    sampler: str | None = None,
) -> list[Path]:
    """Generated samples: one row of n per model/β for a dict, a square grid for one array.

    The title names the sampler: `sampler`, or else the one in a stem named samples_<sampler>.
    `weights_official` changes nothing (no learned metric is drawn)."""
    if sampler is None and Path(path_stem).name.startswith("samples_"):
        sampler = Path(path_stem).name.removeprefix("samples_")
    by = f", sampler: {SAMPLER_TITLES.get(sampler, sampler)}" if sampler else ""
    if isinstance(samples, Mapping):
        if not samples:
            raise VaebenchError("sample_grid got no samples")
        rows = [(label, to_display(s, n, f"{label} samples")) for label, s in samples.items()]
        n = max(len(images) for _, images in rows)
        fig = _grid(rows, n, f"{n} generated samples per model{by}")
    else:
        images = to_display(samples, n, "samples")
        n = len(images)
        cols = math.ceil(math.sqrt(n))
        nrows = math.ceil(n / cols)
        fig = new_figure(max(cols * 0.9, 3.0 if by else 0), nrows * 0.9 + 0.3)
        axes = fig.subplots(nrows, 1, squeeze=False)[:, 0]
        for r, ax in enumerate(axes):
            _image_row(ax, images[r * cols : (r + 1) * cols], "", "black", cols)
        axes[0].set_title(f"{n} generated samples{by}", fontsize=10)
    return save_figure(fig, path_stem)
