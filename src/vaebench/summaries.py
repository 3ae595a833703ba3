"""The table frames: per-image and set-level metrics in, one row per model/β (and sampler) out.

Every cell is a mean with a 95% interval that includes what varies: per-image metrics use
`stats.crossed_interval` (seeds and the shared test images, each with its own Student t);
set-level metrics (KID, FID@N, FID∞, precision, recall) have one value per seed and a
Student-t interval over seeds (`stats.seed_interval`), none with one seed. A metric that does
not apply to a model stays blank (NaN), never 0. Footnotes travel with each frame in `df.attrs`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from vaebench import VaebenchError
from vaebench.metrics.files import (
    checkpoint_note,
    elbo_note,
    frame_metadata,
    generation_notes,
    load_metrics,
    seed_notes,
    settings_footnotes,
)
from vaebench.names import (
    BCE_EXCESS_NOTE,
    BCE_NOTE,
    DETERMINISTIC_NOTE,
    FAMILY,
    METRICS,
    OBJECTIVE_NOTE,
    ROUNDTRIP_METRICS,
    ROUNDTRIP_PREFIX,
    SET_METRICS,
    UNITS_NOTE,
    blank_not_applicable,
    diverged_mask,
    label_column,
    order_rows,
    row_label,
    sweep_rows,
)
from vaebench.stats import CROSSED_NOTE, crossed_interval, seed_interval

__all__ = ["generation_table", "load_metrics", "reconstruction_table", "settings_footnotes"]
_COUNTS = ("n_seeds", "diverged", "n_diverged")


# -- helpers --------------------------------------------------------------------------------


def _require(df: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise VaebenchError(f"{what} lacks column(s) {missing}; it has {list(df.columns)}")


def _check_unique(df: pd.DataFrame, keys: list[str], what: str) -> None:
    dup = df.duplicated(keys)
    if dup.any():
        first = df.loc[dup, keys].iloc[0].to_dict()
        raise VaebenchError(
            f"{what}: {int(dup.sum())} duplicate rows for {keys}, e.g. {first}; "
            "was one run's file read twice?"
        )


# -- per-image metrics ----------------------------------------------------------------------


def _per_image_summary(sub: pd.DataFrame, metrics: Sequence[str], where: str) -> dict[str, Any]:
    """Summarise one model/β (and sampler) over its non-diverged runs and their images.

    Reconstructions: every seed scored on the same test images (crossed). Round trips: each
    seed's own samples, paired by sample index (nested); crossed_interval's image part then
    holds the samples' spread / S and its seed part the rest, a slightly wider interval than
    the seed-means t interval alone, so it stays valid for both."""
    div = diverged_mask(sub)
    runs_all = sub["run"].unique()
    live = sub[~div]
    runs = live["run"].unique()
    row: dict[str, Any] = {
        "n_seeds": len(runs),
        "n_images": int(live["image"].nunique()),
        "diverged": len(runs) == 0,
        "n_diverged": len(runs_all) - len(runs),
    }
    for m in metrics:
        row[m] = row[f"{m}_lo"] = row[f"{m}_hi"] = np.nan
    if "neg_elbo_se" in sub:
        row["neg_elbo_se"] = np.nan
    if not len(runs):
        return row
    usable = []
    for m in metrics:
        nan = live[m].isna()
        if nan.all():
            continue
        if nan.any():
            bad = live.loc[nan, "run"].unique().tolist()
            raise VaebenchError(
                f"{where}: metric {m!r} is NaN for {int(nan.sum())} of {len(live)} images "
                f"(runs {bad}); a metric must be defined for all images or none. Flag the run "
                "with diverged=True or fix the metric job."
            )
        usable.append(m)
    if usable:
        groups = [g.sort_values("image")[usable].to_numpy(np.float64)
                  for _, g in live.groupby("run", sort=True)]  # fmt: skip
        if len({len(g) for g in groups}) != 1:
            raise VaebenchError(f"{where}: the seeds were scored on different numbers of images")
        mean, lo, hi = crossed_interval(np.stack(groups))
        for j, m in enumerate(usable):
            row[m], row[f"{m}_lo"], row[f"{m}_hi"] = mean[j], lo[j], hi[j]
    if "neg_elbo_se" in live and live["neg_elbo_se"].notna().any():
        row["neg_elbo_se"] = float(live["neg_elbo_se"].mean())  # mean per-image MC error
    return row


def _per_image_table(
    per_image: pd.DataFrame,
    metrics: Sequence[str] | None,
    by: list[str],
    prefix: str,
    vae_in_sweep: bool | None,
) -> pd.DataFrame:
    what = "per-image metrics" if not prefix else "round-trip metrics"
    _require(per_image, ["run", "model", "beta", "seed", "image", *by], what)
    metrics = [m for m in (metrics or METRICS) if m in per_image.columns]
    if not metrics:
        raise VaebenchError(f"{what} has none of the metric columns {list(METRICS)}")
    _check_unique(per_image, ["run", *by[2:], "image"], what)
    per_image, merged = sweep_rows(per_image, vae_in_sweep)
    per_image = blank_not_applicable(per_image)
    rows = []
    for key, sub in per_image.groupby(by, dropna=False, sort=False):
        key = dict(zip(by, key, strict=True))
        model, beta = key["model"], float(key["beta"])
        name = "/".join(str(v) for v in key.values())
        in_sweep = bool(sub["in_sweep"].iloc[0])
        row = {
            "model": model,
            "family": str(sub["family"].iloc[0]) if "family" in sub else FAMILY.get(model, model),
            "beta": beta,
            "label": row_label(model, beta, in_sweep),
            "in_sweep": in_sweep,
            **{k: v for k, v in key.items() if k not in ("model", "beta")},
        }
        stats = _per_image_summary(sub, metrics, name)
        rows.append(
            {**row, **{(prefix + k if k not in _COUNTS else k): v for k, v in stats.items()}}
        )
    out = order_rows(pd.DataFrame(rows))
    out.attrs["footnotes"] = [CROSSED_NOTE, *merged]
    return out


def reconstruction_table(
    per_image: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    vae_in_sweep: bool | None = None,
) -> pd.DataFrame:
    """One row per model/β: each metric's mean over test images with a 95% interval.

    `per_image` is the concatenation of the runs' reconstruction.parquet files (load_metrics).
    Columns out: model, family, beta, label, in_sweep, n_seeds, n_images, diverged,
    n_diverged, neg_elbo_se (mean per-image MC standard error) and for each metric `m`,
    `m_lo`, `m_hi`. Metrics that do not apply (names.NOT_APPLICABLE: KL, −ELBO, objective for
    VQ-VAE; objective for VAE-GAN) are NaN whatever the input holds; runs flagged `diverged`
    are left out of their row's numbers, and a row whose runs all diverged has `diverged`
    True and no numbers. `vae_in_sweep`: see names.sweep_rows.
    """
    meta = frame_metadata(per_image)
    out = _per_image_table(per_image, metrics, ["model", "beta"], "", vae_in_sweep)
    out.attrs["footnotes"] += [
        UNITS_NOTE,
        *([BCE_NOTE] if "bce" in out else []),
        *([BCE_EXCESS_NOTE] if "bce_excess" in out else []),
        OBJECTIVE_NOTE,
        *elbo_note(out, meta),
        DETERMINISTIC_NOTE,
        *checkpoint_note(meta),
        *seed_notes(out["n_seeds"], out["label"]),
    ]
    return out


# -- set-level generation metrics -----------------------------------------------------------
# the columns reported beside a set metric: KID's spread over subsets, FID∞'s fit residual
_SPREAD = {"kid_mean": "kid_std", "kd_mean": "kd_std"}
_RESIDUAL = {"fid_inf": "fid_inf_residual", "fd_inf": "fd_inf_residual"}


def _set_level_summary(sub: pd.DataFrame, metrics: Sequence[str], where: str) -> dict[str, Any]:
    """Set-level metrics of one model/β/sampler: mean over its non-diverged seeds and a
    Student-t interval over seeds (stats.seed_interval; none with one seed). KID's std is
    the root mean square of the seeds' std over KID subsets; FID∞'s fit RMS the seeds' mean."""
    live = sub[~diverged_mask(sub)]
    row: dict[str, Any] = {
        "n_seeds": len(live),
        "diverged": len(live) == 0,
        "n_diverged": len(sub) - len(live),
    }
    for c in ("n_generated", "n_reference", "kid_subset_size"):
        row[c] = np.nan
        values = live[c].dropna().unique() if c in live else []
        if len(values) > 1:
            raise VaebenchError(
                f"{where}: seeds differ in {c} ({sorted(values.tolist())}); FID/KID are only "
                "comparable at equal N. Use one sample size per row."
            )
        if len(values):
            row[c] = float(values[0])
    for m in metrics:
        row[m] = row[f"{m}_lo"] = row[f"{m}_hi"] = np.nan
        for extra in (_SPREAD.get(m), _RESIDUAL.get(m)):
            if extra:
                row[extra] = np.nan
        if m in live and live[m].notna().any():
            row[m], row[f"{m}_lo"], row[f"{m}_hi"] = seed_interval(live[m].to_numpy(np.float64))
    for spread in _SPREAD.values():
        if spread in row and spread in live and live[spread].notna().any():
            row[spread] = float(np.sqrt(np.nanmean(live[spread].to_numpy(np.float64) ** 2)))
    for residual in _RESIDUAL.values():
        if residual in row and residual in live and live[residual].notna().any():
            row[residual] = float(live[residual].mean())
    return row


