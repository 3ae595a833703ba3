"""Published numbers next to the study's own: the `compared` table (config key compare_to).

A paper's table (Pythae's benchmark reports reconstruction MSE and FID with N(0, I) and GMM
samples per family) is typed once into a small CSV, one value per line:

    model,beta,metric,sampler,value,source
    vae,,mse,,0.0123,Table 2
    vae,,fid,normal,55.1,Table 3

- model: a registry key (vaebench.families); beta: only to tell β-VAE sweep points apart;
- metric: a column of the reconstruction table (mse, ssim, lpips, ...) with no sampler, or
  of the generation table (fid, kid_mean, precision, recall, ...) with its sampler;
- value: the published number, in the unit the source uses; source: free text (optional).

The table has one row per study row and (metric, sampler) the file names, where either side
has a number: the study's value with its interval and N, and the published one. A cell
either side may be blank (a family the source left out, a sampler this study did not run, a
metric that does not apply); a note says which. The published numbers are shown as given:
vaebench does not rescale them, and FID depends on N and on the reference set, so the table
gives this study's N.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vaebench import VaebenchError, families
from vaebench.names import METRICS, SET_METRICS, metric_name

COLUMNS = ("model", "metric", "sampler", "value")
OPTIONAL = ("beta", "source")
KEY = ["model", "beta", "metric", "sampler"]


def read_published(path: str | Path) -> pd.DataFrame:
    """The published values, checked: one line naming the file (and the line) on bad input."""
    where = f"compare_to.file {path}"
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise VaebenchError(f"{where}: not readable as CSV ({err})") from None
    missing = [c for c in COLUMNS if c not in df]
    extra = [c for c in df if c not in (*COLUMNS, *OPTIONAL)]
    if missing or extra:
        raise VaebenchError(
            f"{where}: columns must be {', '.join(COLUMNS)} (and optionally beta, source); "
            f"missing {missing}, unknown {extra}"
        )
    for c in OPTIONAL:
        df[c] = df[c] if c in df else ""
    df = df.apply(lambda s: s.str.strip())
    for i, r in df.iterrows():
        line = f"{where}, line {i + 2}"
        if r["model"] not in families.BY_KEY:
            raise VaebenchError(
                f"{line}: unknown model {r['model']!r}; one of {families.MODEL_ORDER}"
            )
        per_image, set_level = r["metric"] in METRICS, r["metric"] in SET_METRICS
        if not (per_image or set_level):
            raise VaebenchError(
                f"{line}: unknown metric {r['metric']!r}; one of {[*METRICS, *SET_METRICS]}"
            )
        if per_image and r["sampler"]:
            raise VaebenchError(
                f"{line}: {r['metric']} is a reconstruction metric: leave sampler empty"
            )
        if set_level and r["sampler"] not in families.SAMPLERS:
            raise VaebenchError(
                f"{line}: {r['metric']} needs a sampler, one of {list(families.SAMPLERS)}"
            )
        for c in ("value", "beta"):
            if (r[c] or c == "value") and not _is_number(r[c]):
                raise VaebenchError(f"{line}: {c} {r[c]!r} is not a number")
    df["value"] = df["value"].astype(float)
    df["beta"] = pd.to_numeric(df["beta"].replace("", np.nan)).astype(float)
    df["sampler"] = df["sampler"].astype(object).where(df["sampler"] != "", None)
    dup = df.duplicated(KEY, keep=False)
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise VaebenchError(
            f"{where}, line {i + 2}: the same model, beta, metric and sampler twice"
        )
    return df


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _published(pub: pd.DataFrame, model: str, beta: float, metric: str, sampler) -> pd.Series:
    """The published lines for a study row: the model's, with its β if the file gives one."""
    rows = pub[(pub["model"] == model) & (pub["metric"] == metric)]
    rows = rows[rows["sampler"].isna()] if sampler is None else rows[rows["sampler"] == sampler]
    with_beta = rows[rows["beta"].notna()]
    if len(with_beta):
        return with_beta[np.isclose(with_beta["beta"], beta)]
    return rows


def comparison_table(
    recon: pd.DataFrame, generation: pd.DataFrame, pub: pd.DataFrame, label: str
) -> pd.DataFrame:
    """The long table: study rows (in the tables' order) x the (metric, sampler) pairs of
    `pub`. `recon`, `generation`: the study's reconstruction and generation tables."""
    pairs = list(dict.fromkeys(zip(pub["metric"], pub["sampler"], strict=True)))
    pairs.sort(key=lambda p: (p[0] in SET_METRICS, p[1] or "", p[0]))
    rows = []
    for _, r in recon.iterrows():
        for metric, sampler in pairs:
            src = recon[recon["label"] == r["label"]]
            if sampler is not None:
                src = generation[generation["label"] == r["label"]]
                src = src[src["sampler"] == sampler]
            m = src.iloc[0] if len(src) == 1 and metric in src else pd.Series(dtype=object)
            p = _published(pub, r["model"], r["beta"], metric, sampler)
            rows.append({
                "model": r["model"], "beta": r["beta"], "label": r["label"],
                "metric": metric, "sampler": sampler,
                "measured": m.get(metric, np.nan),
                "measured_lo": m.get(f"{metric}_lo", np.nan),
                "measured_hi": m.get(f"{metric}_hi", np.nan),
                "n_measured": m.get("n_generated" if sampler else "n_images", np.nan),
                "published": p["value"].iloc[0] if len(p) == 1 else np.nan,
                "source": p["source"].iloc[0] if len(p) == 1 else "",
                "diverged": bool(r.get("diverged", False)),
            })  # fmt: skip
    df = pd.DataFrame(rows)
    df = df[df["measured"].notna() | df["published"].notna()].reset_index(drop=True)
    for c in ("measured", "measured_lo", "measured_hi", "n_measured", "published", "beta"):
        df[c] = df[c].astype("float64")
    df.attrs["headers"] = {"measured": "vaebench", "published": label, "n_measured": "N"}
    df.attrs["footnotes"] = _notes(df, pub, recon, label)
    return df


def _notes(df: pd.DataFrame, pub: pd.DataFrame, recon: pd.DataFrame, label: str) -> list[str]:
    notes = [
        f"'{label}': the published values as given in the compared file, in the source's own "
        "units; vaebench does not rescale them. 'vaebench': this study's value, with its 95% "
        "interval where it has one, and N (test images for reconstruction metrics, generated "
        "images for FID and the other set metrics; FID falls as N grows, so values at "
        "different N do not compare)."
    ]
    if df["published"].isna().any():
        notes.append(f"'{label}' is blank where the file gives no value for that row.")
    blank = df["measured"].isna()
    if blank.any():
        pairs = zip(df.loc[blank, "metric"], df.loc[blank, "sampler"], strict=True)
        what = sorted({metric_name(m) + (f" ({s})" if s else "") for m, s in pairs})
        notes.append(
            "'vaebench' is blank where this study has no such number ("
            + ", ".join(what)
            + "): the sampler was not run for that row, the run diverged, or the metric does "
            "not apply to the family (the reconstruction and generation tables say why)."
        )
    unused = sorted(set(pub["model"]) - set(recon["model"]))
    if unused:
        names = ", ".join(families.FAMILY.get(m, m) for m in unused)
        notes.append(f"The file also gives values for families this study did not run: {names}.")
    return notes
