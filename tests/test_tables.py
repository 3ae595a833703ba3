"""Summary tables and metric agreement on synthetic per-image metrics (no torch, fast)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kendalltau

from vaebench import VaebenchError
from vaebench.agreement import (
    image_rank_agreement,
    metric_agreement,
    paired_comparisons,
    run_rank_agreement,
    tau_b,
    tau_matrix,
)
from vaebench.io import read_parquet_metadata
from vaebench.tables import (
    METRICS,
    WEIGHTS_WARNING,
    boot_means,
    fmt,
    generation_table,
    load_metrics,
    reconstruction_table,
    settings_footnotes,
    write_table,
)

FAMILY = {"vae": "VAE", "beta_vae": "β-VAE", "vqvae": "VQ-VAE", "vaegan": "VAE-GAN"}
# (model, beta, seed, quality factor: higher = worse reconstructions)
RUNS = [
    ("vae", 1.0, 0, 1.0),
    ("beta_vae", 0.5, 0, 0.8),
    ("beta_vae", 4.0, 0, 1.5),
    ("beta_vae", 4.0, 1, 1.45),
    ("beta_vae", 8.0, 0, 2.0),
    ("vqvae", np.nan, 0, 0.9),
    ("vaegan", 1.0, 0, 1.1),
]
LABELS = ["VAE", "β-VAE β=0.5", "β-VAE β=4", "β-VAE β=8", "VQ-VAE", "VAE-GAN"]


def run_id(model: str, beta: float, seed: int) -> str:
    return f"beta_vae/beta~{beta:g}/seed~{seed}" if model == "beta_vae" else f"{model}/seed~{seed}"


def make_per_image(n: int = 64, seed: int = 0, runs=RUNS) -> pd.DataFrame:
    """Per-image metrics with a shared image difficulty, so metrics correlate as real ones do.

    PSNR is exactly -10 log10(MSE); VQ-VAE has no KL (so no -ELBO/objective either).
    """
    rng = np.random.default_rng(seed)
    hard = rng.gamma(4, 0.25, n)
    frames = []
    for model, beta, s, q in runs:
        mse = 0.01 * q * hard * rng.lognormal(0, 0.2, n)
        bce = 2000 + 3000 * mse * rng.lognormal(0, 0.05, n)
        kl = np.full(n, np.nan) if model == "vqvae" else 40 / q * rng.lognormal(0, 0.1, n)
        b = 1.0 if np.isnan(beta) else beta
        frames.append(
            pd.DataFrame(
                {
                    "run": run_id(model, beta, s),
                    "model": model,
                    "family": FAMILY[model],
                    "beta": beta,
                    "seed": s,
                    "image": np.arange(n),
                    "bce": bce,
                    "mse": mse,
                    "kl": kl,
                    "neg_elbo": bce + kl,
                    "objective": bce + b * kl,
                    "psnr": -10 * np.log10(mse),
                    "ssim": 1 - 5 * mse * rng.lognormal(0, 0.1, n),
                    "ms_ssim": 1 - 4 * mse * rng.lognormal(0, 0.1, n),
                    "gmsd": 2 * np.sqrt(mse) * rng.lognormal(0, 0.1, n),
                    "lpips": 3 * np.sqrt(mse) * rng.lognormal(0, 0.2, n),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def make_set_level(n_generated: int = 500) -> pd.DataFrame:
    rows = []
    for model, beta, s, q in RUNS:
        for sampler in ("pixelcnn",) if model == "vqvae" else ("normal", "gmm"):
            rows.append(
                {
                    "run": run_id(model, beta, s),
                    "model": model,
                    "family": FAMILY[model],
                    "beta": beta,
                    "seed": s,
                    "sampler": sampler,
                    "fid": 50 * q + s,
                    "kid_mean": 0.01 * q,
                    "kid_std": 0.001,
                    "precision": 0.7 / q,
                    "recall": 0.5 / q,
                    "n_generated": n_generated,
                    "n_reference": n_generated,
                    "kid_subset_size": 100,
                }
            )
    return pd.DataFrame(rows)


def make_roundtrip(n: int = 32) -> pd.DataFrame:
    frames = []
    for sampler in ("normal", "gmm", "pixelcnn"):
        df = make_per_image(n, seed=len(sampler))
        df = df[(df["model"] == "vqvae") == (sampler == "pixelcnn")]
        frames.append(df.assign(sampler=sampler))
    return pd.concat(frames, ignore_index=True)


def md_cells(md: str, first: str) -> dict[str, str]:
    """Header -> cell of the Markdown row whose first cell is `first`."""
    lines = [line for line in md.splitlines() if line.startswith("|")]
    heads = [c.strip() for c in lines[0].strip("|").split("|")]
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == first:
            return dict(zip(heads, cells, strict=True))
    raise AssertionError(f"no row {first!r}")


@pytest.fixture(scope="module")
def per_image() -> pd.DataFrame:
    return make_per_image()


@pytest.fixture(scope="module")
def table(per_image) -> pd.DataFrame:
    return reconstruction_table(per_image, n_boot=300)


# -- reconstruction table -------------------------------------------------------------------


def test_rows_follow_the_slides_order(table):
    assert table["label"].tolist() == LABELS
    assert table["n_seeds"].tolist() == [1, 1, 2, 1, 1, 1]
    assert (table["n_images"] == 64).all()
    assert not table["diverged"].any()


def test_intervals_contain_the_mean(table):
    for m in METRICS:
        ok = table[m].notna()
        assert (table.loc[ok, f"{m}_lo"] <= table.loc[ok, m]).all(), m
        assert (table.loc[ok, m] <= table.loc[ok, f"{m}_hi"]).all(), m


def test_intervals_narrow_with_more_images():
    runs = [RUNS[0]]
    small = reconstruction_table(make_per_image(32, runs=runs), n_boot=300)
    large = reconstruction_table(make_per_image(2048, runs=runs), n_boot=300)
    for m in ("bce", "mse", "lpips", "ssim"):
        width = lambda t, m=m: float(t[f"{m}_hi"].iloc[0] - t[f"{m}_lo"].iloc[0])  # noqa: E731
        assert width(large) < width(small) / 3, m


def test_bootstrap_is_reproducible(per_image):
    a = reconstruction_table(per_image, n_boot=100, seed=3)
    b = reconstruction_table(per_image, n_boot=100, seed=3)
    pd.testing.assert_frame_equal(a, b)
    # Rows do not depend on which other runs are in the table.
    only = reconstruction_table(per_image[per_image["model"] == "vae"], n_boot=100, seed=3)
    pd.testing.assert_series_equal(only.iloc[0], a.iloc[0], check_names=False)


def test_seed_spread_enters_the_interval():
    """Two seeds far apart: the hierarchical interval spans both seed means."""
    runs = [("beta_vae", 4.0, 0, 1.0), ("beta_vae", 4.0, 1, 1.0)]
    df = make_per_image(256, runs=runs)
    df.loc[df["seed"] == 1, "bce"] += 20.0
    t = reconstruction_table(df, n_boot=1000)
    m0, m1 = (df[df["seed"] == s]["bce"].mean() for s in (0, 1))
    assert t["bce"].iloc[0] == pytest.approx((m0 + m1) / 2)
    assert t["bce_lo"].iloc[0] < m0 + 2 and t["bce_hi"].iloc[0] > m1 - 2


def test_not_applicable_metric_stays_blank_with_footnote(table, tmp_path):
    vq = table[table["model"] == "vqvae"].iloc[0]
    for m in ("kl", "neg_elbo", "objective"):
        assert np.isnan(vq[m]) and np.isnan(vq[f"{m}_lo"]) and np.isnan(vq[f"{m}_hi"])
    write_table(table, tmp_path / "t", title="Reconstruction", weights_official=True)
    md = (tmp_path / "t.md").read_text()
    cells = md_cells(md, "VQ-VAE")
    assert cells["KL"] == "" and cells["−ELBO (β=1) ↓"] == ""
    assert cells["BCE ↓"].count("[") == 1
    assert "KL is blank for VQ-VAE" in md
    assert "| 0 |" not in md and "| 0 [" not in md


def test_partially_missing_metric_is_an_error(per_image):
    df = per_image.copy()
    df.loc[df.index[:3], "lpips"] = np.nan
    with pytest.raises(VaebenchError, match="lpips"):
        reconstruction_table(df, n_boot=10)


def test_duplicate_rows_are_an_error(per_image):
    with pytest.raises(VaebenchError, match="duplicate"):
        reconstruction_table(pd.concat([per_image, per_image.head(5)]), n_boot=10)


def test_diverged_runs(per_image, tmp_path):
    df = per_image.copy()
    df["diverged"] = (df["model"] == "vaegan") | (df["run"] == "beta_vae/beta~4/seed~1")
    t = reconstruction_table(df, n_boot=50)
    gan = t[t["model"] == "vaegan"].iloc[0]
    assert gan["diverged"] and np.isnan(gan["bce"]) and gan["n_seeds"] == 0
    b4 = t[t["label"] == "β-VAE β=4"].iloc[0]
    assert b4["n_seeds"] == 1 and b4["n_diverged"] == 1 and not b4["diverged"]
    write_table(t, tmp_path / "t", title="Reconstruction", weights_official=True)
    md = (tmp_path / "t.md").read_text()
    assert md_cells(md, "VAE-GAN")["BCE ↓"] == "diverged"
    assert "diverged" in (tmp_path / "t.tex").read_text()
    assert "β-VAE β=4 (1)" in md


# -- writing --------------------------------------------------------------------------------


@pytest.mark.parametrize("official", [True, False])
def test_written_files_read_back(table, tmp_path, official):
    paths = write_table(
        table,
        tmp_path / "recon",
        title="Reconstruction metrics",
        footnotes=["A note."],
        weights_official=official,
        settings={
            "ms_ssim": {"kernel": 7, "scales": 4},
            "lpips": {"net": "alex", "version": "0.1"},
        },
    )
    expected = table.assign(weights_official=official)
    pd.testing.assert_frame_equal(pd.read_parquet(paths["parquet"]), expected)
    pd.testing.assert_frame_equal(pd.read_csv(paths["csv"], comment="#"), expected)
    meta = read_parquet_metadata(paths["parquet"])
    assert meta["weights_official"] is official and meta["title"] == "Reconstruction metrics"
    md, tex, csv = (paths[s].read_text() for s in ("md", "tex", "csv"))
    for text in (md, csv):
        assert (WEIGHTS_WARNING in text) is not official
    assert ("Warning:" in tex) is not official
    assert ("⚠" in md) is not official
    assert "MS-SSIM ↑ (k7, 4 sc.)" in md and "kernel 7, 4 scales" in md
    assert "A note." in md and "hierarchically" in md
    assert "\\toprule" in tex and "$\\beta$" in tex and "β" not in tex
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"recon.{s}" for s in ("csv", "md", "parquet", "tex")
    ]


def test_fmt():
    assert fmt(np.nan) == "" and fmt(None) == ""
    assert fmt(0.0) == "0" and fmt(23.2144) == "23.21" and fmt(0.015432) == "0.01543"
    assert fmt(-1.5) == "−1.5" and fmt(123456.7) == "123457" and fmt(np.float32("nan")) == ""


def test_load_metrics(per_image, tmp_path):
    from vaebench.io import save_parquet

    settings = {"ms_ssim": {"kernel": 7, "scales": 4}}
    paths = []
    for k, (_, df) in enumerate(per_image.groupby("run")):
        p = tmp_path / f"{k}.parquet"
        save_parquet(p, df, {"weights_official": True, "metrics": settings})
        paths.append(p)
    df, info = load_metrics(paths)
    assert len(df) == len(per_image) and info == {"weights_official": True, "settings": settings}
    save_parquet(paths[0], per_image.head(3), {"metrics": settings})  # no flag: not official
    assert load_metrics(paths)[1]["weights_official"] is False
    save_parquet(paths[0], per_image.head(3), {"metrics": {"ms_ssim": {"kernel": 11}}})
    with pytest.raises(VaebenchError, match="settings"):
        load_metrics(paths)
    assert any("kernel 7" in n for n in settings_footnotes(settings))


# -- generation table -----------------------------------------------------------------------


def test_generation_table(tmp_path):
    t = generation_table(make_set_level(), make_roundtrip(), n_boot=100)
    assert list(zip(t["label"], t["sampler"], strict=True))[:4] == [
        ("VAE", "normal"),
        ("VAE", "gmm"),
        ("β-VAE β=0.5", "normal"),
        ("β-VAE β=0.5", "gmm"),
    ]
    assert t["label"].tolist()[-3:] == ["VQ-VAE", "VAE-GAN", "VAE-GAN"]
    b4 = t[(t["label"] == "β-VAE β=4") & (t["sampler"] == "normal")].iloc[0]
    assert b4["n_seeds"] == 2 and b4["fid"] == pytest.approx(74.25)
    assert b4["fid_lo"] <= b4["fid"] <= b4["fid_hi"]
    vq = t[t["model"] == "vqvae"].iloc[0]
    assert np.isnan(vq["rt_kl"]) and vq["rt_bce"] > 0 and np.isnan(vq["fid_lo"])
    for m in ("rt_bce", "rt_lpips"):
        assert (t[f"{m}_lo"] <= t[m]).all() and (t[m] <= t[f"{m}_hi"]).all()
    write_table(t, tmp_path / "g", title="Generation", weights_official=False)
    md = (tmp_path / "g.md").read_text()
    row = md_cells(md, "VAE")
    assert row["N gen/ref"] == "500/500" and "±" in row["KID ↓"] and "[" in row["RT BCE ↓"]
    assert "round-trip" in md and "RT KL is blank for VQ-VAE / pixelcnn" in md
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "g.csv", comment="#"), t.assign(weights_official=False)
    )


def test_generation_table_sides_are_optional():
    only_set = generation_table(make_set_level(), None, n_boot=10)
    assert "rt_bce" not in only_set and len(only_set) == 11
    only_rt = generation_table(pd.DataFrame(), make_roundtrip(), n_boot=10)
    assert "fid" not in only_rt and len(only_rt) == 11


def test_generation_table_refuses_unequal_n_within_a_row():
    df = make_set_level()
    df.loc[df["run"] == "beta_vae/beta~4/seed~1", "n_generated"] = 100
    with pytest.raises(VaebenchError, match="n_generated"):
        generation_table(df, None, n_boot=10)


# -- agreement ------------------------------------------------------------------------------


def test_tau_b_matches_scipy():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, (20, 12)).astype(float)  # many ties
    b = a + rng.integers(0, 3, (20, 12))
    ours = tau_b(a, b)
    ref = [kendalltau(x, y).statistic for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(ours, ref)


def test_tau_of_a_metric_with_itself_and_its_negation(per_image):
    df = per_image.assign(mse_copy=per_image["mse"], neg_mse=-per_image["mse"])
    metrics = ["mse", "mse_copy", "neg_mse", "psnr", "lpips"]
    for t in (
        run_rank_agreement(df, metrics, n_boot=100),
        image_rank_agreement(df, metrics, n_boot=30),
        image_rank_agreement(df, metrics, n_boot=10, pooled=True),
    ):
        tau = t.set_index(["metric_a", "metric_b"])
        assert tau.loc[("mse", "mse_copy"), "tau"] == pytest.approx(1.0)
        assert tau.loc[("mse", "mse_copy"), ["tau_lo", "tau_hi"]].tolist() == pytest.approx([1, 1])
        assert tau.loc[("mse", "neg_mse"), "tau"] == pytest.approx(-1.0)
        # PSNR is oriented (negated), so it agrees perfectly with MSE.
        assert tau.loc[("mse", "psnr"), "tau"] == pytest.approx(1.0)
        assert (t["tau_lo"] <= t["tau"] + 1e-12).all() and (t["tau"] <= t["tau_hi"] + 1e-12).all()
    run = run_rank_agreement(df, ["mse", "kl"], n_boot=20)
    assert run["n_runs"].item() == 6  # VQ-VAE has no KL


def test_metric_agreement_and_matrix(per_image):
    t = metric_agreement(per_image, ["mse", "ssim", "lpips"], n_boot=50, n_boot_images=10)
    assert set(t["level"]) == {"run", "image"} and len(t) == 6
    mat = tau_matrix(t, "run")
    assert mat.shape == (3, 3) and (np.diag(mat) == 1).all()
    assert mat.loc["ssim", "mse"] == mat.loc["mse", "ssim"]
    with pytest.raises(VaebenchError):
        tau_matrix(t)


def test_paired_comparison_of_a_run_with_itself(per_image):
    run = "vae/seed~0"
    t = paired_comparisons(per_image, ["mse", "ssim"], n_boot=200, pairs=[(run, run)])
    assert (t["diff"] == 0).all() and (t["diff_lo"] <= 0).all() and (t["diff_hi"] >= 0).all()
    assert not t["excludes_zero"].any() and (t["better"] == "n.s.").all()


def test_paired_comparison_finds_the_better_run(per_image):
    a, b = "beta_vae/beta~0.5/seed~0", "beta_vae/beta~8/seed~0"
    t = paired_comparisons(per_image, ["mse", "ssim", "kl"], n_boot=200, pairs=[(a, b)])
    t = t.set_index("metric")
    assert t.loc["mse", "diff"] < 0 and t.loc["ssim", "diff"] > 0
    assert t.loc["mse", "better"] == a and t.loc["ssim", "better"] == a
    assert t.loc["kl", "better"] == "n/a"
    assert t.loc["mse", "diff"] == pytest.approx(t.loc["mse", "mean_a"] - t.loc["mse", "mean_b"])
    all_pairs = paired_comparisons(per_image, ["mse"], n_boot=20)
    assert len(all_pairs) == 21
    assert len(paired_comparisons(per_image, ["mse"], n_boot=20, pairs="adjacent")) == 6


def test_agreement_needs_the_same_images_for_every_run(per_image):
    df = per_image[~((per_image["model"] == "vae") & (per_image["image"] == 0))]
    with pytest.raises(VaebenchError, match="same images"):
        paired_comparisons(df, ["mse"], n_boot=10)


def test_boot_means_columns_stay_paired():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 1))
    b = boot_means(np.hstack([x, x, np.full_like(x, np.nan)]), 50, rng)
    assert np.array_equal(b[:, 0], b[:, 1]) and np.isnan(b[:, 2]).all()
