"""What the tables and figures call things: metric names, row labels, row order, notes.

One place for the vocabulary every table, figure and report caption shares: which metrics
exist and which way is better, which do not apply to which family (and why), the row label
of each model/β, and the order rows are listed in. numpy/pandas only, no torch.

VAE and β-VAE at β = 1 are the same model (Pythae's VAE is BetaVAE(β = 1)): when the tables
hold a β-VAE sweep, the VAE row is its β = 1 point, labelled "VAE (β = 1)" and listed between
the β < 1 and β > 1 rows (`sweep_rows`).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from vaebench.families import (  # noqa: F401 (re-exported)
    FAMILY,
    MODEL_ORDER,
    NOT_APPLICABLE,
    SAMPLER_TITLES,
)
from vaebench.families import SAMPLERS as SAMPLER_ORDER
from vaebench.metrics import registry, spaces

VAE_SWEEP_LABEL = "VAE (β = 1)"

# Which metrics exist, their names and which way is better: vaebench.metrics.registry. Per-image
# metrics in table order (the original study's BCE MSE KL ELBO LPIPS SSIM GMSD, ours inserted,
# then piq's formula-only perceptual metrics); the round-trip table's (images are compared with
# each other there, so BCE excess, not BCE); set-level generation metrics, KID first.
METRICS = registry.PER_IMAGE
ROUNDTRIP_METRICS = registry.ROUNDTRIP
SET_METRICS = registry.SET
ROUNDTRIP_PREFIX = "rt_"
HIGHER_IS_BETTER = registry.HIGHER_IS_BETTER
NO_DIRECTION = registry.NO_DIRECTION
# Metrics computed with learned networks. With stand-in weights their values are
# meaningless: shown as STAND_IN, never plotted.
LEARNED = registry.LEARNED
STAND_IN = "n/a (stand-in weights)"
NAMES = registry.LABELS
UNITS = registry.UNITS
# Display-only headers for Markdown/LaTeX; anything else shows its own name.
COLUMN_HEADERS = {
    "label": "Model",
    "sampler": "sampler",
    "n_seeds": "seeds",
    "n_images": "N images",
    "rt_n_images": "RT N",
    "n_generated": "N gen/ref",
    "tau": "Kendall τ",
    "n_rows": "rows",
    "metric": "metric",
    "metric_a": "metric A",
    "metric_b": "metric B",
    "row_a": "A",
    "row_b": "B",
    "mean_a": "mean A",
    "mean_b": "mean B",
    "diff": "A − B",
    "p": "p",
    "p_holm": "p (Holm)",
    "verdict": "verdict",
}
# Columns that stay in Parquet/CSV but are folded into other cells or footnotes for people.
HIDDEN = frozenset(
    {"model", "family", "beta", "seed", "diverged", "n_diverged", "weights_official", "in_sweep"}
    | {"kid_std", "n_reference", "kid_subset_size", "neg_elbo_se", "rt_neg_elbo_se"}
    | {"n_seeds_a", "n_seeds_b", "n_runs"}
)
# Why a metric is blank for a model (else: "not computed"): NOT_APPLICABLE, from the family
# registry. The tables blank these cells whatever the input holds (older files gave VQ-VAE a
# constant "KL" of log K per position).

WEIGHTS_WARNING = (
    "⚠ LPIPS/DISTS/Inception weights are not the official ones (randomly initialised stand-ins): "
    f"{registry.LEARNED_TEXT} are shown as '{STAND_IN}'; the Parquet "
    "files keep the raw values beside weights_official = false"
)
DIVERGED = "diverged"
UNITS_NOTE = (
    "Units: BCE, BCE excess, KL, −ELBO and objective in nats per image (sums over all pixels "
    "and channels); MSE per pixel of images in [0, 1]; PSNR in dB; the others are unitless."
)
BCE_NOTE = (
    "BCE: Bernoulli cross-entropy on continuous pixels; includes the target's own entropy; "
    "not a normalised likelihood."
)
BCE_EXCESS_NOTE = (
    "BCE excess = BCE − Σ H(x), the target's own binary entropy removed: Σ KL(Bern(x) ‖ "
    "Bern(x̂)) ≥ 0, 0 for identical images. It, not BCE, is used wherever images are compared "
    "with each other (metric agreement, paired comparisons, round trip)."
)
OBJECTIVE_NOTE = (
    "objective = E_q[BCE(decoder(z), x)] + β·KL, the training loss of VAE and β-VAE trained "
    "with training.reconstruction_loss: bce (the original study's 'ELBO' column; blank for "
    "runs trained on MSE, whose loss it is not); −ELBO (MC) = E_q[BCE(decoder(z), x)] + KL, "
    "the negative ELBO under a Bernoulli decoder, whatever loss the model was trained on."
)
DETERMINISTIC_NOTE = (
    f"{', '.join(NAMES[k] for k in registry.IMAGE[:-1])} and {NAMES[registry.IMAGE[-1]]} "
    "score the deterministic reconstruction: the decoder of the posterior mean (through the "
    "flow for VAE-LinNF and VAE-IAF; without the Hamiltonian steps for HVAE; deterministic "
    "encoders: of the code; "
    "VQ-VAE: of the quantised code)."
)


def metric_base(col: str) -> str:
    """The registry key of a column: without the round trip's prefix or a feature space."""
    col = col.partition("@")[0]
    return col[len(ROUNDTRIP_PREFIX) :] if col.startswith(ROUNDTRIP_PREFIX) else col


