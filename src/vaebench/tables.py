"""Summary tables: per-image metrics in, one row per model/β out, written in four formats.

The study's question is which VAE variant reconstructs and generates best, so every cell is
a mean with a 95% percentile-bootstrap interval: two rows whose intervals overlap are not
ranked by the table. The same frame is written as Parquet and CSV (numbers for programs) and
as Markdown and LaTeX (cells "mean [lo, hi]" for people). A metric that does not apply to a
model stays blank, never 0: the seed slides filled unknown rows with zeros, which reads as a
perfect score.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vaebench import VaebenchError
from vaebench.io import atomic_path, provenance, read_parquet_metadata, save_parquet

MODEL_ORDER = ("vae", "beta_vae", "vqvae", "vaegan")
FAMILY = {"vae": "VAE", "beta_vae": "β-VAE", "vqvae": "VQ-VAE", "vaegan": "VAE-GAN"}
SAMPLER_ORDER = ("normal", "gmm", "pixelcnn")

# Per-image metrics, in the slides' column order (BCE MSE KL ELBO LPIPS SSIM GMSD), then ours.
METRICS = ("bce", "mse", "kl", "neg_elbo", "objective", "lpips", "ssim", "gmsd", "psnr", "ms_ssim")
# The slides' "generation" table, computed on generated samples passed back through the model.
ROUNDTRIP_METRICS = ("bce", "mse", "kl", "neg_elbo", "objective", "lpips", "ssim", "gmsd")
SET_METRICS = ("fid", "kid_mean", "precision", "recall")
ROUNDTRIP_PREFIX = "rt_"

# Direction of "better"; KL is a rate, not a quality, so it gets no arrow.
HIGHER_IS_BETTER = frozenset({"psnr", "ssim", "ms_ssim", "precision", "recall"})
NO_DIRECTION = frozenset({"kl"})

NAMES = {
    "bce": "BCE",
    "mse": "MSE",
    "kl": "KL",
    "neg_elbo": "−ELBO (β=1)",
    "objective": "objective (BCE+β·KL)",
    "lpips": "LPIPS",
    "ssim": "SSIM",
    "gmsd": "GMSD",
    "psnr": "PSNR",
    "ms_ssim": "MS-SSIM",
    "fid": "FID",
    "kid_mean": "KID",
    "precision": "precision",
    "recall": "recall",
}
UNITS = {
    "bce": "nats/image",
    "kl": "nats/image",
    "neg_elbo": "nats/image",
    "objective": "nats/image",
    "mse": "per pixel, [0, 1] scale",
    "psnr": "dB",
}
# Display-only columns for Markdown/LaTeX; anything else shows its own name.
COLUMN_HEADERS = {
    "label": "Model",
    "sampler": "sampler",
    "n_seeds": "seeds",
    "n_images": "N images",
    "rt_n_images": "RT N",
    "n_generated": "N gen/ref",
    "tau": "Kendall τ",
    "n_runs": "runs",
    "metric_a": "metric A",
    "metric_b": "metric B",
    "run_a": "run A",
    "run_b": "run B",
    "mean_a": "mean A",
    "mean_b": "mean B",
    "diff": "A − B",
    "excludes_zero": "CI excludes 0",
}
# Columns that stay in Parquet/CSV but are folded into other cells or footnotes for people.
HIDDEN = frozenset(
    {"model", "family", "beta", "seed", "diverged", "n_diverged", "weights_official"}
    | {"kid_std", "n_reference", "kid_subset_size"}
)
# Why a metric is blank for a model (else: "not computed").
NOT_APPLICABLE = {
    ("vqvae", "kl"): "VQ-VAE has no Gaussian posterior, so no KL",
    ("vqvae", "neg_elbo"): "needs KL, which VQ-VAE does not have",
    ("vqvae", "objective"): "VQ-VAE has no β: its KL is the constant log K per code position",
}

WEIGHTS_WARNING = (
    "⚠ LPIPS/FID computed with weights that are not the official ones (randomly initialised): "
    "values are meaningless"
)
DIVERGED = "diverged"
UNITS_NOTE = (
    "Units: BCE, KL, −ELBO and objective in nats per image (sums over all pixels and channels); "
    "MSE per pixel of images in [0, 1]; PSNR in dB; the others are unitless."
)
OBJECTIVE_NOTE = (
    "objective = BCE + β·KL, the β-weighted training loss (what the study slides call ELBO); "
    "−ELBO (β=1) = BCE + KL, the true negative ELBO under a Bernoulli decoder."
)


def metric_name(col: str) -> str:
    """Short display name of a metric column ("rt_bce" -> "RT BCE")."""
    if col.startswith(ROUNDTRIP_PREFIX):
        return "RT " + metric_name(col[len(ROUNDTRIP_PREFIX) :])
    return NAMES.get(col, col)


def metric_base(col: str) -> str:
    return col[len(ROUNDTRIP_PREFIX) :] if col.startswith(ROUNDTRIP_PREFIX) else col


def header(col: str) -> str:
    """Column header with an arrow saying which way is better ("SSIM ↑", "BCE ↓", "KL")."""
    base = metric_base(col)
    if base not in NAMES:
        return COLUMN_HEADERS.get(col, col)
    if base in NO_DIRECTION:
        return metric_name(col)
    return f"{metric_name(col)} {'↑' if base in HIGHER_IS_BETTER else '↓'}"


def row_label(model: str, beta: float) -> str:
    """The row name people read: the family, plus β for the β-VAE sweep."""
    family = FAMILY.get(model, model)
    if model == "beta_vae" and beta is not None and np.isfinite(beta):
        return f"{family} β={beta:g}"
    return family


def order_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Sort as the slides do: VAE, β-VAE by ascending β, VQ-VAE, VAE-GAN (then unknown models),
    then sampler and seed, so that every table and figure lists runs in one order."""
    keys = pd.DataFrame(index=df.index)
    keys["m"] = [MODEL_ORDER.index(m) if m in MODEL_ORDER else len(MODEL_ORDER) for m in df.model]
    keys["name"] = df["model"].astype(str)
    keys["b"] = df["beta"].astype(float).fillna(np.inf) if "beta" in df else 0.0
    if "sampler" in df:
        keys["s"] = [
            SAMPLER_ORDER.index(s) if s in SAMPLER_ORDER else len(SAMPLER_ORDER) for s in df.sampler
        ]
        keys["sname"] = df["sampler"].astype(str)
    if "seed" in df:
        keys["seed"] = df["seed"]
    order = keys.sort_values(list(keys.columns), kind="stable").index
    return df.loc[order].reset_index(drop=True)


