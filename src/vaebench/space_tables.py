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
from vaebench.metrics.files import frame_metadata, generation_notes, seed_notes
from vaebench.names import label_column, order_rows
from vaebench.summaries import set_level_rows


def long_frame(set_level: pd.DataFrame, space_level: pd.DataFrame | None) -> pd.DataFrame:
    """One row per run, sampler and space: Inception's generation rows renamed to the shared
    names (space "inception", no CMMD), then the other spaces' rows."""
    inception = set_level.rename(columns={v: k for k, v in spaces.INCEPTION_COLUMNS.items()})
    inception = inception.assign(space=spaces.INCEPTION, cmmd=np.nan)
    parts = [inception] + ([space_level] if space_level is not None and len(space_level) else [])
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
    meta = frame_metadata(set_level, space_level)
    used = [spaces.BY_KEY[k] for k in spaces.KEYS if k in set(long["space"])]
    notes = [
        "Set-level generation metrics on each feature space: " + "; ".join(
            f"{s.label}: {s.protocol} ({s.reference})" for s in used) + ".",
        "FD, FD∞ and KD are the generation table's FID, FID∞ and KID formulas on each space's "
        "features (on Inception they are those numbers); precision, recall, density and "
        "coverage likewise, with the same k. Compare rows within a space, not across spaces: "
        "each space has its own scale.",
        *[n for n in generation_notes(out.rename(columns=spaces.INCEPTION_COLUMNS), meta)
          if n.startswith(("precision/recall", "density/coverage"))],
        registry.BY_KEY["cmmd"].note,
        *merged,
        *seed_notes(out["n_seeds"], out["label"]),
    ]  # fmt: skip
    out.attrs["footnotes"] = notes
    return out