def metric_name(col: str) -> str:
    """Short display name of a metric column ("rt_bce_excess" -> "RT BCE excess")."""
    if col.startswith(ROUNDTRIP_PREFIX):
        return "RT " + metric_name(col[len(ROUNDTRIP_PREFIX) :])
    key, _, space = col.partition("@")  # a set metric on a feature space: "fd@dinov2_vits14"
    if space in spaces.BY_KEY and key in NAMES:
        return f"{NAMES[key]} ({spaces.BY_KEY[space].label})"
    return NAMES.get(col, col)


def is_metric(col: str) -> bool:
    return metric_base(col) in NAMES


def is_learned(col: str) -> bool:
    """A metric column (or its _lo/_hi) computed with LPIPS or Inception weights."""
    base = metric_base(col)
    if base.endswith(("_lo", "_hi")) and base[:-3] in NAMES:
        base = base[:-3]
    return base in LEARNED


def meaningful(col: str, weights_official: bool) -> bool:
    """Whether a metric column's values mean something with these weights: every metric with
    the official LPIPS/DISTS/Inception weights, only the unlearned ones with stand-ins (figures
    leave the rest out, comparisons give them no p, the findings skip them)."""
    return weights_official or not is_learned(col)


def header(col: str) -> str:
    """Column header with an arrow saying which way is better ("SSIM ↑", "BCE ↓", "KL")."""
    base = metric_base(col)
    if base not in NAMES:
        return COLUMN_HEADERS.get(col, col)
    if base in NO_DIRECTION:
        return metric_name(col)
    return f"{metric_name(col)} {'↑' if base in HIGHER_IS_BETTER else '↓'}"


def row_label(model: str, beta: float | None, in_sweep: bool = False) -> str:
    """The row name people read: the family, plus β for the β-VAE sweep."""
    family = FAMILY.get(model, model)
    if model == "vae" and in_sweep:
        return VAE_SWEEP_LABEL
    if model == "beta_vae" and beta is not None and np.isfinite(beta):
        return f"{family} β={beta:g}"
    return family


def sweep_rows(df: pd.DataFrame, vae_in_sweep: bool | None = None) -> tuple[pd.DataFrame, list]:
    """`df` with a boolean `in_sweep` column, and notes on what was merged.

    β-VAE rows are in the sweep; the VAE rows (β = 1) are too when `vae_in_sweep` is True, or,
    by default (None), when `df` holds any β-VAE row. Older results that trained VAE and
    β-VAE β=1 separately (the same model twice) keep the VAE runs only, with a note.
    """
    if df is None or not len(df) or "model" not in df:
        return df, []
    models = df["model"].astype(str)
    notes = []
    if vae_in_sweep is None:
        vae_in_sweep = bool((models == "beta_vae").any())
    out = df
    if vae_in_sweep and "beta" in df:
        twin = (models == "beta_vae") & (df["beta"].astype(float) == 1.0)
        if twin.any() and (models == "vae").any():
            out = df[~twin]
            notes.append(
                "β-VAE β=1 runs are left out: Pythae's VAE is BetaVAE(β = 1), the same model, "
                f"shown once as '{VAE_SWEEP_LABEL}'."
            )
    models = out["model"].astype(str)
    return out.assign(in_sweep=(models == "beta_vae") | ((models == "vae") & vae_in_sweep)), notes


