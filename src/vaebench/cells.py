"""What each cell of a table view says: numbers to text, stand-in masking, intervals, notes.

Shared by every human format of vaebench.render (Markdown, LaTeX, HTML): a blank cell is a
quantity that does not apply (never "0" or "nan"), and `auto_footnotes` says why it is blank.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from vaebench.names import (
    DIVERGED,
    HIDDEN,
    STAND_IN,
    diverged_mask,
    header,
    is_learned,
    is_metric,
    metric_base,
    metric_name,
    not_applicable_reason,
)

# Long tables (one row per metric or metric pair): the value columns of a row.
METRIC_KEYS = ("metric", "metric_a", "metric_b")
ROW_VALUES = (
    "tau",
    "tau_lo",
    "tau_hi",
    "mean_a",
    "mean_b",
    "diff",
    "diff_lo",
    "diff_hi",
    "p",
    "p_holm",
    "verdict",
    "measured",
    "measured_lo",
    "measured_hi",
)


def fmt(x: Any, digits: int = 4) -> str:
    """A number with `digits` significant digits, blank for NaN (never "0" or "nan")."""
    if x is None or (not isinstance(x, str) and pd.isna(x)):
        return ""
    if isinstance(x, str):
        return x
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


def fmt_count(x: Any) -> str:
    return "" if x is None or pd.isna(x) else str(int(x))


def mask_stand_in(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with every learned-metric value replaced by STAND_IN (the views of stand-in runs).

    Wide tables: the learned columns (LPIPS, FID, FID∞, KID, precision, recall, RT LPIPS and
    their intervals). Long tables: the value columns of rows about a learned metric.
    """
    out = df.copy()
    out.attrs = dict(df.attrs)
    for c in out.columns:
        if is_learned(c):
            out[c] = out[c].astype(object).where(out[c].isna(), STAND_IN)
    rows = pd.Series(False, index=out.index)
    for k in METRIC_KEYS:
        if k in out:
            rows |= out[k].astype(str).map(is_learned)
    if rows.any():
        for c in ROW_VALUES:
            if c in out:
                out[c] = out[c].astype(object)
                out.loc[rows & out[c].notna(), c] = STAND_IN  # a blank cell stays blank
    return out


def _cell(df: pd.DataFrame, r: pd.Series, c: str, diverged: bool) -> str:
    v = r[c]
    if diverged and is_metric(c):
        return DIVERGED
    if isinstance(v, str):
        return metric_name(v) if c in METRIC_KEYS else v
    if c in ("p", "p_holm"):
        return fmt(v, 3)
    if c == "kid_mean" and not pd.isna(v):
        lo, hi = r.get("kid_mean_lo"), r.get("kid_mean_hi")
        if lo is not None and not pd.isna(lo) and not isinstance(lo, str):
            return f"{fmt(v)} [{fmt(lo)}, {fmt(hi)}]"
        std = r.get("kid_std")
        return fmt(v) + (
            "" if std is None or pd.isna(std) or isinstance(std, str) else f" ± {fmt(std)}"
        )
    if c == "n_generated" and "n_reference" in df:
        return "" if pd.isna(v) else f"{int(v)}/{fmt_count(r['n_reference'])}"
    if f"{c}_lo" in df and f"{c}_hi" in df and not pd.isna(v):
        lo, hi = r[f"{c}_lo"], r[f"{c}_hi"]
        if pd.isna(lo) or pd.isna(hi) or isinstance(lo, str):
            return fmt(v)
        return f"{fmt(v)} [{fmt(lo)}, {fmt(hi)}]"
    return fmt(v)


def display(
    df: pd.DataFrame, settings: dict[str, Any] | None, weights_official: bool = True
) -> tuple[list[str], list[str], list[list[str]], list[bool]]:
    """Columns, headers, string cells and right-alignment flags for the human formats (the
    cells of learned metrics masked with stand-in weights; alignment from the raw frame)."""
    raw, df = df, (df if weights_official else mask_stand_in(df))
    cols = [
        c
        for c in df.columns
        if c not in HIDDEN and not (c.endswith(("_lo", "_hi")) and c[:-3] in df.columns)
    ]
    overrides = df.attrs.get("headers", {})
    diverged = diverged_mask(df).to_numpy()
    headers, cells, right = [], [], []
    for c in cols:
        h = overrides.get(c) or header(c) + (_header_suffix(c, settings) if is_metric(c) else "")
        headers.append(h)
        cells.append([_cell(df, r, c, diverged[i]) for i, (_, r) in enumerate(df.iterrows())])
        right.append(pd.api.types.is_numeric_dtype(raw[c]) and raw[c].dtype != bool)
    rows = [list(r) for r in zip(*cells, strict=True)] if cells else []
    return cols, headers, rows, right


def _header_suffix(col: str, settings: dict[str, Any] | None) -> str:
    s = (settings or {}).get(metric_base(col))
    if not isinstance(s, dict):
        return ""
    if metric_base(col) == "ms_ssim":
        return f" (k{s.get('kernel', s.get('kernel_size'))}, {s.get('scales')} sc.)"
    if metric_base(col) == "lpips" and s.get("net"):
        return f" ({s['net']})"
    return ""


def auto_footnotes(df: pd.DataFrame) -> list[str]:
    """Footnotes the frame itself implies: blank cells (and why) and diverged runs."""
    notes = []
    div = diverged_mask(df)
    label = df["label"] if "label" in df else pd.Series([str(i) for i in df.index], df.index)
    if "sampler" in df:
        label = label + " / " + df["sampler"].astype(str)
    models = df["model"] if "model" in df else pd.Series("", index=df.index)
    # a table may say once why a column is blank where it is (the feature spaces' CMMD)
    said = df.attrs.get("blank_notes", {})
    for c in df.columns:
        if not is_metric(c) or c.endswith(("_lo", "_hi")):
            continue
        blank = df[c].isna() & ~div
        if not blank.any():
            continue
        if c in said:
            notes.append(said[c])
            continue
        reasons: dict[str, list[str]] = {}
        for i in df.index[blank]:
            reasons.setdefault(not_applicable_reason(models[i], c), []).append(str(label[i]))
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
    return notes
