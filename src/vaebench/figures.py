"""Figures: image grids, metrics against β, rate-distortion, learning curves, τ heatmaps.

Every figure is written as PNG (for the report) and PDF (for papers), atomically. Figures are
built on matplotlib.figure.Figure directly, never through pyplot: no global state, no GUI
backend, Agg rasterisation for PNG. One fixed colour per model family, shared by every figure,
so a reader learns "orange = β-VAE" once. Figures from metrics computed with non-official
weights carry the same red warning as the tables.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colors as mcolors
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter, MaxNLocator

from vaebench import VaebenchError
from vaebench.agreement import tau_matrix
from vaebench.io import atomic_path
from vaebench.tables import (
    FAMILY,
    HIGHER_IS_BETTER,
    METRICS,
    NO_DIRECTION,
    UNITS,
    WEIGHTS_WARNING,
    diverged_mask,
    header,
    metric_base,
    metric_name,
    order_rows,
)

# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
PALETTE = {
    "VAE": "#0072B2",
    "β-VAE": "#E69F00",
    "VQ-VAE": "#009E73",
    "VAE-GAN": "#D55E00",
}
OTHER = "#666666"
SAMPLER_STYLE = {"normal": "-", "gmm": "--", "pixelcnn": ":"}
DPI = 150


def family_colour(name: str) -> str:
    """Colour of a family, model key ("beta_vae") or row label ("β-VAE β=4")."""
    name = FAMILY.get(name, name)
    for family in sorted(PALETTE, key=len, reverse=True):  # "β-VAE" before "VAE"
        if name.startswith(family):
            return PALETTE[family]
    return OTHER


def _shade(colour: str, i: int, k: int) -> tuple[float, float, float]:
    """The i-th of k shades of a colour, from full to 60% towards white."""
    rgb = np.array(mcolors.to_rgb(colour))
    t = 0.6 * i / max(k - 1, 1)
    return tuple(rgb + (1 - rgb) * t)


def _axis_label(col: str) -> str:
    unit = UNITS.get(metric_base(col))
    return metric_name(col) + (f" ({unit})" if unit else "")


def _mark(fig: Figure, weights_official: bool) -> None:
    """The red weights warning on top of the figure, wrapped to its width."""
    if weights_official:
        return
    width = max(40, int(fig.get_figwidth() * 11))
    fig.suptitle(textwrap.fill(WEIGHTS_WARNING, width), color="red", fontweight="bold", fontsize=9)


def save_figure(fig: Figure, path_stem: str | Path) -> list[Path]:
    """Write path_stem.png and path_stem.pdf atomically; no timestamps, so reruns are equal."""
    paths = []
    for ext, meta in (("png", {"Software": None}), ("pdf", {"CreationDate": None})):
        path = Path(f"{path_stem}.{ext}")
        with atomic_path(path, "." + ext) as tmp:
            fig.savefig(tmp, format=ext, dpi=DPI, metadata=meta)
        paths.append(path)
    return paths


def _new(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


# -- image grids ----------------------------------------------------------------------------


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
    fig = _new(width, 0.4 + len(rows) * 0.8 * h / 64)
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
    """Originals in the first row, then one row per model/β, as in the study slides.

    `test` is the uint8 test set (N x 3 x H x W), `recons` maps a row label to that model's
    reconstructions of the same images in the same order (float in [0, 1] or uint8). The
    first n images are shown, so every row shows the same faces.
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
    _mark(fig, weights_official)
    return save_figure(fig, path_stem)


def sample_grid(
    samples: Mapping[str, np.ndarray] | np.ndarray,
    path_stem: str | Path,
    n: int = 16,
    weights_official: bool = True,
) -> list[Path]:
    """Generated samples: one row of n per model/β for a dict, a square grid for one array."""
    if isinstance(samples, Mapping):
        if not samples:
            raise VaebenchError("sample_grid got no samples")
        rows = [(label, to_display(s, n, f"{label} samples")) for label, s in samples.items()]
        n = max(len(images) for _, images in rows)
        fig = _grid(rows, n, f"{n} generated samples per model")
    else:
        images = to_display(samples, n, "samples")
        n = len(images)
        cols = math.ceil(math.sqrt(n))
        nrows = math.ceil(n / cols)
        fig = _new(cols * 0.9, nrows * 0.9 + 0.3)
        axes = fig.subplots(nrows, 1, squeeze=False)[:, 0]
        for r, ax in enumerate(axes):
            _image_row(ax, images[r * cols : (r + 1) * cols], "", "black", cols)
        axes[0].set_title(f"{n} generated samples", fontsize=10)
    _mark(fig, weights_official)
    return save_figure(fig, path_stem)


