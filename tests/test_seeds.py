"""Training variance end to end: a tiny study with two seeds per row (real Snakemake run)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import TINY, copy_of, pending, smk

from vaebench.names import SET_METRICS

pytestmark = pytest.mark.e2e

# The tiny study's VAE and β-VAE β=4 with a second seed: on a copy of the tiny study, only
# the seed-1 runs train (their seed-0 runs are the tiny study's).
TWO_SEEDS = {
    **TINY,
    "models": ["vae", "beta_vae"],
    "betas": [1, 4],
    "seeds": [0, 1],
    "sampling": {**TINY["sampling"], "samplers": ["normal"]},
}


@pytest.fixture(scope="module")
def tables(tiny_study, tmp_path_factory):
    work = copy_of(tiny_study, tmp_path_factory, "two_seeds")
    plan = pending(work, TWO_SEEDS)
    assert not any("seed~0" in f for f in plan if "/runs/" in f), plan  # reused, not retrained
    smk(work, TWO_SEEDS, offline=True)
    return work / "results/tiny/tables"


def test_every_row_reports_two_seeds_and_set_metrics_have_seed_intervals(tables):
    rec = pd.read_parquet(tables / "reconstruction.parquet")
    gen = pd.read_parquet(tables / "generation.parquet")
    assert list(rec["label"]) == ["VAE (β = 1)", "β-VAE β=4"]
    assert (rec["n_seeds"] == 2).all() and (gen["n_seeds"] == 2).all()
    for m in SET_METRICS:  # every set-level metric of the registry
        lo, hi = gen[f"{m}_lo"], gen[f"{m}_hi"]
        assert np.isfinite(lo).all() and np.isfinite(hi).all(), m  # a t interval over seeds
        assert (lo <= gen[m]).all() and (gen[m] <= hi).all(), m
    md = (tables / "generation.md").read_text()
    assert "over seeds" in md
    assert "test images only" not in (tables / "reconstruction.md").read_text()


def test_comparisons_show_raw_and_holm_corrected_p_and_verdicts_follow_the_corrected_p(tables):
    cmp = pd.read_parquet(tables / "paired_comparisons.parquet")
    assert {"p", "p_holm", "verdict", "n_seeds"} <= set(cmp.columns)
    assert (cmp["n_seeds"] == 2).all()
    tested = cmp[cmp["p"].notna()]
    assert (tested["p_holm"] >= tested["p"]).all()
    decided = tested[tested["verdict"] != "no difference"]
    assert (decided["p_holm"] < 0.05).all()
    md = (tables / "paired_comparisons.md").read_text()
    assert "Holm" in md and f"{len(tested)} comparisons" in md
