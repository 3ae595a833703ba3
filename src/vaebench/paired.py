"""Paired comparisons between table rows that survive seeds and multiplicity.

A comparison asks whether row A (a model/β, all its seeds) scores better than row B on one
metric over the same test images. The estimate is the mean over seeds of the mean over images
of A − B. Its interval and two-sided p (`stats.crossed_paired`) combine the two rows' seed
spreads (Welch's t: two or three seeds per row carry little information about training
variance, and the t says so) with the spread of the per-image differences (images are
shared, so their difficulty cancels). The table's family of comparisons is Holm-corrected
and the verdict uses the corrected p.

By default the family is kept meaningful: neighbours in the β sweep (VAE as its β = 1 row)
and every other family against VAE, not all pairs (`pairs="all"` is still there).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vaebench import VaebenchError
from vaebench.metrics import registry
from vaebench.metrics.files import checkpoint_note, seed_notes
from vaebench.names import (
    HIGHER_IS_BETTER,
    NO_DIRECTION,
    STAND_IN,
    blank_not_applicable,
    diverged_mask,
    label_column,
    meaningful,
    metric_name,
    order_rows,
    sweep_rows,
)
from vaebench.stats import crossed_paired, holm, holm_note

# Quality metrics compared between images: BCE excess, not BCE (BCE ranks image content).
DEFAULT_METRICS = registry.COMPARED  # every image metric but BCE (see BCE_EXCESS_NOTE)
PAIRS = ("default", "adjacent", "all")
ALPHA = 0.05  # the verdicts' level, after Holm's correction (vaebench.findings says it too)


def orientation(metric: str) -> float:
    """+1 if lower is better (or no direction), -1 if higher is better."""
    return -1.0 if metric in HIGHER_IS_BETTER else 1.0


def default_metrics(per_image: pd.DataFrame, metrics: Sequence[str] | None) -> list[str]:
    """`metrics` as given, or the DEFAULT_METRICS the frame has values of (a metric the
    study switched off, e.g. metrics.dists: false, is a column of nulls: left out)."""
    if metrics is not None and tuple(metrics) != DEFAULT_METRICS:
        return list(metrics)
    return [m for m in DEFAULT_METRICS if m in per_image.columns and per_image[m].notna().any()]


@dataclass
class Cube:
    """X[m, r, i]: oriented score of metric m, run r, image i; runs grouped into table rows."""

    metrics: list[str]
    runs: list[str]
    images: np.ndarray
    X: np.ndarray
    rows: pd.DataFrame  # label, model, beta, in_sweep, runs (indices into `runs`), n_seeds
    notes: list[str]

    def row(self, label: str) -> np.ndarray:
        return np.asarray(self.rows.loc[self.rows["label"] == label, "runs"].iloc[0])


def cube(per_image: pd.DataFrame, metrics: Sequence[str], vae_in_sweep: bool | None = None) -> Cube:
    """The per-image metrics as a Cube. Diverged runs are left out; every remaining run must
    have the same images: pairing by image is what makes the paired bootstrap valid."""
    missing = [c for c in ("run", "image", *metrics) if c not in per_image.columns]
    if missing:
        raise VaebenchError(f"per-image metrics lack column(s) {missing}")
    df = per_image[~diverged_mask(per_image)]
    if df.duplicated(["run", "image"]).any():
        raise VaebenchError("per-image metrics have duplicate (run, image) rows")
    keyed = all(c in df.columns for c in ("model", "beta", "seed"))
    notes: list[str] = []
    if keyed:
        df, notes = sweep_rows(df, vae_in_sweep)
        df = blank_not_applicable(df)
        table = order_rows(df[["run", "model", "beta", "seed", "in_sweep"]].drop_duplicates("run"))
        table["label"] = label_column(table)
    else:
        table = pd.DataFrame({"run": sorted(df["run"].unique())})
        table = table.assign(label=table["run"], model="", beta=np.nan, in_sweep=False)
    runs = table["run"].tolist()
    images = np.sort(df["image"].unique())
    sets = df.groupby("run")["image"].nunique()
    short = sets[sets != len(images)]
    if len(short):
        raise VaebenchError(
            f"runs {short.index.tolist()} have {short.tolist()} images, others {len(images)}; "
            "agreement and paired comparisons need every run evaluated on the same images"
        )
    X = (
        np.stack(
            [
                df.pivot(index="run", columns="image", values=m)
                .loc[runs, images]
                .to_numpy(np.float64)
                * orientation(m)
                for m in metrics
            ]
        )
        if metrics
        else np.empty((0, len(runs), len(images)))
    )
    table["i"] = np.arange(len(table))
    rows = (
        table.groupby("label", sort=False)
        .agg(
            model=("model", "first"),
            beta=("beta", "first"),
            in_sweep=("in_sweep", "first"),
            runs=("i", list),
        )
        .reset_index()
    )
    rows["n_seeds"] = rows["runs"].map(len)
    return Cube(list(metrics), runs, images, X, rows, notes)


def choose_pairs(
    c: Cube, pairs: str | Sequence[tuple[str, str]] = "default"
) -> tuple[list[tuple[str, str]], str]:
    """(pairs of row labels, a sentence saying how they were chosen)."""
    labels = c.rows["label"].tolist()
    if isinstance(pairs, str):
        if pairs == "all":
            return list(itertools.combinations(labels, 2)), "every pair of rows"
        if pairs == "adjacent":
            return list(itertools.pairwise(labels)), "neighbouring rows in table order"
        if pairs != "default":
            raise VaebenchError(f"pairs must be one of {PAIRS} or a list of pairs, not {pairs!r}")
        sweep = c.rows[c.rows["in_sweep"]]["label"].tolist()
        vae = c.rows[c.rows["model"] == "vae"]["label"].tolist()
        out = list(itertools.pairwise(sweep))
        if vae:
            ref = vae[0]
        elif sweep:
            betas = c.rows[c.rows["in_sweep"]]["beta"].to_numpy(float)
            ref = sweep[int(np.argmin(np.abs(np.log(betas))))]
        else:
            return list(itertools.pairwise(labels)), "neighbouring rows in table order"
        others = [lb for lb in labels if lb != ref and lb not in sweep]
        if vae and ref not in sweep and sweep:
            betas = c.rows[c.rows["in_sweep"]]["beta"].to_numpy(float)
            others.insert(0, sweep[int(np.argmin(np.abs(np.log(betas))))])
        out += [(lb, ref) for lb in others]
        return out, (f"neighbours in the β sweep and every other family against {ref}")
    run_label = {}
    for label, idx in zip(c.rows["label"], c.rows["runs"], strict=True):
        run_label.update({c.runs[i]: label for i in idx})
    chosen = []
    for a, b in pairs:
        a, b = run_label.get(a, a), run_label.get(b, b)
        unknown = sorted({a, b} - set(labels))
        if unknown:
            raise VaebenchError(f"unknown (or diverged) rows or runs in pairs: {unknown}")
        chosen.append((a, b))
    return chosen, "the pairs given"


COLUMNS = [
    "metric",
    "row_a",
    "row_b",
    "n_seeds",
    "n_seeds_a",
    "n_seeds_b",
    "n_images",
    "mean_a",
    "mean_b",
    "diff",
    "diff_lo",
    "diff_hi",
    "p",
    "p_holm",
    "verdict",
]


def paired_comparisons(
    per_image: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    pairs: str | Sequence[tuple[str, str]] = "default",
    alpha: float = ALPHA,
    vae_in_sweep: bool | None = None,
    weights_official: bool = True,
) -> pd.DataFrame:
    """Mean per-image difference A − B for each metric and pair of table rows.

    pairs: "default" (β-sweep neighbours and every other family against VAE), "adjacent"
    (neighbours in table order), "all", or a list of (a, b) row labels or run ids. Columns:
    metric, row_a, row_b, n_seeds (the fewer of the two rows'), n_seeds_a/b, n_images, mean_a,
    mean_b, diff (in the metric's own units and direction) with a 95% interval, p (two-sided,
    stats.crossed_paired), p_holm (Holm over every comparison in the table with a direction)
    and verdict ("<row> better" when p_holm < alpha, else "no difference"; KL, which has no
    better direction, gets "n/a (no direction)" and no p). With stand-in weights
    (weights_official False) the learned metrics (LPIPS) are shown but get no p and stay out
    of the Holm family: their p-values mean nothing, and counting them would make every other
    comparison's correction harsher for nothing.
    """
    metrics = default_metrics(per_image, metrics)
    c = cube(per_image, metrics, vae_in_sweep)
    chosen, how = choose_pairs(c, pairs)
    records = []
    for a, b in chosen:
        ia, ib = c.row(a), c.row(b)
        A, B = c.X[:, ia, :].transpose(1, 2, 0), c.X[:, ib, :].transpose(1, 2, 0)  # (S, N, M)
        ok = np.flatnonzero(np.isfinite(A).all(axis=(0, 1)) & np.isfinite(B).all(axis=(0, 1)))
        if not ok.size:
            continue
        _, lo, hi, p = crossed_paired(A[..., ok], B[..., ok], level=1 - alpha)
        mean_a, mean_b = A.mean(axis=1).mean(axis=0), B.mean(axis=1).mean(axis=0)
        for j, m in enumerate(ok):
            metric, sign = metrics[m], orientation(metrics[m])
            tested = metric not in NO_DIRECTION and meaningful(metric, weights_official)
            d_lo, d_hi = (lo[j], hi[j]) if sign > 0 else (-hi[j], -lo[j])
            records.append(
                {
                    "metric": metric,
                    "row_a": a,
                    "row_b": b,
                    "n_seeds": min(len(ia), len(ib)),
                    "n_seeds_a": len(ia),
                    "n_seeds_b": len(ib),
                    "n_images": len(c.images),
                    "mean_a": mean_a[m] * sign,
                    "mean_b": mean_b[m] * sign,
                    "diff": (mean_a[m] - mean_b[m]) * sign,
                    "diff_lo": d_lo,
                    "diff_hi": d_hi,
                    "p": float(p[j]) if tested else np.nan,
                    "_oriented": mean_a[m] - mean_b[m],
                }
            )
    if not records:
        return pd.DataFrame(columns=COLUMNS)
    out = pd.DataFrame(records)
    out["p_holm"] = holm(out["p"].to_numpy())
    family = int(out["p"].notna().sum())
    out["verdict"] = [
        "n/a (no direction)"
        if m in NO_DIRECTION
        else STAND_IN
        if not meaningful(m, weights_official)
        else (f"{a if d < 0 else b} better" if ph < alpha else "no difference")
        for m, a, b, d, ph in zip(
            out["metric"], out["row_a"], out["row_b"], out["_oriented"], out["p_holm"], strict=True
        )
    ]
    out = out[COLUMNS]
    level = f"{100 * (1 - alpha):g}%"
    notes = [
        f"A − B: mean over seeds of the mean over the {len(c.images)} shared test images of "
        f"the per-image difference, in the metric's own units; {level} interval (not adjusted "
        "for multiplicity) with two parts added in quadrature: the rows' seed-to-seed spread "
        "(Welch's t over the per-seed means; seeds are not paired) and the spread of the "
        "per-image differences (Student t; image difficulty cancels). Rows with one seed add "
        "no seed part: for them the comparison is of those trained models only.",
        holm_note(family, alpha),
        f"verdict: the row the metric favours when p (Holm) < {alpha:g}, else 'no difference' "
        "(not resolved at this N and number of seeds, not a proof of equality).",
        f"Pairs: {how}; {len(chosen)} pairs × {len(metrics)} metrics.",
    ]
    if any(m in NO_DIRECTION for m in metrics):
        notes.append("KL has no better direction: shown, but left out of the Holm family.")
    stand_ins = [m for m in metrics if not meaningful(m, weights_official)]
    if stand_ins:
        notes.append(f"{', '.join(map(metric_name, stand_ins))}: stand-in weights, so no p and "
                     "not in the Holm family.")  # fmt: skip
    meta = per_image.attrs.get("metadata", {})
    notes += [*c.notes, *checkpoint_note(meta)]
    notes += seed_notes(c.rows["n_seeds"], c.rows["label"])
    out.attrs["footnotes"] = notes
    out.attrs["tex_max_columns"] = 8  # estimates | tests
    out.attrs["table_metadata"] = {
        "comparisons": {
            "family_size": family,
            "correction": "holm",
            "alpha": alpha,
            "method": "stats.crossed_paired (Welch t over seeds + t over image differences)",
            "pairs": how,
        }
    }
    return out