# -- metric plots ---------------------------------------------------------------------------


def _yerr(rows: pd.DataFrame, col: str) -> np.ndarray | None:
    if f"{col}_lo" not in rows or rows[f"{col}_lo"].isna().all():
        return None
    return np.vstack([rows[col] - rows[f"{col}_lo"], rows[f"{col}_hi"] - rows[col]]).clip(min=0)


def _metric_columns(table: pd.DataFrame, metrics: Sequence[str] | None) -> list[str]:
    if metrics is None:
        candidates = [*METRICS, "fid", "kid_mean", "precision", "recall"]
        candidates += ["rt_" + m for m in METRICS]
        metrics = [c for c in candidates if c in table]
    return [m for m in metrics if m in table and table[m].notna().any()]


def _direction(col: str) -> str:
    base = metric_base(col)
    if base in NO_DIRECTION:
        return ""
    return "higher is better" if base in HIGHER_IS_BETTER else "lower is better"


def metric_vs_beta(
    table_df: pd.DataFrame,
    path_stem: str | Path,
    metrics: Sequence[str] | None = None,
    weights_official: bool = True,
) -> list[Path]:
    """Each metric against β for the β-VAE sweep (log x axis, 95% interval bars); the other
    models are horizontal lines (dashed, with their interval as a band) in their family colour.

    `table_df` is a reconstruction_table or generation_table frame; with a `sampler` column,
    each sampler gets its own line style.
    """
    table = table_df[~diverged_mask(table_df)]
    cols = _metric_columns(table, metrics)
    if not cols:
        raise VaebenchError("metric_vs_beta: the table has no metric with values")
    samplers = list(dict.fromkeys(table["sampler"])) if "sampler" in table else [None]
    ncols = min(4, len(cols))
    nrows = math.ceil(len(cols) / ncols)
    fig = _new(3.2 * ncols, 2.6 * nrows + 0.6)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    sweep = table[table["model"] == "beta_vae"]
    refs = table[table["model"] != "beta_vae"]
    betas = np.sort(sweep["beta"].dropna().unique())
    handles = {}
    for ax, col in zip(axes, cols, strict=False):
        for sampler in samplers:
            ls = SAMPLER_STYLE.get(sampler, "-") if sampler else "-"
            tag = f" ({sampler})" if sampler else ""
            rows = sweep if sampler is None else sweep[sweep["sampler"] == sampler]
            rows = rows.sort_values("beta")
            rows = rows[rows[col].notna()]
            if len(rows):
                h = ax.errorbar(
                    rows["beta"],
                    rows[col],
                    yerr=_yerr(rows, col),
                    color=PALETTE["β-VAE"],
                    ls=ls,
                    marker="o",
                    ms=4,
                    capsize=3,
                    lw=1.5,
                )
                handles.setdefault("β-VAE" + tag, h)
            ref_rows = refs if sampler is None else refs[refs["sampler"] == sampler]
            for _, r in ref_rows.iterrows():
                if pd.isna(r[col]):
                    continue
                colour = family_colour(r["model"])
                h = ax.axhline(r[col], color=colour, ls="--" if sampler is None else ls, lw=1.2)
                if f"{col}_lo" in r and pd.notna(r[f"{col}_lo"]):
                    ax.axhspan(r[f"{col}_lo"], r[f"{col}_hi"], color=colour, alpha=0.12, lw=0)
                handles.setdefault(f"{r['label']}{tag}", h)
        if len(betas):
            ax.set_xscale("log")
            ax.set_xticks(betas, [f"{b:g}" for b in betas])
            ax.minorticks_off()
            ax.set_xlim(betas[0] / 1.4, betas[-1] * 1.4)
        ax.set_xlabel("β (log scale)")
        ax.set_ylabel(_axis_label(col))
        ax.set_title(
            f"{header(col)}  ({_direction(col)})" if _direction(col) else header(col), fontsize=10
        )
        ax.grid(alpha=0.3)
    for ax in axes[len(cols) :]:
        ax.set_visible(False)
    fig.legend(
        list(handles.values()),
        list(handles.keys()),
        loc="outside lower center",
        ncols=min(6, len(handles)),
        fontsize=8,
        frameon=False,
    )
    _mark(fig, weights_official)
    return save_figure(fig, path_stem)


