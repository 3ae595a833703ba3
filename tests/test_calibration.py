"""Are the tables' intervals and verdicts calibrated? Measured by simulation, through the real
table functions, on studies of the real design: S training seeds of every row scored on the
same n = 1,000 test images (seeds x images crossed).

Each simulated score is y[s, i] = μ + a_s + b_i + e_si: a_s the training seed's effect (sd
SEED), b_i the image's difficulty, shared by every seed and row (sd IMAGE), e_si the rest
(sd NOISE). Two regimes: image variance dominant (the usual case for reconstruction metrics
with 1,000 images) and seed variance dominant. The truth an interval must cover: with S = 3,
the family's mean over seeds and images (μ); with S = 1, that one trained model's mean over
images (μ + a_1), which is all one seed can speak for (the tables say so).

Many replicates go through one call: replicate r is the β-VAE row with β = r + 1, so
`reconstruction_table` and `paired_comparisons` see one study with hundreds of rows. The
generators are seeded: the rates below are fixed numbers, not a flaky check. Bounds: coverage
of the 95% intervals at least 93%, false "better" verdicts (raw p < 0.05 for rows with equal
true means) at most 6.5%. Measured with the code this replaced (a hierarchical bootstrap):
see the README's 'What the numbers mean'.

    .venv/bin/pytest tests/test_calibration.py -s    # prints every rate
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vaebench.agreement import run_rank_agreement
from vaebench.names import row_label
from vaebench.paired import paired_comparisons
from vaebench.summaries import reconstruction_table

N_IMAGES = 1000
REGIMES = {  # (SEED, IMAGE, NOISE) standard deviations
    "image-dominant": (0.002, 0.1, 0.03),
    "seed-dominant": (0.05, 0.1, 0.03),
}


def _frame(y: np.ndarray, betas: np.ndarray) -> pd.DataFrame:
    """Per-image rows of β-VAE runs: y (rows, S, n) -> run, model, beta, seed, image, mse."""
    g, s, n = y.shape
    runs = np.array([f"beta_vae/beta~{b:g}/seed~{k}" for b in betas for k in range(s)])
    return pd.DataFrame({
        "run": np.repeat(runs, n), "model": "beta_vae", "family": "β-VAE",
        "beta": np.repeat(betas, s * n).astype(float),
        "seed": np.tile(np.repeat(np.arange(s), n), g), "image": np.tile(np.arange(n), g * s),
        "mse": y.ravel(),
    })  # fmt: skip


def _study(rng, rows: int, s: int, sd: tuple[float, float, float]):
    """(a, y): seed effects (rows, S, 1) and scores y (rows, S, n), each row a study of its
    own: its own seeds and one image sample shared by its seeds."""
    seed_sd, image_sd, noise_sd = sd
    a = rng.normal(0, seed_sd, (rows, s, 1))
    b = rng.normal(0, image_sd, (rows, 1, N_IMAGES))
    return a, a + b + rng.normal(0, noise_sd, (rows, s, N_IMAGES))


@pytest.mark.parametrize("regime", REGIMES)
@pytest.mark.parametrize("n_seeds", [3, 1])
def test_reconstruction_intervals_cover_the_truth(regime, n_seeds):
    rng = np.random.default_rng([1, n_seeds, len(regime)])
    reps = 600
    a, y = _study(rng, reps, n_seeds, REGIMES[regime])
    table = reconstruction_table(_frame(y, np.arange(1, reps + 1)))
    truth = 0.0 if n_seeds > 1 else a[:, 0, 0]  # μ = 0; one seed: that model's own mean
    truth = pd.Series(truth, index=np.arange(1, reps + 1)).reindex(table["beta"]).to_numpy()
    covered = (table["mse_lo"] <= truth) & (truth <= table["mse_hi"])
    rate = covered.mean()
    print(f"\n{regime}, S = {n_seeds}: coverage {rate:.3f} over {reps} simulated studies")
    assert rate >= 0.93


def _pairs(rng, reps: int, s: int, sd: tuple[float, float, float]) -> pd.DataFrame:
    """2·reps rows in pairs (β = 2r + 1, 2r + 2) with equal true means; a pair shares its
    images (as the study's rows do). S = 1: the two rows are equal trained models."""
    seed_sd, image_sd, noise_sd = sd
    b = rng.normal(0, image_sd, (reps, 1, 1, N_IMAGES))
    a = rng.normal(0, seed_sd, (reps, 2, s, 1))
    if s == 1:  # one seed: the comparison is of these two models; equal means
        a[:, 1] = a[:, 0]
    y = (a + b + rng.normal(0, noise_sd, (reps, 2, s, N_IMAGES))).reshape(2 * reps, s, N_IMAGES)
    return _frame(y, np.arange(1, 2 * reps + 1))


@pytest.mark.parametrize("regime", REGIMES)
@pytest.mark.parametrize("n_seeds", [3, 1])
def test_equal_rows_are_rarely_called_different(regime, n_seeds):
    rng = np.random.default_rng([2, n_seeds, len(regime)])
    reps = 400
    df = _pairs(rng, reps, n_seeds, REGIMES[regime])
    label = lambda b: row_label("beta_vae", float(b), False)  # noqa: E731
    pairs = [(label(2 * r + 1), label(2 * r + 2)) for r in range(reps)]
    cmp = paired_comparisons(df, ["mse"], pairs=pairs)
    assert len(cmp) == reps and cmp["p"].notna().all()
    rate = (cmp["p"] < 0.05).mean()
    print(f"\n{regime}, S = {n_seeds}: false positives {rate:.3f} over {reps} equal pairs")
    assert rate <= 0.065


@pytest.mark.parametrize("regime", REGIMES)
def test_agreement_intervals_cover_the_true_tau(regime):
    """Kendall τ between two metrics' rankings of eight rows at S = 3. True row means 1.5 sd
    of a row mean apart; metric B swaps two pairs of neighbours (true τ = 0.857). The metrics
    share half of each seed's effect, as metrics scored on one model do. n = 200 images (the
    τ bootstrap's cost grows with n), the image sds rescaled so that the row means' image
    part is the study's. Closer rows than this bias τ̂ itself towards 0 (noise scrambles the
    ranks: at 1 sd apart its mean is 0.78 for a true 0.86), which no interval around τ̂ can
    undo; the agreement table's note says so."""
    seed_sd, image_sd, noise_sd = REGIMES[regime]
    n, rows, reps = 200, 8, 100
    scale = np.sqrt(n / N_IMAGES)
    step = 1.5 * np.sqrt(seed_sd**2 / 3 + image_sd**2 / N_IMAGES)
    mu_a = step * np.arange(rows)
    mu_b = mu_a[[0, 2, 1, 3, 5, 4, 6, 7]]
    true_tau = 1 - 2 * 2 / (rows * (rows - 1) / 2)  # two discordant pairs of 28
    rng = np.random.default_rng([3, len(regime)])
    covered = 0
    for _ in range(reps):
        a = rng.normal(0, seed_sd, (rows, 3, 1))
        a_b = np.sqrt(0.5) * (a + rng.normal(0, seed_sd, (rows, 3, 1)))
        b = rng.normal(0, image_sd * scale, (1, 1, n))
        e = rng.normal(0, noise_sd * scale, (2, rows, 3, n))
        df = _frame(mu_a[:, None, None] + a + b + e[0], np.arange(1, rows + 1))
        df["ssim"] = (-(mu_b[:, None, None] + a_b + b + e[1])).ravel()  # higher is better
        tau = run_rank_agreement(df, ["mse", "ssim"], n_boot=300).iloc[0]
        covered += tau["tau_lo"] <= true_tau <= tau["tau_hi"]
    print(f"\n{regime}: τ interval coverage {covered / reps:.3f} over {reps} studies")
    assert covered / reps >= 0.93


def test_feature_space_agreement_intervals_cover_the_true_tau():
    """The set level of the agreement table (space_tables.space_agreement): Kendall τ between
    FD on two feature spaces over eight model/β/sampler rows at S = 3, each row one value per
    seed. True row means 2 sd of a row mean apart, the second space swaps two pairs of
    neighbours (true τ = 0.857), and the spaces share half of each seed's effect (both score
    the same samples). Closer rows bias τ̂ itself towards 0, as at the model level: at 1.5 sd
    apart this interval covered 0.90 (400 studies), which the table's note says."""
    from vaebench.space_tables import space_agreement

    rows, seeds, reps, sd = 8, 3, 400, 1.0
    step = 2.0 * sd / np.sqrt(seeds)
    mu_a = step * np.arange(rows)
    mu_b = mu_a[[0, 2, 1, 3, 5, 4, 6, 7]]
    true_tau = 1 - 2 * 2 / (rows * (rows - 1) / 2)
    ids = pd.DataFrame([{"run": f"beta_vae/beta~{b}/seed~{s}", "model": "beta_vae",
                         "family": "β-VAE", "beta": float(b), "seed": s, "sampler": "gmm"}
                        for b in range(1, rows + 1) for s in range(seeds)])  # fmt: skip
    rng = np.random.default_rng(4)
    covered = 0
    for _ in range(reps):
        a = rng.normal(0, sd, (rows, seeds))
        a_b = np.sqrt(0.5) * (a + rng.normal(0, sd, (rows, seeds)))
        inception = ids.assign(fid=(mu_a[:, None] + a).ravel(), kid_mean=np.nan)
        dino = ids.assign(space="dinov2_vits14", fd=(mu_b[:, None] + a_b).ravel(),
                          kd_mean=np.nan, cmmd=np.nan)  # fmt: skip
        tau = space_agreement(inception, dino, n_boot=300)
        row = tau[(tau["metric_a"] == "fd@inception") & (tau["metric_b"] == "fd@dinov2_vits14")]
        assert len(row) == 1 and row["n_rows"].iloc[0] == rows and row["n_seeds"].iloc[0] == 3
        covered += row["tau_lo"].iloc[0] <= true_tau <= row["tau_hi"].iloc[0]
    print(f"\nset level: τ interval coverage {covered / reps:.3f} over {reps} studies")
    assert covered / reps >= 0.93
