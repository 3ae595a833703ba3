"""The feature_spaces table: the set-level generation metrics on every configured feature
space side by side (vaebench.metrics.spaces), one row per space and model/β/sampler.

Inception's rows are the generation table's FID, FID∞, KID, precision, recall, density and
coverage under the names every space shares (FD, FD∞, KD, ...); the other spaces' come from
their own metric files (vaebench.jobs_spaces). Cells are means over seeds with a Student-t
interval over seeds, as in the generation table (summaries.set_level_rows). CMMD is CLIP's
protocol and is computed on CLIP only: blank elsewhere, with a note.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vaebench.metrics import registry, spaces
from vaebench.metrics.files import frame_metadata, seed_notes
from vaebench.names import diverged_mask, label_column, order_rows, sweep_rows
from vaebench.summaries import set_level_rows


def long_frame(set_level: pd.DataFrame, space_level: pd.DataFrame | None) -> pd.DataFrame:
    """One row per run, sampler and space: Inception's generation rows renamed to the shared
    names (space "inception", no CMMD), then the other spaces' rows. The number-free rows of
    diverged runs (names.with_diverged, in `set_level`) are repeated on every space."""
    inception = set_level.rename(columns={v: k for k, v in spaces.INCEPTION_COLUMNS.items()})
    inception = inception.assign(space=spaces.INCEPTION, cmmd=np.nan)
    parts = [inception]
    if space_level is not None and len(space_level):
        parts.append(space_level)
        if "diverged" in inception:
            gone = inception[inception["diverged"].fillna(False).astype(bool)]
            parts += [gone.assign(space=k) for k in dict.fromkeys(space_level["space"])]
    return pd.concat(parts, ignore_index=True)


def feature_space_table(
    set_level: pd.DataFrame,
    space_level: pd.DataFrame | None = None,
    vae_in_sweep: bool | None = None,
) -> pd.DataFrame:
    """Rows by space (registry order), then as every table orders them; columns space,
    then registry.SPACE's metrics with their intervals."""
    long = long_frame(set_level, space_level)
    if vae_in_sweep is None:
        vae_in_sweep = bool((long["model"] == "beta_vae").any())
    parts, merged = [], []
    for key in [k for k in spaces.KEYS if k in set(long["space"])]:
        rows, merged = set_level_rows(long[long["space"] == key], registry.SPACE, vae_in_sweep)
        rows.insert(0, "space", spaces.BY_KEY[key].label)
        rows["label"] = label_column(rows)
        parts.append(order_rows(rows))
    out = pd.concat(parts, ignore_index=True)
    front = ["space", "model", "family", "beta", "label", "in_sweep", "sampler", "n_seeds",
             "diverged", "n_diverged"]  # fmt: skip
    out = out[[c for c in front if c in out] + [c for c in out.columns if c not in front]]
    out = out.drop(columns=["fd_inf_residual", "kd_std"], errors="ignore")
    if out["cmmd"].isna().all():  # no CLIP space in this study
        out = out.drop(columns=["cmmd", "cmmd_lo", "cmmd_hi"])
    g = frame_metadata(set_level, space_level).get("generation", {})
    used = [spaces.BY_KEY[k] for k in spaces.KEYS if k in set(long["space"])]
    notes = [
        "Set-level generation metrics on each feature space: " + "; ".join(
            f"{s.label}: {s.protocol} ({s.reference})" for s in used) + ".",
        "FD, FD∞ and KD are the generation table's FID, FID∞ and KID formulas on each space's "
        "features (on Inception they are those numbers), FD∞ from FD at "
        f"N = {g.get('fid_sizes', 'several sizes')}; precision and recall (k = "
        f"{g.get('pr_k', 3)}) and density and coverage (k = {g.get('dc_k', 5)}) are the k-NN "
        "estimates of the generation table on each space's features. Compare rows within a "
        "space, not across spaces: each space has its own scale.",
        *merged,
        *seed_notes(out["n_seeds"], out["label"]),
    ]  # fmt: skip
    out.attrs["blank_notes"] = {"cmmd": registry.BY_KEY["cmmd"].note}
    out.attrs["footnotes"] = notes
    return out


# the set metrics compared across spaces: each space's FD and KD, and CMMD (on CLIP)
AGREEMENT_METRICS = ("fd", "kd_mean", "cmmd")


