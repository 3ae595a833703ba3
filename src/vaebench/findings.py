"""The study's findings in sentences, generated from its tables (tables/findings.md).

The original study's slides end with empty "Discussion" pages. These sentences say only what
the tables support: every claim names its number, interval and Holm-corrected p from the
paired-comparisons table, a comparison that does not pass Holm is said to be unresolved (not
"no effect"), and metrics computed with stand-in weights are left out (their numbers mean
nothing). Three questions: how the β sweep moves each metric, which row is best on each
metric and which of its comparisons are resolved, and which metrics rank the rows alike.
"""

from __future__ import annotations

import pandas as pd

from vaebench.metrics import registry
from vaebench.names import HIGHER_IS_BETTER, NO_DIRECTION, meaningful, metric_name
from vaebench.paired import ALPHA  # the comparisons table's own level: one source


def _num(x: float) -> str:
    return f"{x:.4g}"


def _usable(metric: str, official: bool) -> bool:
    return metric not in NO_DIRECTION and meaningful(metric, official)


def _sweep(cmp: pd.DataFrame, sweep_labels: list[str], official: bool) -> list[str]:
    """Per metric: each step of the β sweep, in β order, resolved or not."""
    steps = list(zip(sweep_labels, sweep_labels[1:], strict=False))
    out = []
    for metric, sub in cmp.groupby("metric", sort=False):
        if not _usable(metric, official):
            continue
        parts, ups, downs, open_ = [], 0, 0, 0
        for lo_beta, hi_beta in steps:
            hit = sub[(sub["row_a"] == lo_beta) & (sub["row_b"] == hi_beta)]
            flip = sub[(sub["row_a"] == hi_beta) & (sub["row_b"] == lo_beta)]
            if len(hit):
                row, sign = hit.iloc[0], -1.0  # diff = low β − high β
            elif len(flip):
                row, sign = flip.iloc[0], 1.0  # diff = high β − low β
            else:
                continue
            change = sign * row["diff"]  # high β − low β, in the metric's own units
            lo, hi = sorted((sign * row["diff_lo"], sign * row["diff_hi"]))
            text = f"{lo_beta} → {hi_beta}: {_num(change)} [{_num(lo)}, {_num(hi)}]"
            if row["p_holm"] < ALPHA:
                better = (change > 0) == (metric in HIGHER_IS_BETTER)
                ups += change > 0
                downs += change < 0
                parts.append(f"{text}, p (Holm) = {row['p_holm']:.2g}: "
                             f"{'better' if better else 'worse'} at the higher β")  # fmt: skip
            else:
                open_ += 1
                parts.append(f"{text}, p (Holm) = {row['p_holm']:.2g}: not resolved")
        if not parts:
            continue
        if open_ == len(parts):
            summary = "no step of the sweep is resolved"
        elif ups and not downs:
            summary = f"rises with β at {ups} of {len(parts)} steps, falls at none"
        elif downs and not ups:
            summary = f"falls with β at {downs} of {len(parts)} steps, rises at none"
        else:
            summary = f"rises at {ups} and falls at {downs} of {len(parts)} steps"
        if open_ and open_ < len(parts):
            summary += f"; {open_} unresolved"
        out.append(f"- **{metric_name(metric)}** {summary}. " + "; ".join(parts) + ".")
    return out


def _best(recon: pd.DataFrame, cmp: pd.DataFrame, official: bool) -> list[str]:
    """Per metric: the best row's mean and interval, and its resolved and open comparisons."""
    out = []
    live = recon[~recon["diverged"]] if "diverged" in recon else recon
    for metric in dict.fromkeys(cmp["metric"]):
        if not _usable(metric, official) or metric not in live or live[metric].isna().all():
            continue
        values = live[metric].dropna()
        idx = values.idxmax() if metric in HIGHER_IS_BETTER else values.idxmin()
        row = live.loc[idx]
        label = row["label"]
        mine = cmp[(cmp["metric"] == metric) & ((cmp["row_a"] == label) | (cmp["row_b"] == label))]
        resolved, open_ = [], []
        for _, c in mine.iterrows():
            other = c["row_b"] if c["row_a"] == label else c["row_a"]
            p = f"p (Holm) = {c['p_holm']:.2g}"
            (resolved if c["p_holm"] < ALPHA else open_).append(f"{other} ({p})")
        text = (f"- **{metric_name(metric)}**: best {label}, {_num(row[metric])} "
                f"[{_num(row[metric + '_lo'])}, {_num(row[metric + '_hi'])}]")  # fmt: skip
        if resolved:
            text += "; better than " + ", ".join(resolved)
        if open_:
            text += "; not resolved against " + ", ".join(open_)
        if not mine.empty and not resolved:
            text += " (so 'best' is not established)"
        out.append(text + ".")
    return out