def rate_distortion(
    table_df: pd.DataFrame,
    path_stem: str | Path,
    distortions: Sequence[str] = ("mse", "bce", "lpips"),
    weights_official: bool = True,
) -> list[Path]:
    """Rate (KL, nats) against distortion per model/β, one panel per distortion metric.

    The β-VAE sweep is joined in β order: the rate-distortion trade-off β controls. Rows
    without KL (VQ-VAE) cannot be placed and are named in the panel instead.
    """
    table = table_df[~diverged_mask(table_df)]
    if "kl" not in table:
        raise VaebenchError("rate_distortion needs a `kl` column (a reconstruction table)")
    cols = [d for d in distortions if d in table and table[d].notna().any()]
    if not cols:
        raise VaebenchError(f"rate_distortion: none of {list(distortions)} has values")
    fig = _new(3.6 * len(cols), 3.4)
    axes = fig.subplots(1, len(cols), squeeze=False)[0]
    placed = table[table["kl"].notna()]
    unplaced = table[table["kl"].isna()]
    for ax, col in zip(axes, cols, strict=True):
        rows = placed[placed[col].notna()]
        sweep = rows[rows["model"] == "beta_vae"].sort_values("beta")
        if len(sweep) > 1:
            ax.plot(sweep[col], sweep["kl"], color=PALETTE["β-VAE"], lw=1, alpha=0.6)
        for _, r in rows.iterrows():
            colour = family_colour(r["model"])
            one = rows.loc[[r.name]]
            xerr, yerr = _yerr(one, col), _yerr(one, "kl")
            ax.errorbar(
                r[col],
                r["kl"],
                xerr=xerr,
                yerr=yerr,
                color=colour,
                marker="o",
                ms=5,
                capsize=2,
                lw=1,
            )
            text = f"β={r['beta']:g}" if r["model"] == "beta_vae" else r["label"]
            ax.annotate(
                text,
                (r[col], r["kl"]),
                xytext=(4, 4),
                textcoords="offset points",
                fontsize=8,
                color=colour,
            )
        if len(unplaced):
            ax.text(
                0.98,
                0.98,
                "no KL: " + ", ".join(unplaced["label"]),
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=7,
                color=OTHER,
            )
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.set_xlabel(f"distortion: {_axis_label(col)}")
        ax.set_ylabel("rate: KL(q(z|x) ‖ p(z)) (nats/image)")
        ax.set_title(f"Rate vs {metric_name(col)}", fontsize=10)
        ax.grid(alpha=0.3)
    _mark(fig, weights_official)
    return save_figure(fig, path_stem)


