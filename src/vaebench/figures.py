"""Figures: metrics against β, rate-distortion, learning curves, τ heatmaps (and image grids).

Every figure is written as PNG (for the report) and PDF (for papers), atomically, in the
family colours of `vaebench.figstyle`. VAE is the β = 1 point of the β-VAE sweep wherever
the table says so (`in_sweep`), drawn once. With stand-in (non-official) LPIPS/Inception
weights, learned metrics (LPIPS, FID, KID, precision, recall) are not drawn and the figure
says so in red; figures without such metrics carry no warning. The image grids live in
`vaebench.figures_images` and the learning curves in `vaebench.figures_training`; both are
re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from vaebench import VaebenchError, families
from vaebench.agreement import tau_matrix
from vaebench.figstyle import (
    OTHER,
    PALETTE,
    SAMPLER_STYLE,
    axis_label,
    drawable,
    family_colour,
    family_marker,
    new_figure,
    repel,
    save_figure,
    stand_in_note,
)
from vaebench.figures_images import reconstruction_grid, sample_grid, to_display
from vaebench.figures_training import learning_curves
from vaebench.names import (
    HIGHER_IS_BETTER,
    METRICS,
    NO_DIRECTION,
    SET_METRICS,
    diverged_mask,
    header,
    is_learned,
    metric_base,
    metric_name,
)

__all__ = [
    "PALETTE",
    "agreement_heatmap",
    "family_colour",
    "learning_curves",
    "metric_vs_beta",
    "rate_distortion",
    "reconstruction_grid",
    "sample_grid",
    "to_display",
]


def _yerr(rows: pd.DataFrame, col: str) -> np.ndarray | None:
    if f"{col}_lo" not in rows or rows[f"{col}_lo"].isna().all():
        return None
    return np.vstack([rows[col] - rows[f"{col}_lo"], rows[f"{col}_hi"] - rows[col]]).clip(min=0)


def _metric_columns(table: pd.DataFrame, metrics: Sequence[str] | None) -> list[str]:
    if metrics is None:
        metrics = [*METRICS, *SET_METRICS, *("rt_" + m for m in METRICS)]
    return [m for m in metrics if m in table and table[m].notna().any()]


def _direction(col: str) -> str:
    base = metric_base(col)
    if base in NO_DIRECTION:
        return ""
    return "higher is better" if base in HIGHER_IS_BETTER else "lower is better"


def _in_sweep(table: pd.DataFrame) -> pd.Series:
    if "in_sweep" in table:
        return table["in_sweep"].fillna(False).astype(bool)
    return table["model"] == "beta_vae"


def metric_vs_beta(
    table_df: pd.DataFrame,
    path_stem: str | Path,
    metrics: Sequence[str] | None = None,
    weights_official: bool = True,
) -> list[Path]:
    """Each metric against β for the β sweep (log x axis, 95% interval bars), VAE as its β = 1
    point (its own colour, on the curve); the other models are horizontal lines (dashed, with
    their interval as a band) in their family colour.

    `table_df` is a reconstruction_table or generation_table frame; with a `sampler` column,
    each sampler gets its own line style. With stand-in weights learned metrics are left out.
    """
    table = table_df[~diverged_mask(table_df)]
    cols, omitted = drawable(_metric_columns(table, metrics), weights_official)
    if not cols:
        raise VaebenchError("metric_vs_beta: the table has no metric with values to draw")
    samplers = list(dict.fromkeys(table["sampler"])) if "sampler" in table else [None]
    ncols = min(4, len(cols))
    nrows = math.ceil(len(cols) / ncols)
    fig = new_figure(3.2 * ncols, 2.6 * nrows + 0.6)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    sweep = table[_in_sweep(table)]
    refs = table[~_in_sweep(table)]
    betas = np.sort(sweep["beta"].dropna().unique())
    handles = {}
    if len(betas) < 2:  # no sweep to draw against β: each row's mean and interval instead
        _by_row(axes, cols, table, samplers)
        for ax in axes[len(cols) :]:
            ax.set_visible(False)
        fig.suptitle("This study has no β sweep: each row's mean and 95% interval "
                     "(the figure's x axis is the row, not β)", fontsize=9)  # fmt: skip
        stand_in_note(fig, omitted)
        return save_figure(fig, path_stem)
    for ax, col in zip(axes, cols, strict=False):
        for sampler in samplers:
            ls = SAMPLER_STYLE.get(sampler, "-") if sampler else "-"
            tag = f" ({sampler})" if sampler else ""
            rows = sweep if sampler is None else sweep[sweep["sampler"] == sampler]
            rows = rows[rows[col].notna()].sort_values("beta")
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
                vae = rows[rows["model"] == "vae"]
                if len(vae):
                    h = ax.plot(
                        vae["beta"],
                        vae[col],
                        ls="none",
                        marker="D",
                        ms=6,
                        color=PALETTE["VAE"],
                        zorder=3,
                    )[0]
                    handles.setdefault(f"{vae['label'].iloc[0]}{tag}", h)
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
        ax.set_ylabel(axis_label(col))
        title = f"{header(col)}  ({_direction(col)})" if _direction(col) else header(col)
        ax.set_title(title, fontsize=10)
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
    stand_in_note(fig, omitted)
    return save_figure(fig, path_stem)


def _by_row(axes, cols: list[str], table: pd.DataFrame, samplers: list) -> None:
    """metric_vs_beta without a β sweep: one point with its interval per table row."""
    labels = list(dict.fromkeys(table["label"]))
    for ax, col in zip(axes, cols, strict=False):
        for k, sampler in enumerate(samplers):
            rows = table if sampler is None else table[table["sampler"] == sampler]
            rows = rows[rows[col].notna()]
            x = [labels.index(lab) + 0.15 * k for lab in rows["label"]]
            for xi, (_, r) in zip(x, rows.iterrows(), strict=True):
                ax.errorbar([xi], [r[col]], yerr=_yerr(rows.loc[[r.name]], col), capsize=3,
                            marker=family_marker(r["label"]), color=family_colour(r["model"]),
                            ls="none")  # fmt: skip
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(axis_label(col))
        title = f"{header(col)}  ({_direction(col)})" if _direction(col) else header(col)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, axis="y")


def rate_distortion(
    table_df: pd.DataFrame,
    path_stem: str | Path,
    distortions: Sequence[str] = ("mse", "bce_excess", "lpips"),
    weights_official: bool = True,
) -> list[Path]:
    """Rate (KL, nats) against distortion per model/β, one panel per distortion metric.

    The β sweep (VAE as its β = 1 point, a diamond) is joined in β order: the trade-off β
    controls. VQ-VAE has no KL and is not drawn (named in each panel): no rate is invented
    for it. Labels are moved apart so that none overlap.
    """
    table = table_df[~diverged_mask(table_df)]
    if "kl" not in table:
        raise VaebenchError("rate_distortion needs a `kl` column (a reconstruction table)")
    wanted = [d for d in distortions if d in table and table[d].notna().any()]
    if not wanted and "bce" in table and "bce_excess" in distortions:
        wanted = ["bce"]  # older tables without bce_excess
    cols, omitted = drawable(wanted, weights_official)
    if not cols:
        raise VaebenchError(f"rate_distortion: none of {list(distortions)} has values to draw")
    fig = new_figure(3.6 * len(cols), 3.6)
    axes = fig.subplots(1, len(cols), squeeze=False)[0]
    placed = table[table["kl"].notna()]
    unplaced = table[table["kl"].isna()]
    texts = []
    for ax, col in zip(axes, cols, strict=True):
        rows = placed[placed[col].notna()]
        sweep = rows[_in_sweep(rows)].sort_values("beta")
        if len(sweep) > 1:
            ax.plot(sweep[col], sweep["kl"], color=PALETTE["β-VAE"], lw=1, alpha=0.6)
        mine = []
        for _, r in rows.iterrows():
            colour = family_colour(r["label"])
            one = rows.loc[[r.name]]
            ax.errorbar(
                r[col],
                r["kl"],
                xerr=_yerr(one, col),
                yerr=_yerr(one, "kl"),
                color=colour,
                marker=family_marker(r["label"]),
                ms=5,
                capsize=2,
                lw=1,
            )
            swept = r["model"] in families.BY_KEY and families.BY_KEY[r["model"]].swept
            text = f"β={r['beta']:g}" if swept else r["label"]
            mine.append(
                ax.annotate(
                    text,
                    (r[col], r["kl"]),
                    xytext=(4, 4),
                    textcoords="offset points",
                    fontsize=8,
                    color=colour,
                )
            )
        texts.append(mine)
        if len(unplaced):
            ax.text(
                0.98,
                0.98,
                "not drawn (no KL): " + ", ".join(unplaced["label"]),
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=7,
                color=OTHER,
            )
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.set_xlabel(f"distortion: {axis_label(col)}")
        ax.set_ylabel("rate: KL(q(z|x) ‖ p(z)) (nats/image)")
        ax.set_title(f"Rate vs {metric_name(col)}", fontsize=10)
        ax.grid(alpha=0.3)
    stand_in_note(fig, omitted)
    repel(fig, texts)
    return save_figure(fig, path_stem)


def agreement_heatmap(
    tau_df: pd.DataFrame,
    path_stem: str | Path,
    weights_official: bool = True,
    title: str = "Kendall τ between metrics",
) -> list[Path]:
    """Kendall τ matrix as a heatmap with the values written in, one panel per level.

    Takes the long table of agreement.metric_agreement (metric_a, metric_b, tau[, level]) or a
    square matrix. Metrics are oriented so that +1 means the same verdict (blue), -1 opposite.
    With stand-in weights the learned metrics' rows and columns are left out.
    """
    if {"metric_a", "metric_b", "tau"} <= set(tau_df.columns):
        levels = list(dict.fromkeys(tau_df["level"])) if "level" in tau_df else [None]
        mats = [(lvl, tau_matrix(tau_df, lvl)) for lvl in levels]
    else:
        mats = [(None, tau_df)]
    omitted = []
    if not weights_official:
        omitted = [c for _, m in mats for c in m.columns if is_learned(str(c))]
        mats = [(lvl, m.drop(index=omitted, columns=omitted, errors="ignore")) for lvl, m in mats]
        # a level with nothing meaningful left (the set level with stand-ins) gets no panel
        mats = [(lvl, m) for lvl, m in mats if len(m)] or mats[:1]
    size = max(len(m) for _, m in mats)
    side = 1.2 + 0.55 * size
    fig = new_figure(side * len(mats) + 0.8, side + (0.5 if omitted else 0))
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
    stand_in_note(fig, omitted)
    return save_figure(fig, path_stem)