def _agreement(tau: pd.DataFrame, official: bool, level: str = "model") -> list[str]:
    """τ at one level: which metric pairs rank the rows alike, which do not, which are open."""
    model = tau[(tau["level"] == level) & tau["tau"].notna()]
    alike, apart, open_ = [], [], []
    for _, r in model.iterrows():
        if not (_usable(r["metric_a"], official) and _usable(r["metric_b"], official)):
            continue
        text = (f"{metric_name(r['metric_a'])} / {metric_name(r['metric_b'])} τ = "
                f"{r['tau']:.2f} [{r['tau_lo']:.2f}, {r['tau_hi']:.2f}]")  # fmt: skip
        if r["tau_lo"] > 0:
            alike.append(text)
        elif r["tau_hi"] < 0:
            apart.append(text)
        else:
            open_.append(text)
    lines = []
    if alike:
        lines.append("- Rank the rows alike (τ's interval above 0): " + "; ".join(alike) + ".")
    if apart:
        lines.append("- Rank the rows in opposite orders (τ's interval below 0): "
                     + "; ".join(apart) + ".")  # fmt: skip
    if open_:
        lines.append("- Not resolved (τ's interval includes 0): " + "; ".join(open_) + ".")
    return lines


def findings(
    recon: pd.DataFrame, cmp: pd.DataFrame, tau: pd.DataFrame, weights_official: bool
) -> str:
    """The findings as Markdown, from the reconstruction, paired-comparisons and metric-
    agreement tables (their frames as vaebench.tables writes them)."""
    sweep = recon[recon["in_sweep"]].sort_values("beta")["label"].tolist()
    n_seeds = sorted(set(int(s) for s in recon["n_seeds"] if s > 0))
    lines = [
        "# Findings",
        "",
        "Generated from this study's tables. A comparison is *resolved* when its "
        f"Holm-corrected p is below {ALPHA:g}; an unresolved one is not evidence of equality. "
        f"Training seeds per row: {', '.join(map(str, n_seeds)) or 'none'}"
        + (" (one seed: every statement is about these trained models, not the method)."
           if n_seeds == [1] else ".")  # fmt: skip
    ]
    if not weights_official:
        lines.append(f"{registry.LEARNED_TEXT} are left out: this run used stand-in "
                     "weights, so their numbers mean nothing.")  # fmt: skip
    parts = [
        ("How the β sweep moves each metric (change from the lower to the higher β)",
         _sweep(cmp, sweep, weights_official) if len(sweep) > 1 else []),
        ("The best row on each metric", _best(recon, cmp, weights_official)),
        ("Do the metrics agree on the ranking of the rows? (Kendall τ, model level)",
         _agreement(tau, weights_official)),
    ]  # fmt: skip
    if (tau["level"] == "set").any():  # the feature spaces' set metrics (space_tables)
        parts.append(("Do the feature spaces agree on the ranking of the samples? (Kendall τ "
                      "of FD, KD and CMMD, set level)", _agreement(tau, weights_official, "set")))
    for title, body in parts:
        lines += ["", f"## {title}", ""]
        lines += body or ["Nothing to report: the tables hold no such comparison."]
    return "\n".join(lines) + "\n"


def to_html(markdown: str) -> str:
    """A self-contained page of `findings`' Markdown (headings, bullets, bold: all it uses)."""
    import html
    import re

    body, in_list = [], False
    for line in markdown.splitlines():
        text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(line.lstrip("#- ")))
        if line.startswith("- ") != in_list:
            body.append("<ul>" if not in_list else "</ul>")
            in_list = not in_list
        if line.startswith("# "):
            body.append(f"<h1>{text}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{text}</h2>")
        elif line.startswith("- "):
            body.append(f"<li>{text}</li>")
        elif line.strip():
            body.append(f"<p>{text}</p>")
    body += ["</ul>"] if in_list else []
    style = ("body{font-family:system-ui,sans-serif;max-width:60em;margin:1em auto;"
             "line-height:1.45;color:#1e293b}li{margin:.3em 0}")  # fmt: skip
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Findings"
            f"</title><style>{style}</style></head><body>\n" + "\n".join(body)
            + "\n</body></html>\n")  # fmt: skip