def set_level_rows(
    set_level: pd.DataFrame, metrics: Sequence[str], vae_in_sweep: bool
) -> tuple[pd.DataFrame, list[str]]:
    """One row per model/β/sampler of one-row-per-run-and-sampler set-level metrics: each
    metric's mean and t interval over seeds (_set_level_summary), with the notes of rows
    merged by the β sweep (names.sweep_rows)."""
    key = ["model", "beta", "sampler"]
    _require(set_level, ["run", "seed", *key], "set-level generation metrics")
    _check_unique(set_level, ["run", "sampler"], "set-level generation metrics")
    set_level, merged = sweep_rows(set_level, vae_in_sweep)
    metrics = [m for m in metrics if m in set_level]
    rows = []
    for k, sub in set_level.groupby(key, dropna=False, sort=False):
        model, beta, sampler = k[0], float(k[1]), k[2]
        stats = _set_level_summary(sub, metrics, f"{model}/{beta}/{sampler}")
        fam = str(sub["family"].iloc[0]) if "family" in sub else FAMILY.get(model, model)
        rows.append(
            {
                "model": model,
                "family": fam,
                "beta": beta,
                "sampler": sampler,
                "in_sweep": bool(sub["in_sweep"].iloc[0]),
                **stats,
            }
        )
    return pd.DataFrame(rows), merged


