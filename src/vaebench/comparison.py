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

import csv
import math
from pathlib import Path

import numpy as np
import pandas as pd

from vaebench import VaebenchError, families
from vaebench.names import METRICS, SET_METRICS, metric_name

COLUMNS = ("model", "metric", "sampler", "value")
OPTIONAL = ("beta", "source")
KEY = ["model", "beta", "metric", "sampler"]


def read_published(path: str | Path) -> pd.DataFrame:
    """The published values, checked: one line naming the file (and its line) on bad input.

    Read with the csv module, so a line number is the file's own (blank lines count). The
    config check (vaebench.schema) calls this too, so a bad file stops the run before any job.
    """
    where = f"compare_to.file {path}"
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f, skipinitialspace=True)
            header = [h.strip() for h in next(reader, [])]
            lines = [(reader.line_num, [c.strip() for c in r]) for r in reader if any(r)]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise VaebenchError(f"{where}: not readable as CSV ({err})") from None
    missing = [c for c in COLUMNS if c not in header]
    extra = [c for c in header if c not in (*COLUMNS, *OPTIONAL)]
    if missing or extra:
        raise VaebenchError(
            f"{where}: columns must be {', '.join(COLUMNS)} (and optionally beta, source); "
            f"missing {missing}, unknown {extra}"
        )
    if not lines:
        raise VaebenchError(f"{where}: no values below the header; add a line per value")
    rows, seen = [], {}
    for n, cells in lines:
        line = f"{where}, line {n}"
        if len(cells) != len(header):
            raise VaebenchError(f"{line}: {len(cells)} fields, the header has {len(header)}")
        r = {c: "" for c in OPTIONAL} | dict(zip(header, cells, strict=True))
        _check(r, line)
        r["value"], r["beta"] = float(r["value"]), float(r["beta"]) if r["beta"] else math.nan
        r["sampler"], r["line"] = r["sampler"] or None, n
        key = (r["model"], None if math.isnan(r["beta"]) else r["beta"], r["metric"], r["sampler"])
        if key in seen:
            raise VaebenchError(
                f"{line}: the same model, beta, metric and sampler as line {seen[key]}"
            )
        seen[key] = n
        rows.append(r)
    return pd.DataFrame(rows, columns=[*KEY, "value", "source", "line"])


def _check(r: dict[str, str], line: str) -> None:
    if r["model"] not in families.BY_KEY:
        raise VaebenchError(f"{line}: unknown model {r['model']!r}; one of {families.MODEL_ORDER}")
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
        if (r[c] or c == "value") and not _finite(r[c]):
            raise VaebenchError(f"{line}: {c} {r[c]!r} is not a finite number")


def _finite(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


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
    samplers = [None if pd.isna(x) else x for x in pub["sampler"]]  # pandas may store NaN
    pairs = list(dict.fromkeys(zip(pub["metric"], samplers, strict=True)))
    pairs.sort(key=lambda p: (p[0] in SET_METRICS, p[1] or "", p[0]))
    rows, used = [], set()
    for _, r in recon.iterrows():
        for metric, sampler in pairs:
            src = recon[recon["label"] == r["label"]]
            if sampler is not None:
                src = generation[generation["label"] == r["label"]]
                src = src[src["sampler"] == sampler]
            m = src.iloc[0] if len(src) == 1 and metric in src else pd.Series(dtype=object)
            p = _published(pub, r["model"], r["beta"], metric, sampler)
            used.update(p["line"])
            rows.append({
                "model": r["model"], "beta": r["beta"], "label": r["label"],
                "metric": metric, "sampler": sampler,
                "measured": m.get(metric, np.nan),
                "measured_lo": m.get(f"{metric}_lo", np.nan),
                "measured_hi": m.get(f"{metric}_hi", np.nan),
                "n_measured": m.get("n_generated" if sampler else "n_images", np.nan),
                "published": p["value"].iloc[0] if len(p) == 1 else np.nan,
                "source": p["source"].iloc[0] if len(p) == 1 else "",
            })  # fmt: skip
    df = pd.DataFrame(rows)
    df = df[df["measured"].notna() | df["published"].notna()].reset_index(drop=True)
    for c in ("measured", "measured_lo", "measured_hi", "n_measured", "published", "beta"):
        df[c] = df[c].astype("float64")
    df.attrs["headers"] = {"measured": "vaebench", "published": label, "n_measured": "N"}
    unused = pub[~pub["line"].isin(used)]
    df.attrs["footnotes"] = _notes(df, unused, recon, generation, label)
    return df


def _notes(
    df: pd.DataFrame, unused: pd.DataFrame, recon: pd.DataFrame, generation: pd.DataFrame,
    label: str,
) -> list[str]:  # fmt: skip
    n_ref = generation["n_reference"].dropna() if "n_reference" in generation else []
    ref = f" against this study's {int(n_ref.iloc[0])} reference images" if len(n_ref) else ""
    notes = [
        f"'{label}': the published values as given in the compared file, in the source's own "
        "units; vaebench does not rescale them. 'vaebench': this study's value, with its 95% "
        "interval where it has one, and N (test images for reconstruction metrics, generated "
        f"images for FID and the other set metrics, computed{ref}; FID falls as N grows and "
        "depends on the reference set, so values at different N do not compare)."
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
    diverged = recon.loc[recon["diverged"], "label"] if "diverged" in recon else []
    if len(diverged):
        notes.append(f"Every run of {', '.join(diverged)} diverged: no numbers of this study.")
    other = sorted(set(unused["model"]) - set(recon["model"]))
    if other:
        names = ", ".join(families.FAMILY.get(m, m) for m in other)
        notes.append(f"The file also gives values for families this study did not run: {names}.")
    missed = unused[unused["model"].isin(recon["model"])]["line"].tolist()
    if missed:
        notes.append(
            f"Line(s) {', '.join(map(str, missed))} of the file match no row of this study "
            "(a β the sweep does not have; the sweep's β = 1 point is model vae) and are not shown."
        )
    return notes