def label_column(df: pd.DataFrame) -> list[str]:
    sweep = df["in_sweep"] if "in_sweep" in df else pd.Series(False, index=df.index)
    return [
        row_label(m, b, bool(s))
        for m, b, s in zip(df["model"], df["beta"].astype(float), sweep, strict=True)
    ]


def order_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Sort as the original study does: the β sweep by ascending β (VAE as its β = 1 row when
    `in_sweep` says so; else VAE first), VQ-VAE, VAE-GAN, then unknown models; then sampler
    and seed, so that every table and figure lists runs in one order."""
    keys = pd.DataFrame(index=df.index)
    sweep = df["in_sweep"].fillna(False).astype(bool) if "in_sweep" in df else False
    model = df["model"].astype(str)
    rank = [MODEL_ORDER.index(m) if m in MODEL_ORDER else len(MODEL_ORDER) for m in model]
    keys["m"] = np.where(sweep, MODEL_ORDER.index("beta_vae"), rank)
    keys["name"] = np.where(sweep, "beta_vae", model)
    keys["b"] = df["beta"].astype(float).fillna(np.inf) if "beta" in df else 0.0
    keys["vae_first"] = (model != "vae").astype(int)
    if "sampler" in df:
        keys["s"] = [
            SAMPLER_ORDER.index(s) if s in SAMPLER_ORDER else len(SAMPLER_ORDER) for s in df.sampler
        ]
        keys["sname"] = df["sampler"].astype(str)
    if "seed" in df:
        keys["seed"] = df["seed"]
    order = keys.sort_values(list(keys.columns), kind="stable").index
    return df.loc[order].reset_index(drop=True)


def diverged_mask(df: pd.DataFrame) -> pd.Series:
    """The optional per-row `diverged` flag (absent means no run diverged)."""
    if "diverged" not in df:
        return pd.Series(False, index=df.index)
    return df["diverged"].fillna(False).astype(bool)


def with_diverged(
    df: pd.DataFrame, diverged: Iterable[dict], per_sampler: bool = False
) -> pd.DataFrame:
    """`df` plus one number-free row flagged diverged=True per diverged run (per sampler for
    the generation frames), so the run's table row says 'diverged' instead of vanishing.

    `diverged`: records with run, model, family, beta, seed and samplers (as written by
    vaebench.config.diverged_runs). The frame's attrs (its files' metadata) are kept.
    """
    rows = []
    for d in diverged:
        ids = {k: d[k] for k in ("run", "model", "family", "beta", "seed")}
        rows += [{**ids, "sampler": s} for s in d["samplers"]] if per_sampler else [ids]
    if not rows:
        return df
    extra = pd.DataFrame(rows)
    extra["diverged"] = True
    out = pd.concat([df.assign(diverged=diverged_mask(df)), extra], ignore_index=True)
    out["beta"] = out["beta"].astype("float64")
    out.attrs = dict(df.attrs)
    return out


def blank_not_applicable(df: pd.DataFrame) -> pd.DataFrame:
    """NaN wherever NOT_APPLICABLE says a metric does not apply to the row's model (also the
    round-trip `rt_` columns and their intervals)."""
    if "model" not in df:
        return df
    out = df.copy()
    for (model, metric), _ in NOT_APPLICABLE.items():
        rows = out["model"] == model
        if not rows.any():
            continue
        for c in out.columns:
            base = metric_base(c)
            if base.endswith(("_lo", "_hi")) and base[:-3] in NAMES:
                base = base[:-3]
            if base == metric:
                out.loc[rows, c] = np.nan
    return out


# Rows of `evaluate:` entries (vaebench.outside), set by the tables job from its records:
# name -> the family key of its model (None: a set of samples, with no model)
EVALUATED: dict[str, str | None] = {}
NO_MODEL = "a set of samples with no model: nothing to reconstruct or round-trip"


def not_applicable_reason(model: str, col: str) -> str:
    if model in EVALUATED:
        if EVALUATED[model] is None:
            return NO_MODEL
        from vaebench import families

        fam = families.lookup(EVALUATED[model])
        return fam.not_applicable.get(metric_base(col), "not computed for this row")
    return NOT_APPLICABLE.get((model, metric_base(col)), "not computed for this row")
