"""What every figure shares: family colours, writing PNG + PDF, the stand-in weights note.

Figures are built on matplotlib.figure.Figure directly, never through pyplot: no global
state, no GUI backend, Agg rasterisation for PNG. One fixed colour per model family, shared
by every figure, so a reader learns "orange = β-VAE" once.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colors as mcolors
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from vaebench import families
from vaebench.io import atomic_path
from vaebench.names import FAMILY, UNITS, VAE_SWEEP_LABEL, meaningful, metric_base, metric_name

# One colour per family label, from the registry (Okabe-Ito: distinguishable with the common
# colour-vision deficiencies).
PALETTE = families.PALETTE
OTHER = "#666666"
SAMPLER_STYLE = {"normal": "-", "vamp": "-.", "gmm": "--", "pixelcnn": ":"}
DPI = 150


def _family_label(name: str) -> str | None:
    """The family label of a model key ("beta_vae") or row label ("β-VAE β=4", "VAE (β = 1)")."""
    name = FAMILY.get(name, name)
    if name == VAE_SWEEP_LABEL:
        return "VAE"
    for family in sorted(PALETTE, key=len, reverse=True):  # "β-VAE" before "VAE"
        if name.startswith(family):
            return family
    return None


def family_colour(name: str) -> str:
    """Colour of a family, model key ("beta_vae") or row label ("β-VAE β=4", "VAE (β = 1)")."""
    label = _family_label(name)
    return PALETTE[label] if label else OTHER


def family_marker(name: str) -> str:
    """Marker of a family, model key or row label (the registry's)."""
    label = _family_label(name)
    return families.MARKERS[label] if label else "o"


def shade(colour: str, i: int, k: int) -> tuple[float, float, float]:
    """The i-th of k shades of a colour, from full to 60% towards white."""
    rgb = np.array(mcolors.to_rgb(colour))
    t = 0.6 * i / max(k - 1, 1)
    return tuple(rgb + (1 - rgb) * t)


def axis_label(col: str) -> str:
    unit = UNITS.get(metric_base(col))
    return metric_name(col) + (f" ({unit})" if unit else "")


def drawable(cols: Sequence[str], weights_official: bool) -> tuple[list[str], list[str]]:
    """(columns to draw, learned columns left out because the weights are stand-ins)."""
    kept = [c for c in cols if meaningful(c, weights_official)]
    return kept, [c for c in cols if c not in kept]


def stand_in_note(fig: Figure, omitted: Sequence[str]) -> None:
    """Say, in red on top of the figure, which metrics are not drawn and why (stand-in
    weights give meaningless values). Nothing when nothing was left out: the warning belongs
    only on plots that would show LPIPS or FID-type values."""
    if not omitted:
        return
    names = ", ".join(dict.fromkeys(metric_name(c) for c in omitted))
    text = (
        f"Not drawn: {names}, which this figure shows with the official weights: this run's "
        "LPIPS/DISTS/Inception weights are randomly initialised stand-ins, so their values are "
        "meaningless."
    )
    width = max(40, int(fig.get_figwidth() * 11))
    fig.suptitle(textwrap.fill(text, width), color="red", fontweight="bold", fontsize=9)


def new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def save_figure(fig: Figure, path_stem: str | Path) -> list[Path]:
    """Write path_stem.png and path_stem.pdf atomically; no timestamps, so reruns are equal."""
    paths = []
    for ext, meta in (("png", {"Software": None}), ("pdf", {"CreationDate": None})):
        path = Path(f"{path_stem}.{ext}")
        with atomic_path(path, "." + ext) as tmp:
            fig.savefig(tmp, format=ext, dpi=DPI, metadata=meta)
        paths.append(path)
    return paths


def repel(fig: Figure, texts_by_axis: Sequence[Sequence]) -> None:
    """Move annotations up (in offset points) until no two in one axis overlap.

    Runs the layout first, so the extents are those of the saved figure up to its dpi, which
    scales every offset equally."""
    canvas = FigureCanvasAgg(fig)
    fig.draw_without_rendering()
    renderer = canvas.get_renderer()
    for texts in texts_by_axis:
        placed = []
        for t in texts:
            for _ in range(40):
                box = t.get_window_extent(renderer)
                if not any(box.overlaps(p) for p in placed):
                    break
                x, y = t.xyann
                t.xyann = (x, y + box.height * 72 / fig.dpi + 1)
            placed.append(t.get_window_extent(renderer))