def space_agreement(
    set_level: pd.DataFrame,
    space_level: pd.DataFrame | None,
    n_boot: int = 1000,
    seed: int = 0,
    vae_in_sweep: bool | None = None,
) -> pd.DataFrame:
    """Do the feature spaces rank the models alike? Kendall τ-b between the rankings of the
    model/β/sampler rows by FD and KD on each space and by CMMD (level "set"; columns as
    agreement.metric_agreement's, a metric named "<key>@<space>").

    A row is ranked by its mean over seeds; the 95% interval draws each row's training
    variation with stats.seed_t_weights (Student t from its seeds' spread), as the model
    level of the per-image agreement does; with one seed there is no interval. Rows where
    either metric is blank (diverged) are left out of that pair; fewer than 3 rows: NaN.
    """
    from vaebench.agreement import tau_b
    from vaebench.stats import seed_t_weights

    long = long_frame(set_level, space_level)
    used = [k for k in spaces.KEYS if k in set(long["space"])]
    if len(used) < 2:  # one space: nothing to compare across spaces
        empty = pd.DataFrame(columns=["level", "metric_a", "metric_b", "tau", "tau_lo",
                                      "tau_hi", "n_rows", "n_seeds", "n_images"])  # fmt: skip
        empty.attrs["footnotes"] = []
        return empty
    if vae_in_sweep is None:
        vae_in_sweep = bool((long["model"] == "beta_vae").any())
    long, _ = sweep_rows(long[~diverged_mask(long)], vae_in_sweep)
    long = long.assign(row=long["model"].astype(str) + "/" + long["beta"].map(repr) + "/"
                       + long["sampler"].astype(str))  # fmt: skip
    keys = list(dict.fromkeys(long["row"]))
    columns, values = [], []  # per metric@space: a list (per row) of its seeds' values
    for space in used:
        sub = long[long["space"] == space]
        for m in AGREEMENT_METRICS:
            if m not in sub or sub[m].isna().all():
                continue
            seeds = {k: g[m].to_numpy(np.float64) for k, g in sub.groupby("row", sort=False)}
            columns.append(f"{m}@{space}")
            values.append([seeds.get(k, np.array([np.nan])) for k in keys])
    rng = np.random.default_rng([seed, 3])
    n_seeds = [max(len(col[g]) for col in values) for g in range(len(keys))] if values else []
    weights = [seed_t_weights(rng, n, n_boot) for n in n_seeds]
    out = []
    for i in range(len(columns)):
        for j in range(i + 1, len(columns)):
            a, b = values[i], values[j]
            ok = [g for g in range(len(keys)) if len(a[g]) == len(b[g]) == n_seeds[g]
                  and np.isfinite(a[g]).all() and np.isfinite(b[g]).all()]  # fmt: skip
            tau = lo = hi = np.nan
            if len(ok) >= 3:
                ma = np.array([a[g].mean() for g in ok])
                mb = np.array([b[g].mean() for g in ok])
                tau = float(tau_b(ma[None], mb[None])[0])
                if max(n_seeds[g] for g in ok) > 1:
                    ba = np.stack([weights[g] @ a[g] for g in ok], axis=1)
                    bb = np.stack([weights[g] @ b[g] for g in ok], axis=1)
                    t = tau_b(ba, bb)
                    t = t[np.isfinite(t)]
                    lo, hi = (float(v) for v in np.percentile(t, [2.5, 97.5]))
            out.append({"level": "set", "metric_a": columns[i], "metric_b": columns[j],
                        "tau": tau, "tau_lo": lo, "tau_hi": hi, "n_rows": len(ok),
                        "n_seeds": min((n_seeds[g] for g in ok), default=0),
                        "n_images": np.nan})  # fmt: skip
    frame = pd.DataFrame(out)
    frame.attrs["footnotes"] = [
        "level 'set': model/β/sampler rows ranked by a set-level metric on a feature space "
        "(FD, KD; CMMD on CLIP), each row by its mean over seeds; 95% interval from "
        f"{n_boot} draws of every row's training variation (Student t from its seeds' spread; "
        "none with one seed). Lower is better for all of them. Rows closer than about 2 sd of "
        "a row mean bias τ itself towards 0 (simulated: the interval covers the true τ 94% "
        "of the time at 2 sd apart, 90% at 1.5 sd; tests/test_calibration.py)."
    ]
    return frame