def _require(df: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise VaebenchError(f"{what} lacks column(s) {missing}; it has {list(df.columns)}")


def with_diverged(
    df: pd.DataFrame, diverged: Iterable[dict], per_sampler: bool = False
) -> pd.DataFrame:
    """`df` plus one number-free row flagged diverged=True per diverged run (per sampler for
    the generation frames), so the run's table row says 'diverged' instead of vanishing.

    `diverged`: records with run, model, family, beta, seed and samplers (as written by
    vaebench.config.diverged_runs).
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
    return out


def diverged_mask(df: pd.DataFrame) -> pd.Series:
    """The optional per-row `diverged` flag (absent means no run diverged)."""
    if "diverged" not in df:
        return pd.Series(False, index=df.index)
    return df["diverged"].fillna(False).astype(bool)


def _rng(seed: int, key: str) -> np.random.Generator:
    """One generator per table row, keyed by the row's name: adding or removing a run leaves
    every other row's interval unchanged."""
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


def resample_counts(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """How often each of n items is drawn in `size` resamples of n with replacement."""
    idx = rng.integers(0, n, size=(size, n)) + np.arange(size)[:, None] * n
    return np.bincount(idx.ravel(), minlength=size * n).reshape(size, n).astype(np.float64)


def boot_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap means of the columns of `values` (n x k): an (n_boot x k) array.

    Rows are resampled together, so columns stay paired (the same images for every metric or
    run). Computed as count-matrix products in chunks: fast, and memory stays ~16 MB whatever n.
    A column holding NaN gives NaN means without touching the other columns.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    out = np.empty((n_boot, values.shape[1]))
    chunk = max(1, 2_000_000 // max(n, 1))
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        out[start : start + size] = resample_counts(rng, n, size) @ values / n
    return out


def hierarchical_boot_means(
    groups: Sequence[np.ndarray], n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """Bootstrap the mean of per-seed means: resample seeds, then images within each seed.

    Each of the S draws of a replicate gets its own image resample, so a seed drawn twice is
    not counted as one identical sample twice. With one seed this is the plain image bootstrap.
    """
    if len(groups) == 1:
        return boot_means(groups[0], n_boot, rng)
    total = np.zeros((n_boot, groups[0].shape[1]))
    for _ in range(len(groups)):
        pick = rng.integers(0, len(groups), n_boot)
        for s, values in enumerate(groups):
            rows = np.flatnonzero(pick == s)
            if rows.size:
                total[rows] += boot_means(values, rows.size, rng)
    return total / len(groups)


def _summarise(
    groups: Sequence[np.ndarray], n_boot: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean (seeds weighted equally) and 95% percentile-bootstrap bounds per column."""
    mean = np.mean([g.mean(axis=0) for g in groups], axis=0)
    boot = hierarchical_boot_means(groups, n_boot, rng)
    lo, hi = np.percentile(boot, [2.5, 97.5], axis=0)
    return mean, lo, hi


def _per_image_summary(
    sub: pd.DataFrame, metrics: Sequence[str], n_boot: int, rng: np.random.Generator, where: str
) -> dict[str, Any]:
    """Summarise one model/β (and sampler) over its non-diverged runs and their images."""
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
        groups = [g[usable].to_numpy(np.float64) for _, g in live.groupby("run", sort=True)]
        mean, lo, hi = _summarise(groups, n_boot, rng)
        for j, m in enumerate(usable):
            row[m], row[f"{m}_lo"], row[f"{m}_hi"] = mean[j], lo[j], hi[j]
    return row


def _check_unique(df: pd.DataFrame, keys: list[str], what: str) -> None:
    dup = df.duplicated(keys)
    if dup.any():
        first = df.loc[dup, keys].iloc[0].to_dict()
        raise VaebenchError(
            f"{what}: {int(dup.sum())} duplicate rows for {keys}, e.g. {first}; "
            "was one run's file read twice?"
        )


def _bootstrap_note(n_boot: int, seed: int, unit: str) -> str:
    return (
        f"Cells: mean [95% percentile-bootstrap interval], {n_boot} resamples of {unit} "
        f"(seed {seed}). Rows with several seeds weight seeds equally and resample hierarchically: "
        f"seeds first, then {unit} within each seed."
    )


def reconstruction_table(
    per_image: pd.DataFrame,
    n_boot: int = 1000,
    seed: int = 0,
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per model/β: each metric's mean over test images with a 95% bootstrap interval.

    `per_image` is the concatenation of the runs' reconstruction.parquet files. Columns out:
    model, family, beta, label, n_seeds, n_images, diverged, n_diverged, and for each metric
    `m`, `m_lo`, `m_hi`. A metric that is NaN for every image of a row (KL for VQ-VAE) stays
    NaN; runs flagged `diverged` are left out of their row's numbers, and a row whose runs all
    diverged has `diverged` True and no numbers.
    """
    out = _per_image_table(per_image, n_boot, seed, metrics, by=["model", "beta"], prefix="")
    out.attrs["footnotes"] += [UNITS_NOTE, OBJECTIVE_NOTE]
    return out


def _per_image_table(
    per_image: pd.DataFrame,
    n_boot: int,
    seed: int,
    metrics: Sequence[str] | None,
    by: list[str],
    prefix: str,
) -> pd.DataFrame:
    what = "per-image metrics" if not prefix else "round-trip metrics"
    _require(per_image, ["run", "model", "beta", "seed", "image", *by], what)
    metrics = [m for m in (metrics or METRICS) if m in per_image.columns]
    if not metrics:
        raise VaebenchError(f"{what} has none of the metric columns {list(METRICS)}")
    _check_unique(per_image, ["run", *by[2:], "image"], what)
    rows = []
    for key, sub in per_image.groupby(by, dropna=False, sort=False):
        key = dict(zip(by, key, strict=True))
        model, beta = key["model"], float(key["beta"])
        name = "/".join(str(v) for v in key.values())
        row = {
            "model": model,
            "family": str(sub["family"].iloc[0]) if "family" in sub else FAMILY.get(model, model),
            "beta": beta,
            "label": row_label(model, beta),
            **{k: v for k, v in key.items() if k not in ("model", "beta")},
        }
        stats = _per_image_summary(sub, metrics, n_boot, _rng(seed, prefix + name), name)
        rows.append(
            {**row, **{(prefix + k if k not in _COUNTS else k): v for k, v in stats.items()}}
        )
    out = order_rows(pd.DataFrame(rows))
    out.attrs["footnotes"] = [_bootstrap_note(n_boot, seed, "images")]
    return out


_COUNTS = ("n_seeds", "diverged", "n_diverged")


def _set_level_summary(sub: pd.DataFrame, n_boot: int, rng: np.random.Generator, where: str):
    """Set-level metrics of one model/β/sampler: mean over its non-diverged seeds.

    There is no per-image value to resample, so with several seeds the interval comes from
    resampling seeds, and with one seed there is none (lo/hi NaN). KID's std is the root mean
    square of the seeds' std over KID subsets.
    """
    live = sub[~diverged_mask(sub)]
    row: dict[str, Any] = {
        "n_seeds": len(live),
        "diverged": len(live) == 0,
        "n_diverged": len(sub) - len(live),
    }
    for m in ("fid", "kid_mean", "precision", "recall"):
        row[m] = row[f"{m}_lo"] = row[f"{m}_hi"] = np.nan
        if m == "kid_mean":
            del row["kid_mean_lo"], row["kid_mean_hi"]
            row["kid_std"] = np.nan
    for c in ("n_generated", "n_reference", "kid_subset_size"):
        row[c] = np.nan
    if live.empty:
        return row
    for c in ("n_generated", "n_reference", "kid_subset_size"):
        if c in live:
            values = live[c].dropna().unique()
            if len(values) > 1:
                raise VaebenchError(
                    f"{where}: seeds differ in {c} ({sorted(values.tolist())}); FID/KID are only "
                    "comparable at equal N. Use one sample size per row."
                )
            row[c] = float(values[0]) if len(values) else np.nan
    for m in ("fid", "precision", "recall", "kid_mean"):
        if m not in live or live[m].isna().all():
            continue
        values = live[m].to_numpy(np.float64)
        row[m] = float(np.mean(values))
        if m != "kid_mean" and len(values) > 1:
            boot = boot_means(values[:, None], n_boot, rng)[:, 0]
            row[f"{m}_lo"], row[f"{m}_hi"] = np.percentile(boot, [2.5, 97.5])
    if "kid_std" in live and live["kid_std"].notna().any():
        row["kid_std"] = float(np.sqrt(np.nanmean(live["kid_std"].to_numpy(np.float64) ** 2)))
    return row


def generation_table(
    set_level: pd.DataFrame,
    roundtrip: pd.DataFrame | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    roundtrip_metrics: Sequence[str] = ROUNDTRIP_METRICS,
) -> pd.DataFrame:
    """One row per model/β/sampler: FID, KID, precision, recall, N, and the sample round-trip.

    `set_level` is the concatenation of generation_<sampler>.parquet files (one row per run and
    sampler); `roundtrip` of roundtrip_<sampler>.parquet files (one row per generated sample).
    Round-trip columns carry the prefix `rt_` (rt_bce, rt_bce_lo, ...): they are reconstruction
    metrics of generated samples passed back through the model, what the study slides call the
    "generation" table, and must not be confused with the reconstruction table's columns.
    Either input may be empty; a row missing from one side gets blank cells there.
    """
    key = ["model", "beta", "sampler"]
    parts = []
    if set_level is not None and len(set_level):
        _require(set_level, ["run", "seed", *key], "set-level generation metrics")
        _check_unique(set_level, ["run", "sampler"], "set-level generation metrics")
        rows = []
        for k, sub in set_level.groupby(key, dropna=False, sort=False):
            model, beta, sampler = k[0], float(k[1]), k[2]
            name = f"{model}/{beta}/{sampler}"
            stats = _set_level_summary(sub, n_boot, _rng(seed, "set/" + name), name)
            fam = str(sub["family"].iloc[0]) if "family" in sub else FAMILY.get(model, model)
            rows.append({"model": model, "family": fam, "beta": beta, "sampler": sampler, **stats})
        parts.append(pd.DataFrame(rows))
    if roundtrip is not None and len(roundtrip):
        rt = _per_image_table(
            roundtrip, n_boot, seed, roundtrip_metrics, by=key, prefix=ROUNDTRIP_PREFIX
        )
        parts.append(rt.drop(columns=["label"]))
    if not parts:
        raise VaebenchError("generation_table got no set-level and no round-trip rows")
    if len(parts) == 1:
        out = parts[0]
    else:
        a, b = parts
        a = a.assign(_b=a["beta"].fillna(-1.0))
        b = b.assign(_b=b["beta"].fillna(-1.0)).drop(columns=["beta", "family"])
        out = a.merge(b, on=["model", "_b", "sampler"], how="outer", suffixes=("", "_rt"))
        out["beta"] = out["_b"].where(out["_b"] != -1.0)
        missing = out["family"].isna()
        out.loc[missing, "family"] = [FAMILY.get(m, m) for m in out.loc[missing, "model"]]
        for c in _COUNTS:
            # Counts come from the set-level side where it has the row, else from the round-trip.
            if f"{c}_rt" in out:
                other = out.pop(f"{c}_rt")
                out[c] = out[c].where(out[c].notna(), other)
        out = out.drop(columns=["_b"])
        out["diverged"] = out["diverged"].astype(bool)
        for c in ("n_seeds", "n_diverged"):
            out[c] = out[c].astype(np.int64)
    out["label"] = [row_label(m, b) for m, b in zip(out["model"], out["beta"], strict=True)]
    front = ["model", "family", "beta", "label", "sampler", *_COUNTS]
    out = order_rows(out[front + [c for c in out.columns if c not in front]])
    notes = [
        "FID/KID/precision/recall: one value per run and sampler; rows with several seeds show "
        "the mean over seeds and a seed-bootstrap interval. KID: mean ± std over subsets.",
        "FID is biased ~1/N: compare rows only at equal N (column N gen/ref).",
    ]
    if roundtrip is not None and len(roundtrip):
        notes.append(
            "RT columns: sample round-trip. x is a generated sample and x̂ the model's "
            "reconstruction of x (the study slides' 'generation' table). "
            + _bootstrap_note(n_boot, seed, "samples")
        )
        notes.append(UNITS_NOTE)
    out.attrs["footnotes"] = notes
    return out


# -- reading inputs -------------------------------------------------------------------------


def load_metrics(
    paths: Iterable[str | Path], settings_key: str = "metrics"
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Concatenate per-run metric Parquets and merge what their metadata says.

    Returns (frame, info) with info = {"weights_official": bool, "settings": dict}.
    `weights_official` is True only if every file says so: a missing flag counts as False,
    because an unmarked table with random-weight LPIPS would be taken for a result. Settings
    (metadata[settings_key], e.g. MS-SSIM kernel/scales, LPIPS net) must be equal across
    files: a table mixing them compares numbers that are not comparable.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise VaebenchError("no metric files to aggregate: is the run table empty?")
    frames, official, settings, first = [], True, None, None
    for p in paths:
        if not p.exists():
            raise VaebenchError(f"{p}: metric file missing; run its metrics job first")
        meta = read_parquet_metadata(p)
        official = official and bool(meta.get("weights_official", False))
        s = meta.get(settings_key, {})
        if settings is None:
            settings, first = s, p
        elif json.dumps(s, sort_keys=True) != json.dumps(settings, sort_keys=True):
            raise VaebenchError(
                f"{p} was computed with metric settings {s}, but {first} with {settings}; "
                "rerun the metrics with one config"
            )
        frames.append(pd.read_parquet(p))
    return pd.concat(frames, ignore_index=True), {
        "weights_official": official,
        "settings": settings or {},
    }


def settings_footnotes(settings: dict[str, Any]) -> list[str]:
    """One footnote per metric whose settings change its values (MS-SSIM kernel, LPIPS net)."""
    notes = []
    for name, s in sorted(settings.items()):
        label = metric_name(name)
        if name == "ms_ssim" and isinstance(s, dict):
            kernel = s.get("kernel", s.get("kernel_size"))
            notes.append(
                f"MS-SSIM: piq, data_range 1, Gaussian kernel {kernel}, {s.get('scales')} scales "
                "(the default 11/5 needs >= 161 px)."
            )
        elif name == "lpips" and isinstance(s, dict):
            notes.append(
                f"LPIPS: {s.get('net')} trunk, v{s.get('version')}, inputs in [-1, 1]; "
                "scores from different nets are not comparable."
            )
        elif isinstance(s, dict):
            notes.append(f"{label}: " + ", ".join(f"{k} {v}" for k, v in sorted(s.items())) + ".")
        else:
            notes.append(f"{label}: {s}.")
    return notes


def _header_suffix(col: str, settings: dict[str, Any] | None) -> str:
    s = (settings or {}).get(metric_base(col))
    if not isinstance(s, dict):
        return ""
    if metric_base(col) == "ms_ssim":
        return f" (k{s.get('kernel', s.get('kernel_size'))}, {s.get('scales')} sc.)"
    if metric_base(col) == "lpips" and s.get("net"):
        return f" ({s['net']})"
    return ""


# -- writing --------------------------------------------------------------------------------


def fmt(x: Any, digits: int = 4) -> str:
    """A number with `digits` significant digits, blank for NaN (never "0" or "nan")."""
    if x is None or (not isinstance(x, str) and pd.isna(x)):
        return ""
    if isinstance(x, bool | np.bool_):
        return "yes" if x else "no"
    if isinstance(x, int | np.integer):
        return str(int(x))
    x = float(x)
    if math.isinf(x):
        return "inf" if x > 0 else "−inf"
    if x != 0 and (abs(x) >= 10**digits):
        return f"{x:.0f}"
    text = f"{x:.{digits}g}"
    return "−" + text[1:] if text.startswith("-") else text


def _is_metric(col: str) -> bool:
    return metric_base(col) in NAMES


def _display(
    df: pd.DataFrame, settings: dict[str, Any] | None
) -> tuple[list[str], list[list[str]], list[bool]]:
    """Headers, string cells and right-alignment flags for the human-readable formats."""
    cols = [
        c
        for c in df.columns
        if c not in HIDDEN and not (c.endswith(("_lo", "_hi")) and c[:-3] in df.columns)
    ]
    diverged = diverged_mask(df).to_numpy()
    headers, cells, right = [], [], []
    for c in cols:
        h = header(c) + (_header_suffix(c, settings) if _is_metric(c) else "")
        col_cells = []
        for i, (_, r) in enumerate(df.iterrows()):
            v = r[c]
            if diverged[i] and _is_metric(c):
                col_cells.append(DIVERGED)
            elif c == "kid_mean" and "kid_std" in df and not pd.isna(v):
                std = r["kid_std"]
                col_cells.append(fmt(v) + ("" if pd.isna(std) else f" ± {fmt(std)}"))
            elif c == "n_generated" and "n_reference" in df:
                g, ref = r[c], r["n_reference"]
                col_cells.append("" if pd.isna(g) else f"{int(g)}/{fmt_count(ref)}")
            elif f"{c}_lo" in df and f"{c}_hi" in df and not pd.isna(v):
                lo, hi = r[f"{c}_lo"], r[f"{c}_hi"]
                if pd.isna(lo) or pd.isna(hi):
                    col_cells.append(fmt(v))
                else:
                    col_cells.append(f"{fmt(v)} [{fmt(lo)}, {fmt(hi)}]")
            else:
                col_cells.append(fmt(v) if not isinstance(v, str) else v)
        headers.append(h)
        cells.append(col_cells)
        right.append(pd.api.types.is_numeric_dtype(df[c]) and df[c].dtype != bool)
    rows = [list(r) for r in zip(*cells, strict=True)] if cells else []
    return headers, rows, right


def fmt_count(x: Any) -> str:
    return "" if pd.isna(x) else str(int(x))


def auto_footnotes(df: pd.DataFrame) -> list[str]:
    """Footnotes the frame itself implies: blank cells, diverged runs, unequal FID sample sizes."""
    notes = []
    div = diverged_mask(df)
    label = df["label"] if "label" in df else pd.Series([str(i) for i in df.index], df.index)
    if "sampler" in df:
        label = label + " / " + df["sampler"].astype(str)
    for c in df.columns:
        if not _is_metric(c) or c.endswith(("_lo", "_hi")):
            continue
        blank = df[c].isna() & ~div
        if not blank.any():
            continue
        reasons: dict[str, list[str]] = {}
        models = df["model"] if "model" in df else pd.Series("", index=df.index)
        for i in df.index[blank]:
            why = NOT_APPLICABLE.get((models[i], metric_base(c)), "not computed for this row")
            reasons.setdefault(why, []).append(str(label[i]))
        for why, rows in reasons.items():
            notes.append(
                f"{metric_name(c)} is blank for {', '.join(rows)}: {why} (left empty, not 0)."
            )
    if div.any():
        notes.append(
            f"'{DIVERGED}': every run of {', '.join(map(str, label[div]))} diverged in training; "
            "no numbers are shown."
        )
    if "n_diverged" in df:
        part = (df["n_diverged"] > 0) & ~div
        if part.any():
            notes.append(
                "Some seeds diverged and are left out of: "
                + ", ".join(f"{label[i]} ({int(df.at[i, 'n_diverged'])})" for i in df.index[part])
                + "."
            )
    if "kid_subset_size" in df:
        sizes = df["kid_subset_size"].dropna().unique()
        if len(sizes):
            notes.append(
                f"KID: subsets of {', '.join(fmt_count(s) for s in sizes)} samples; "
                "KID is unbiased, so it compares across N."
            )
    if "n_generated" in df:
        sizes = df["n_generated"].dropna().unique()
        if len(sizes) > 1:
            notes.append(
                f"Sample sizes differ across rows ({', '.join(fmt_count(s) for s in sizes)}): "
                "FID values of rows with different N are not comparable."
            )
    return notes


def to_markdown(
    df: pd.DataFrame,
    title: str,
    footnotes: Sequence[str],
    weights_official: bool,
    settings: dict[str, Any] | None = None,
) -> str:
    """A Markdown table with "mean [lo, hi]" cells, the weights warning, and numbered notes."""
    headers, rows, right = _display(df, settings)
    out = [f"### {title}", ""]
    if not weights_official:
        out += [f"**{WEIGHTS_WARNING}**", ""]
    out.append("| " + " | ".join(headers) + " |")
    out.append("|" + "|".join("---:" if r else ":---" for r in right) + "|")
    for row in rows:
        out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    if footnotes:
        out += ["", "Notes:", ""]
        out += [f"{i}. {note}" for i, note in enumerate(footnotes, 1)]
    return "\n".join(out) + "\n"


_TEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_TEX_UNICODE = {
    "β": r"$\beta$",
    "τ": r"$\tau$",
    "−": r"$-$",
    "↓": r"$\downarrow$",
    "↑": r"$\uparrow$",
    "±": r"$\pm$",
    "·": r"$\cdot$",
    "≥": r"$\geq$",
    "≈": r"$\approx$",
    "×": r"$\times$",
    "⚠": r"\textbf{Warning:}",
    "x̂": r"$\hat{x}$",
}


def tex_escape(text: str) -> str:
    """Escape LaTeX specials and spell the symbols we use so that pdflatex compiles them."""
    text = "".join(_TEX_SPECIAL.get(ch, ch) for ch in text)
    for k, v in _TEX_UNICODE.items():
        text = text.replace(k, v)
    return text


def to_latex(
    df: pd.DataFrame,
    title: str,
    footnotes: Sequence[str],
    weights_official: bool,
    settings: dict[str, Any] | None = None,
) -> str:
    """A booktabs table (needs \\usepackage{booktabs}); intervals in small type after the mean."""
    headers, rows, right = _display(df, settings)
    spec = "".join("r" if r else "l" for r in right)
    out = [
        "% Written by vaebench.tables.write_table; needs \\usepackage{booktabs}.",
        r"\begin{table}[tbp]",
        r"\centering",
        rf"\caption{{{tex_escape(title)}}}",
        r"\scriptsize",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(tex_escape(h) for h in headers) + r" \\",
        r"\midrule",
    ]
    for row in rows:
        tex_cells = []
        for cell in row:
            if " [" in cell and cell.endswith("]"):
                mean, interval = cell.split(" [", 1)
                tex_cells.append(tex_escape(mean) + r"\,{\tiny[" + tex_escape(interval[:-1]) + "]}")
            else:
                tex_cells.append(tex_escape(cell))
        out.append(" & ".join(tex_cells) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    notes = [rf"\textcolor{{red}}{{{tex_escape(WEIGHTS_WARNING)}}}"] if not weights_official else []
    notes += [f"({i}) {tex_escape(n)}" for i, n in enumerate(footnotes, 1)]
    if notes:
        out += [r"\par\smallskip", r"\parbox{\linewidth}{\scriptsize"]
        out += [n + r"\\" for n in notes]
        out.append("}")
    if not weights_official:
        out.insert(1, "% \\textcolor needs \\usepackage{xcolor}.")
    out.append(r"\end{table}")
    return "\n".join(out) + "\n"


def to_csv_text(
    df: pd.DataFrame, title: str, footnotes: Sequence[str], weights_official: bool
) -> str:
    """CSV with the title, the weights warning and the notes as leading '# ' lines.

    pandas.read_csv(path, comment="#") reads the data back unchanged; the warning also stays in
    the `weights_official` column of every row, so it survives filtering and concatenation.
    """
    lines = [title] + ([WEIGHTS_WARNING] if not weights_official else []) + list(footnotes)
    head = "".join("# " + " ".join(line.split()) + "\n" for line in lines)
    return head + df.to_csv(index=False, lineterminator="\n")


def write_table(
    df: pd.DataFrame,
    stem: str | Path,
    *,
    title: str,
    footnotes: Sequence[str] = (),
    weights_official: bool,
    settings: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write `df` as stem.parquet, stem.csv, stem.md and stem.tex, each atomically.

    The data files (Parquet, CSV) get an extra boolean column `weights_official`, so that the
    warning travels with every row; the CSV and Markdown/LaTeX also print it as text when
    False. Footnotes are `footnotes`, those the table function attached (df.attrs), those
    implied by the frame (blank cells, diverged rows, unequal N) and, given `settings`
    (metric settings from the metrics' Parquet metadata), the MS-SSIM/LPIPS settings.
    Returns the written paths by suffix.
    """
    stem = Path(stem)
    notes = list(dict.fromkeys([*footnotes, *df.attrs.get("footnotes", []), *auto_footnotes(df)]))
    if settings:
        notes += [n for n in settings_footnotes(settings) if n not in notes]
    data = df.reset_index(drop=True).copy()
    data.attrs = {}
    data["weights_official"] = bool(weights_official)
    for c in data.columns:
        if data[c].dtype == object or pd.api.types.is_string_dtype(data[c]):
            if data[c].astype(str).str.contains("#", regex=False).any():
                raise VaebenchError(f"column {c!r} holds '#', which the CSV reserves for comments")
    meta = {
        "title": title,
        "footnotes": notes,
        "weights_official": bool(weights_official),
        "settings": settings or {},
        "provenance": provenance(),
        **(metadata or {}),
    }
    paths = {s: Path(f"{stem}.{s}") for s in ("parquet", "csv", "md", "tex")}
    save_parquet(paths["parquet"], data, meta)
    texts = {
        "csv": to_csv_text(data, title, notes, weights_official),
        "md": to_markdown(df, title, notes, weights_official, settings),
        "tex": to_latex(df, title, notes, weights_official, settings),
    }
    for suffix, text in texts.items():
        with atomic_path(paths[suffix], "." + suffix) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return paths