def learning_curves(
    histories: Mapping[str, pd.DataFrame],
    path_stem: str | Path,
    weights_official: bool = True,
) -> list[Path]:
    """Train (solid) and eval (dashed) loss per epoch, one panel per model family.

    Pythae's losses have different scales per model (VAE: 0.5·SSE or BCE sum, VQ-VAE: SSE,
    VAE-GAN: feature-space), so families never share an axis. VAE-GAN's encoder, decoder and
    discriminator losses get an extra panel when present.
    """
    if not histories:
        raise VaebenchError("learning_curves got no histories")
    by_model: dict[str, list[tuple[str, pd.DataFrame]]] = {}
    for run, h in histories.items():
        missing = [c for c in ("epoch", "train_loss", "eval_loss") if c not in h]
        if missing:
            raise VaebenchError(f"history of {run} lacks column(s) {missing}")
        by_model.setdefault(run.split("/")[0], []).append((run, h.sort_values("epoch")))
    models = order_rows(pd.DataFrame({"model": list(by_model), "beta": 0.0}))["model"].tolist()
    parts = ("encoder_loss", "decoder_loss", "discriminator_loss")
    gan = [
        (run, h)
        for run, h in by_model.get("vaegan", [])
        if any(c in h and h[c].notna().any() for c in parts)
    ]
    panels: list[tuple[str, str | None]] = [(m, None) for m in models]
    if gan:
        panels.append(("vaegan", "parts"))
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = _new(4.0 * ncols, 3.0 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (model, kind) in zip(axes, panels, strict=False):
        colour = family_colour(model)
        runs = by_model[model] if kind is None else gan
        positive = True
        for k, (run, h) in enumerate(sorted(runs, key=lambda x: _natural(x[0]))):
            name = run.split("/", 1)[1] if "/" in run else run
            shade = _shade(colour, k, len(runs))
            if kind is None:
                series = [("train_loss", "-", "train"), ("eval_loss", "--", "eval")]
            else:
                series = [
                    (c, s, c.removesuffix("_loss"))
                    for c, s in zip(parts, ("-", ":", "-."), strict=True)
                    if c in h
                ]
            for col, ls, what in series:
                y = h[col].to_numpy(np.float64)
                if not np.isfinite(y).any():
                    continue
                positive &= bool(np.all(y[np.isfinite(y)] > 0))
                ax.plot(h["epoch"], y, ls=ls, color=shade, lw=1.4, label=f"{name} {what}")
        if positive:
            ax.set_yscale("log")
            # Plain-text tick labels: the default mathtext ones cost seconds per figure.
            for axis_formatter in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
                axis_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss (Pythae units, per-model scale)")
        title = FAMILY.get(model, model) + (" parts" if kind else "")
        ax.set_title(title, fontsize=10, color=colour)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    _mark(fig, weights_official)
    return save_figure(fig, path_stem)


def _natural(run: str) -> list:
    """Sort key for run ids that orders beta~0.5 < beta~4 < beta~16 numerically."""
    key = []
    for part in run.replace("~", "/").split("/"):
        try:
            key.append((0, float(part), ""))
        except ValueError:
            key.append((1, 0.0, part))
    return key


def agreement_heatmap(
    tau_df: pd.DataFrame,
    path_stem: str | Path,
    weights_official: bool = True,
    title: str = "Kendall τ between metrics",
) -> list[Path]:
    """Kendall τ matrix as a heatmap with the values written in, one panel per level.

    Takes the long table of agreement.metric_agreement (metric_a, metric_b, tau[, level]) or a
    square matrix. Metrics are oriented so that +1 means the same verdict (blue), -1 opposite.
    """
    if {"metric_a", "metric_b", "tau"} <= set(tau_df.columns):
        levels = list(dict.fromkeys(tau_df["level"])) if "level" in tau_df else [None]
        mats = [(lvl, tau_matrix(tau_df, lvl)) for lvl in levels]
    else:
        mats = [(None, tau_df)]
    size = max(len(m) for _, m in mats)
    side = 1.2 + 0.55 * size
    fig = _new(side * len(mats) + 0.8, side)
    axes = fig.subplots(1, len(mats), squeeze=False)[0]
    image = None
    for ax, (level, mat) in zip(axes, mats, strict=True):
        values = mat.to_numpy(np.float64)
        image = ax.imshow(np.ma.masked_invalid(values), cmap="RdBu", vmin=-1, vmax=1)
        names = [metric_name(str(c)) for c in mat.columns]
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), [metric_name(str(c)) for c in mat.index], fontsize=8)
        for (i, j), v in np.ndenumerate(values):
            text = "n/a" if not np.isfinite(v) else f"{v:.2f}"
            colour = "white" if np.isfinite(v) and abs(v) > 0.6 else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color=colour)
        ax.set_title(f"{title}, {level} level" if level else title, fontsize=10)
        ax.set_facecolor("#dddddd")
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="Kendall τ (+1: same ranking)")
    _mark(fig, weights_official)
    return save_figure(fig, path_stem)
