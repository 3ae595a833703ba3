"""The learning-curves figure: train and eval loss per epoch, one panel per model family,
plus a panel of per-part losses for every trainer that has parts (vaebench.families.TRAINERS).
Re-exported by vaebench.figures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import LogFormatter, MaxNLocator

from vaebench import VaebenchError, families
from vaebench.figstyle import PALETTE, family_colour, new_figure, save_figure, shade
from vaebench.names import FAMILY, row_label


def _run_parts(run: str) -> tuple[str, float, int | None]:
    """(model, β, seed) from a run id such as beta_vae/beta~0.5/seed~0 or vae/seed~1."""
    parts = dict(p.split("~", 1) for p in run.split("/")[1:] if "~" in p)
    model = run.split("/")[0]
    beta = float(parts["beta"]) if "beta" in parts else 1.0
    seed = int(parts["seed"]) if parts.get("seed", "").isdigit() else None
    return model, beta, seed


def learning_curves(
    histories: Mapping[str, pd.DataFrame],
    path_stem: str | Path,
    weights_official: bool = True,
) -> list[Path]:
    """Train (solid) and eval (dashed) loss per epoch, one panel per model family.

    Histories are keyed by run id; legends show the tables' row labels ("β-VAE β=0.5", plus
    the seed where a row has several). VAE joins the β-VAE panel as its β = 1 run when there
    is a sweep (same loss scale). Pythae's losses have different scales per family (VAE: BCE
    sum or 0.5·SSE, VQ-VAE: SSE, VAE-GAN: feature-space), so families never share an axis;
    The per-part losses of the adversarial trainers (VAE-GAN's encoder, decoder and
    discriminator; Adversarial AE's and FactorVAE's autoencoder and discriminator) get an
    extra panel per family when present.
    No learned metric is drawn, so `weights_official` changes nothing.
    """
    if not histories:
        raise VaebenchError("learning_curves got no histories")
    sweep = any(_run_parts(r)[0] == "beta_vae" for r in histories)
    by_panel: dict[str, list[tuple[str, tuple, pd.DataFrame]]] = {}
    for run, h in histories.items():
        missing = [c for c in ("epoch", "train_loss", "eval_loss") if c not in h]
        if missing:
            raise VaebenchError(f"history of {run} lacks column(s) {missing}")
        model, beta, s = _run_parts(run)
        panel = "beta_vae" if sweep and model == "vae" else model
        by_panel.setdefault(panel, []).append((run, (model, beta, s), h.sort_values("epoch")))
    rank = {m: i for i, m in enumerate(families.MODEL_ORDER)}
    panels = sorted(by_panel, key=lambda m: (rank.get(m, len(rank)), m))

    def parts_of(panel: str) -> tuple[str, ...]:  # the trainer's per-part losses
        fam = families.BY_KEY.get(panel)
        return families.TRAINERS[fam.trainer].parts if fam else ()

    with_parts = {
        m: [x for x in by_panel[m]
            if any(c in x[2] and x[2][c].notna().any() for c in parts_of(m))]
        for m in panels
    }  # fmt: skip
    layout = [(m, False) for m in panels] + [(m, True) for m in panels if with_parts[m]]
    ncols = min(3, len(layout))
    nrows = math.ceil(len(layout) / ncols)
    fig = new_figure(4.0 * ncols, 3.0 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (panel, is_parts) in zip(axes, layout, strict=False):
        parts = parts_of(panel)
        runs = sorted(
            with_parts[panel] if is_parts else by_panel[panel],
            key=lambda x: (x[1][1] or 0.0, x[1][2] or 0),
        )
        seeds: dict[str, int] = {}
        for _, (model, beta, _s), _h in runs:
            key = row_label(model, beta, sweep)
            seeds[key] = seeds.get(key, 0) + 1
        positive, handles = True, []
        for k, (_run, (model, beta, s), h) in enumerate(runs):
            label = row_label(model, beta, sweep)
            if seeds[label] > 1 and s is not None:
                label += f" seed {s}"
            colour = shade(family_colour(model), k, len(runs))
            if model == "vae" and panel == "beta_vae":
                colour = PALETTE["VAE"]
            series = (
                [("train_loss", "-"), ("eval_loss", "--")]
                if not is_parts
                else [(c, st) for c, st in zip(parts, ("-", ":", "-."), strict=False) if c in h]
            )
            for col, ls in series:
                y = h[col].to_numpy(np.float64)
                if not np.isfinite(y).any():
                    continue
                positive &= bool(np.all(y[np.isfinite(y)] > 0))
                one = len(y) == 1  # a single epoch is a point, not an invisible line
                ax.plot(h["epoch"], y, ls=ls, color=colour, lw=1.4, marker="o" if one else None)
            handles.append(Line2D([], [], color=colour, lw=1.4, label=label))
        styles = (
            [(c.removesuffix("_loss"), st) for c, st in zip(parts, ("-", ":", "-."), strict=False)]
            if is_parts
            else [("train", "-"), ("eval", "--")]
        )
        handles += [Line2D([], [], color="black", ls=st, lw=1.0, label=n) for n, st in styles]
        if positive:
            ax.set_yscale("log")
            # Plain-text tick labels: the default mathtext ones cost seconds per figure.
            for set_formatter in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
                set_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        epochs = sorted({int(e) for _, _, h in runs for e in h["epoch"]})
        if len(epochs) == 1:  # the locator cannot make integer ticks on a zero-width range
            ax.set_xticks(epochs)
            ax.set_xlim(epochs[0] - 0.5, epochs[0] + 0.5)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss (Pythae units, per-model scale)")
        title = FAMILY.get(panel, panel)
        if panel == "beta_vae" and "vae" in {r[1][0] for r in runs}:
            title += " sweep (VAE is β = 1)"
        ax.set_title(
            title + (" parts" if is_parts else ""), fontsize=10, color=family_colour(panel)
        )
        ax.grid(alpha=0.3)
        ax.legend(handles=handles, fontsize=7, frameon=False)
    for ax in axes[len(layout) :]:
        ax.set_visible(False)
    return save_figure(fig, path_stem)