def generation_table(
    set_level: pd.DataFrame,
    roundtrip: pd.DataFrame | None = None,
    roundtrip_metrics: Sequence[str] = ROUNDTRIP_METRICS,
    vae_in_sweep: bool | None = None,
) -> pd.DataFrame:
    """One row per model/β/sampler: KID, FID@N, FID∞ (if the files have it), precision,
    recall, N, and the sample round-trip.

    `set_level` is the concatenation of generation_<sampler>.parquet files (one row per run and
    sampler); `roundtrip` of roundtrip_<sampler>.parquet files (one row per generated sample).
    Round-trip columns carry the prefix `rt_` (rt_bce_excess, rt_bce_excess_lo, ...): they are
    reconstruction metrics of generated samples passed back through the model, the original
    study's "generation" table, not to be confused with the reconstruction table's columns.
    Either input may be empty; a row missing from one side gets blank cells there.
    """
    key = ["model", "beta", "sampler"]
    meta = frame_metadata(set_level, roundtrip)
    if vae_in_sweep is None:
        models = [f["model"] for f in (set_level, roundtrip) if f is not None and "model" in f]
        vae_in_sweep = any((m == "beta_vae").any() for m in models)
    parts, merged = [], []
    if set_level is not None and len(set_level):
        rows, merged = set_level_rows(set_level, SET_METRICS, vae_in_sweep)
        parts.append(rows)
    if roundtrip is not None and len(roundtrip):
        rt = _per_image_table(roundtrip, roundtrip_metrics, key, ROUNDTRIP_PREFIX, vae_in_sweep)
        merged = merged or rt.attrs["footnotes"][1:]
        parts.append(rt.drop(columns=["label"]))
    if not parts:
        raise VaebenchError("generation_table got no set-level and no round-trip rows")
    out = parts[0] if len(parts) == 1 else _merge_sides(*parts)
    out["label"] = label_column(out)
    front = ["model", "family", "beta", "label", "in_sweep", "sampler", *_COUNTS]
    out = order_rows(out[front + [c for c in out.columns if c not in front]])
    notes = generation_notes(out, meta)
    if roundtrip is not None and len(roundtrip):
        notes += [
            "RT columns: sample round trip. x is a generated sample and x̂ the model's "
            "reconstruction of x (the original study's 'generation' table, which found larger "
            "β gave worse generations); images are compared with each other, so BCE excess "
            "replaces BCE. Their intervals: as the reconstruction table's, each seed's own "
            "samples paired by index (conservative for samples that differ between seeds).",
            UNITS_NOTE,
            *elbo_note(out, meta, ROUNDTRIP_PREFIX),
        ]
    notes += [*merged, *checkpoint_note(meta), *seed_notes(out["n_seeds"], out["label"])]
    out.attrs["footnotes"] = notes
    sizes = out["n_generated"].dropna().unique() if "n_generated" in out else []
    if len(sizes) == 1:
        out.attrs["headers"] = {"fid": f"FID@{int(sizes[0])} ↓"}
    return out


def _merge_sides(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Outer join of the set-level and round-trip rows on model, β and sampler."""
    a = a.assign(_b=a["beta"].fillna(-1.0))
    b = b.assign(_b=b["beta"].fillna(-1.0)).drop(columns=["beta", "family"])
    out = a.merge(b, on=["model", "_b", "sampler"], how="outer", suffixes=("", "_rt"))
    out["beta"] = out["_b"].where(out["_b"] != -1.0)
    missing = out["family"].isna()
    out.loc[missing, "family"] = [FAMILY.get(m, m) for m in out.loc[missing, "model"]]
    for c in (*_COUNTS, "in_sweep"):
        # Counts come from the set-level side where it has the row, else from the round-trip.
        if f"{c}_rt" in out:
            other = out.pop(f"{c}_rt")
            out[c] = out[c].where(out[c].notna(), other)
    out = out.drop(columns=["_b"])
    out["diverged"] = out["diverged"].astype(bool)
    out["in_sweep"] = out["in_sweep"].astype(bool)
    for c in ("n_seeds", "n_diverged"):
        out[c] = out[c].astype(np.int64)
    return out
