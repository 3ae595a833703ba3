"""Summary tables, metric agreement and paired comparisons on synthetic metrics (no torch)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import scipy.stats
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
from vaebench.families import FAMILY
from vaebench.io import read_parquet_metadata, save_parquet
from vaebench.stats import ONE_SEED_NOTE, holm, holm_note, seed_interval
from vaebench.tables import (
    METRICS,
    STAND_IN,
    VAE_SWEEP_LABEL,
    WEIGHTS_WARNING,
    boot_means,
    fmt,
    generation_table,
    load_metrics,
    reconstruction_table,
    settings_footnotes,
    write_table,
)

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
# VAE is β-VAE at β = 1: one row, in its place in the sweep.
LABELS = ["β-VAE β=0.5", VAE_SWEEP_LABEL, "β-VAE β=4", "β-VAE β=8", "VQ-VAE", "VAE-GAN"]
TWO_SEEDS = [
    (m, b, s, q * (1 + 0.05 * s))
    for m, b, q in [("vae", 1.0, 1.0), ("beta_vae", 4.0, 1.5), ("vqvae", np.nan, 0.9)]
    for s in (0, 1)
]
SETTINGS = {
    "ms_ssim": {"kernel": 7, "scales": 4},
    "lpips": {"net": "alex", "version": "0.1"},
    "elbo": {"samples": 16, "seed": 0},
}


def run_id(model: str, beta: float, seed: int) -> str:
    return f"beta_vae/beta~{beta:g}/seed~{seed}" if model == "beta_vae" else f"{model}/seed~{seed}"


def make_per_image(n: int = 64, seed: int = 0, runs=RUNS) -> pd.DataFrame:
    """Per-image metrics with a shared image difficulty, so metrics correlate as real ones do.

    BCE = the target's own entropy (image content, unrelated to quality) + BCE excess, as for
    continuous pixels. PSNR is exactly -10 log10(MSE); VQ-VAE has no KL (so no -ELBO/objective).
    """
    rng = np.random.default_rng(seed)
    hard = rng.gamma(4, 0.25, n)
    entropy = 2000 + 500 * rng.uniform(size=n)
    frames = []
    for model, beta, s, q in runs:
        mse = 0.01 * q * hard * rng.lognormal(0, 0.2, n)
        excess = 3000 * mse * rng.lognormal(0, 0.05, n)
        bce = entropy + excess
        vq = model == "vqvae"
        kl = np.full(n, np.nan) if vq else 40 / q * rng.lognormal(0, 0.1, n)
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
                    "bce_excess": excess,
                    "mse": mse,
                    "kl": kl,
                    "neg_elbo": bce + kl + 1.0,
                    "neg_elbo_se": np.full(n, np.nan) if vq else 0.5 * rng.lognormal(0, 0.1, n),
                    "objective": bce + b * kl + 1.0,
                    "psnr": -10 * np.log10(mse),
                    "ssim": 1 - 5 * mse * rng.lognormal(0, 0.1, n),
                    "ms_ssim": 1 - 4 * mse * rng.lognormal(0, 0.1, n),
                    "gmsd": 2 * np.sqrt(mse) * rng.lognormal(0, 0.1, n),
                    "lpips": 3 * np.sqrt(mse) * rng.lognormal(0, 0.2, n),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def make_set_level(n_generated: int = 500, runs=RUNS, fid_inf: bool = True) -> pd.DataFrame:
    rows = []
    for model, beta, s, q in runs:
        for sampler in ("pixelcnn",) if model == "vqvae" else ("normal", "gmm"):
            row = {
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
            if fid_inf:
                row.update(fid_inf=40 * q + s, fid_inf_residual=0.1)
            rows.append(row)
    return pd.DataFrame(rows)


def make_roundtrip(n: int = 32, runs=RUNS) -> pd.DataFrame:
    frames = []
    for sampler in ("normal", "gmm", "pixelcnn"):
        df = make_per_image(n, seed=len(sampler), runs=runs)
        df = df[(df["model"] == "vqvae") == (sampler == "pixelcnn")]
        frames.append(df.assign(sampler=sampler))
    return pd.concat(frames, ignore_index=True)


def md_cells(md: str, first: str, nth: int = 0) -> dict[str, str]:
    """Header -> cell of the nth Markdown row whose first cell is `first`."""
    lines = [line for line in md.splitlines() if line.startswith("|")]
    heads = [c.strip() for c in lines[0].strip("|").split("|")]
    found = [
        dict(zip(heads, [c.strip() for c in line.strip("|").split("|")], strict=True))
        for line in lines[2:]
    ]
    found = [r for r in found if r[heads[0]] == first]
    if len(found) <= nth:
        raise AssertionError(f"no row {first!r}")
    return found[nth]


def with_metadata(df: pd.DataFrame, tmp_path, **meta) -> pd.DataFrame:
    """`df` as load_metrics returns it: written per run with `meta`, read back."""
    paths = []
    for k, (_, part) in enumerate(df.groupby("run", sort=False)):
        paths.append(tmp_path / f"m{k}.parquet")
        save_parquet(paths[-1], part, {"weights_official": True, "metrics": SETTINGS, **meta})
    return load_metrics(paths)[0]


@pytest.fixture(scope="module")
def per_image() -> pd.DataFrame:
    return make_per_image()


@pytest.fixture(scope="module")
def table(per_image) -> pd.DataFrame:
    return reconstruction_table(per_image)


# -- reconstruction table -------------------------------------------------------------------


def test_rows_follow_the_original_order_with_vae_as_beta_one(table):
    assert table["label"].tolist() == LABELS
    assert table["n_seeds"].tolist() == [1, 1, 2, 1, 1, 1]
    assert table["in_sweep"].tolist() == [True] * 4 + [False] * 2
    assert (table["n_images"] == 64).all() and not table["diverged"].any()


def test_vae_outside_a_sweep_keeps_its_name(per_image):
    t = reconstruction_table(per_image, vae_in_sweep=False)
    assert t["label"].tolist()[:2] == ["VAE", "β-VAE β=0.5"]
    alone = reconstruction_table(per_image[per_image["model"] != "beta_vae"])
    assert alone["label"].tolist() == ["VAE", "VQ-VAE", "VAE-GAN"]


def test_vae_trained_twice_is_one_row(per_image):
    """Older results with both vae and beta_vae β=1: the same model, shown and counted once."""
    twin = make_per_image(runs=[("beta_vae", 1.0, 0, 1.0)])
    df = pd.concat([per_image, twin], ignore_index=True)
    t = reconstruction_table(df)
    assert t["label"].tolist() == LABELS
    assert any("BetaVAE(β = 1)" in n for n in t.attrs["footnotes"])
    tau = run_rank_agreement(df, ["mse", "ssim"], n_boot=20)
    assert tau["n_rows"].item() == 6
    cmp = paired_comparisons(df, ["mse"], pairs="all")
    assert len(cmp) == 15 and VAE_SWEEP_LABEL in set(cmp["row_a"]) | set(cmp["row_b"])


def test_intervals_contain_the_mean(table):
    present = [m for m in METRICS if m in table]  # files without a metric give no column
    assert {"bce_excess", "mse", "lpips", "ssim"} <= set(present)
    for m in present:
        ok = table[m].notna()
        assert (table.loc[ok, f"{m}_lo"] <= table.loc[ok, m]).all(), m
        assert (table.loc[ok, m] <= table.loc[ok, f"{m}_hi"]).all(), m


def test_intervals_narrow_with_more_images():
    runs = [RUNS[0]]
    small = reconstruction_table(make_per_image(32, runs=runs))
    large = reconstruction_table(make_per_image(2048, runs=runs))
    for m in ("bce_excess", "mse", "lpips", "ssim"):
        width = lambda t, m=m: float(t[f"{m}_hi"].iloc[0] - t[f"{m}_lo"].iloc[0])  # noqa: E731
        assert width(large) < width(small) / 3, m


def test_rows_do_not_depend_on_other_rows(per_image):
    a = reconstruction_table(per_image)
    only = reconstruction_table(per_image[per_image["model"] == "vae"])
    cols = [c for c in only.columns if c not in ("label", "in_sweep")]
    pd.testing.assert_series_equal(only.iloc[0][cols], a.iloc[1][cols], check_names=False)


def test_seed_spread_enters_the_interval():
    """Two seeds far apart: the interval spans both seed means (its seed part, a t with one
    degree of freedom, is wide: two seeds say little about training variance)."""
    runs = [("beta_vae", 4.0, 0, 1.0), ("beta_vae", 4.0, 1, 1.0)]
    df = make_per_image(256, runs=runs)
    df.loc[df["seed"] == 1, "bce"] += 20.0
    t = reconstruction_table(df)
    m0, m1 = (df[df["seed"] == s]["bce"].mean() for s in (0, 1))
    assert t["bce"].iloc[0] == pytest.approx((m0 + m1) / 2)
    assert t["bce_lo"].iloc[0] < m0 + 2 and t["bce_hi"].iloc[0] > m1 - 2


def test_not_applicable_metrics_are_blank_with_footnotes(per_image, tmp_path):
    df = per_image.copy()
    vq = df["model"] == "vqvae"
    df.loc[vq, ["kl", "neg_elbo", "objective"]] = 88.72  # the old constant 16·log K: ignored
    t = reconstruction_table(df)
    row = t[t["model"] == "vqvae"].iloc[0]
    for m in ("kl", "neg_elbo", "objective", "neg_elbo_se"):
        assert np.isnan(row[m]), m
    gan = t[t["model"] == "vaegan"].iloc[0]
    assert np.isnan(gan["objective"]) and np.isnan(gan["objective_lo"]) and gan["kl"] > 0
    assert t.loc[t["in_sweep"], "objective"].notna().all()
    write_table(t, tmp_path / "t", title="Reconstruction", weights_official=True)
    md = (tmp_path / "t.md").read_text()
    cells = md_cells(md, "VQ-VAE")
    assert cells["KL"] == "" and cells["−ELBO (MC) ↓"] == "" and cells["BCE ↓"].count("[") == 1
    assert md_cells(md, "VAE-GAN")["objective (E_q BCE+β·KL) ↓"] == ""
    assert "KL is blank for VQ-VAE: VQ-VAE has no Gaussian posterior" in md
    objective = "objective (E_q BCE+β·KL) is blank for"
    assert f"{objective} VQ-VAE, VAE-GAN: trained on another loss: BCE + β·KL is" in md
    assert "| 0 |" not in md and "| 0 [" not in md


def test_reconstruction_notes_say_what_each_number_is(per_image, tmp_path):
    t = reconstruction_table(with_metadata(per_image, tmp_path, checkpoint="last"))
    notes = " ".join(t.attrs["footnotes"])
    assert (
        "Bernoulli cross-entropy on continuous pixels; includes the target's own entropy; "
        "not a normalised likelihood" in notes
    )
    assert "BCE excess = BCE − Σ H(x)" in notes and "0 for identical images" in notes
    assert "Monte Carlo estimate over q(z|x), 16 draws" in notes
    se = t["neg_elbo_se"].dropna()
    assert len(se) == 5 and f"{se.min():.3g} to {se.max():.3g} nats" in notes
    assert "decoder of the posterior mean" in notes and ONE_SEED_NOTE not in notes
    assert "Checkpoint: every family's model is the last training epoch" in notes
    assert "Rows with one training seed (β-VAE β=0.5, VAE (β = 1), β-VAE β=8" in notes
    bare = reconstruction_table(per_image)  # no metadata: no checkpoint line
    assert not any(n.startswith("Checkpoint") for n in bare.attrs["footnotes"])
    best = with_metadata(per_image, tmp_path, checkpoint="best_val_mse")
    assert "lowest pixel MSE on the validation split" in " ".join(
        reconstruction_table(best).attrs["footnotes"]
    )


def test_partially_missing_metric_is_an_error(per_image):
    df = per_image.copy()
    df.loc[df.index[:3], "lpips"] = np.nan
    with pytest.raises(VaebenchError, match="lpips"):
        reconstruction_table(df)


def test_duplicate_rows_are_an_error(per_image):
    with pytest.raises(VaebenchError, match="duplicate"):
        reconstruction_table(pd.concat([per_image, per_image.head(5)]))


def test_diverged_runs(per_image, tmp_path):
    df = per_image.copy()
    df["diverged"] = (df["model"] == "vaegan") | (df["run"] == "beta_vae/beta~4/seed~1")
    t = reconstruction_table(df)
    gan = t[t["model"] == "vaegan"].iloc[0]
    assert gan["diverged"] and np.isnan(gan["bce"]) and gan["n_seeds"] == 0
    b4 = t[t["label"] == "β-VAE β=4"].iloc[0]
    assert b4["n_seeds"] == 1 and b4["n_diverged"] == 1 and not b4["diverged"]
    write_table(t, tmp_path / "t", title="Reconstruction", weights_official=True)
    md = (tmp_path / "t.md").read_text()
    assert md_cells(md, "VAE-GAN")["BCE ↓"] == "diverged"
    assert "diverged" in (tmp_path / "t.tex").read_text()
    assert "β-VAE β=4 (1)" in md


# -- two seeds per row ----------------------------------------------------------------------


def test_two_seeds_every_table_row_reports_them(tmp_path):
    per_image = make_per_image(48, runs=TWO_SEEDS)
    rec = reconstruction_table(per_image)
    gen = generation_table(make_set_level(runs=TWO_SEEDS), make_roundtrip(runs=TWO_SEEDS))
    tau = metric_agreement(per_image, ["mse", "ssim", "lpips"], n_boot=50, n_boot_images=10)
    cmp = paired_comparisons(per_image, ["mse", "ssim"])
    for t in (rec, gen, tau, cmp):
        assert (t["n_seeds"] == 2).all()
        assert ONE_SEED_NOTE not in t.attrs["footnotes"]
        write_table(t, tmp_path / "t", title="t", weights_official=True)
        md = (tmp_path / "t.md").read_text()
        heads = [c.strip() for c in md.splitlines()[2].strip("|").split("|")]
        rows = [line for line in md.splitlines()[4:] if line.startswith("|")]
        col = heads.index("seeds")
        assert {r.strip("|").split("|")[col].strip() for r in rows} == {"2"}
    # Set-level metrics: the mean over seeds and a Student-t interval over seeds.
    row = gen[(gen["label"] == "β-VAE β=4") & (gen["sampler"] == "normal")].iloc[0]
    fids = [50 * 1.5 * 1.0 + 0, 50 * 1.5 * 1.05 + 1]
    assert (row["fid"], row["fid_lo"], row["fid_hi"]) == pytest.approx(seed_interval(fids))
    assert row["kid_mean_lo"] < row["kid_mean"] < row["kid_mean_hi"]


def test_one_seed_says_intervals_cover_images_only(tmp_path):
    runs = [r for r in RUNS if r[2] == 0]
    per_image = make_per_image(32, runs=runs)
    tables = [
        reconstruction_table(per_image),
        generation_table(make_set_level(runs=runs), make_roundtrip(runs=runs)),
        metric_agreement(per_image, ["mse", "ssim", "lpips"], n_boot=20, n_boot_images=5),
        paired_comparisons(per_image, ["mse"]),
    ]
    for t in tables:
        write_table(t, tmp_path / "t", title="t", weights_official=True)
        assert ONE_SEED_NOTE in (tmp_path / "t.md").read_text()


# -- writing --------------------------------------------------------------------------------


@pytest.mark.parametrize("official", [True, False])
def test_written_files_read_back(table, tmp_path, official):
    paths = write_table(
        table,
        tmp_path / "recon",
        title="Reconstruction metrics",
        footnotes=["A note."],
        weights_official=official,
        settings=SETTINGS,
    )
    expected = table.assign(weights_official=official)
    pd.testing.assert_frame_equal(pd.read_parquet(paths["parquet"]), expected)  # raw values
    csv = pd.read_csv(paths["csv"])
    learned = [c for c in table.columns if c.startswith("lpips")]
    pd.testing.assert_frame_equal(csv.drop(columns=learned), expected.drop(columns=learned))
    if official:
        pd.testing.assert_frame_equal(csv[learned], expected[learned])
    else:
        assert (csv[learned] == STAND_IN).all().all()
    meta = read_parquet_metadata(paths["parquet"])
    assert meta["weights_official"] is official and meta["title"] == "Reconstruction metrics"
    md, tex, text = (paths[s].read_text() for s in ("md", "tex", "csv"))
    assert (WEIGHTS_WARNING in md) is not official and ("⚠" in md) is not official
    assert ("Warning:" in tex) is not official
    assert (STAND_IN in md) is not official and (STAND_IN in text) is not official
    lpips = md_cells(md, "VQ-VAE")["LPIPS ↓ (alex)"]
    assert lpips == STAND_IN if not official else lpips.count("[") == 1
    assert "MS-SSIM ↑ (k7, 4 sc.)" in md and "kernel 7, 4 scales" in md
    assert "A note." in md and "Seeds and images are crossed" in md
    assert "\\toprule" in tex and "$\\beta$" in tex and tex.isascii()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"recon.{s}" for s in ("csv", "html", "md", "parquet", "tex")
    ]


def test_csv_is_plain(table, per_image, tmp_path):
    """Every table's CSV is a header row and data rows: pandas reads it with no options."""
    frames = {
        "recon": table,
        "gen": generation_table(make_set_level(), make_roundtrip()),
        "tau": metric_agreement(per_image, ["mse", "lpips"], n_boot=20, n_boot_images=5),
        "cmp": paired_comparisons(per_image, ["mse", "lpips"]),
    }
    for name, t in frames.items():
        for official in (True, False):
            paths = write_table(t, tmp_path / name, title="T # 1", weights_official=official)
            text = paths["csv"].read_text()
            assert text.splitlines()[0].split(",")[0] == t.columns[0]
            assert not [line for line in text.splitlines() if line.startswith("#")]
            back = pd.read_csv(paths["csv"])
            assert list(back.columns) == [*t.columns, "weights_official"] and len(back) == len(t)


def test_latex_tables_fit_a_page(table, tmp_path):
    gen = generation_table(make_set_level(), make_roundtrip())
    for t in (table, gen):
        tex = write_table(t, tmp_path / "t", title="T", weights_official=False)["tex"].read_text()
        specs = [line for line in tex.splitlines() if line.startswith(r"\begin{tabular}")]
        assert len(specs) >= 2  # split into column blocks
        for spec in specs:
            assert len(spec.split("{")[2].rstrip("}")) <= 7
        assert tex.count(r"\shortstack") > 0 and tex.isascii()
        assert tex.count(r"\begin{adjustbox}") == len(specs)


def test_fmt():
    assert fmt(np.nan) == "" and fmt(None) == ""
    assert fmt(0.0) == "0" and fmt(23.2144) == "23.21" and fmt(0.015432) == "0.01543"
    assert fmt(-1.5) == "−1.5" and fmt(123456.7) == "123457" and fmt(np.float32("nan")) == ""


def test_load_metrics(per_image, tmp_path):
    paths = []
    for k, (_, df) in enumerate(per_image.groupby("run")):
        p = tmp_path / f"{k}.parquet"
        # The ELBO draws are seeded per run: a different seed is not a different setting.
        s = {**SETTINGS, "elbo": {"samples": 16, "seed": k}}
        save_parquet(p, df, {"weights_official": True, "metrics": s, "checkpoint": "last"})
        paths.append(p)
    df, info = load_metrics(paths)
    assert len(df) == len(per_image) and info["weights_official"] is True
    assert info["checkpoint"] == "last" and df.attrs["metadata"] == info
    assert info["settings"]["ms_ssim"] == SETTINGS["ms_ssim"]
    save_parquet(paths[0], per_image.head(3), {"metrics": SETTINGS})  # no flag: not official
    assert load_metrics(paths)[1]["weights_official"] is False
    save_parquet(paths[0], per_image.head(3), {"metrics": {"ms_ssim": {"kernel": 11}}})
    with pytest.raises(VaebenchError, match="settings"):
        load_metrics(paths)
    assert any("kernel 7" in n for n in settings_footnotes(SETTINGS))
    assert settings_footnotes(SETTINGS, ["mse"]) == []  # only notes for metrics in the table


# -- generation table -----------------------------------------------------------------------


def test_generation_table(tmp_path):
    t = generation_table(make_set_level(), make_roundtrip())
    assert list(zip(t["label"], t["sampler"], strict=True))[:4] == [
        ("β-VAE β=0.5", "normal"),
        ("β-VAE β=0.5", "gmm"),
        (VAE_SWEEP_LABEL, "normal"),
        (VAE_SWEEP_LABEL, "gmm"),
    ]
    assert t["label"].tolist()[-3:] == ["VQ-VAE", "VAE-GAN", "VAE-GAN"]
    b4 = t[(t["label"] == "β-VAE β=4") & (t["sampler"] == "normal")].iloc[0]
    assert b4["n_seeds"] == 2 and b4["fid"] == pytest.approx(74.25)
    assert (b4["fid"], b4["fid_lo"], b4["fid_hi"]) == pytest.approx(seed_interval([75, 73.5]))
    vq = t[t["model"] == "vqvae"].iloc[0]
    assert np.isnan(vq["rt_kl"]) and vq["rt_bce_excess"] > 0 and np.isnan(vq["fid_lo"])
    assert "rt_bce" not in t and np.isnan(t[t["model"] == "vaegan"]["rt_objective"]).all()
    for m in ("rt_bce_excess", "rt_lpips"):
        assert (t[f"{m}_lo"] <= t[m]).all() and (t[m] <= t[f"{m}_hi"]).all()
    write_table(t, tmp_path / "g", title="Generation", weights_official=True)
    md = (tmp_path / "g.md").read_text()
    heads = [c.strip() for c in md.splitlines()[2].strip("|").split("|")]
    order = [heads.index(h) for h in ("KID ↓", "FID@500 ↓", "FID∞ ↓", "FID∞ fit RMS")]
    assert order == sorted(order) and heads.index("precision ↑") > order[-1]
    row = md_cells(md, VAE_SWEEP_LABEL)
    assert row["N gen/ref"] == "500/500" and "±" in row["KID ↓"] and "[" in row["RT MSE ↓"]
    assert "round trip" in md and "RT KL is blank for VQ-VAE / pixelcnn" in md
    for text in ("Inception pool3", "not on the VGG16 fc2 features of Kynkäänniemi",
                 "pytorch-fid protocol (bilinear resize to 299 px)", "subsets of 100 samples",
                 "Student-t 95%", "FID∞ + k/N"):  # fmt: skip
        assert text in md, text
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "g.csv"), t.assign(weights_official=True), check_dtype=False
    )


def test_generation_settings_from_metadata_and_stand_in_views(tmp_path):
    meta = {"generation": {"features": "Inception pool3 (pytorch-fid)", "resize": "bilinear 299",
                           "pr_k": 5, "kid_subset_size": 100, "kid_n_subsets": 50}}  # fmt: skip
    set_level = with_metadata(make_set_level(fid_inf=False), tmp_path, **meta)
    t = generation_table(set_level, None)
    assert "fid_inf" not in t  # older files: no FID∞ column, no FID∞ note
    notes = " ".join(t.attrs["footnotes"])
    assert "k = 5" in notes and "mean over 50 subsets of 100 samples" in notes
    assert "FID∞" not in notes and "(bilinear 299)" in notes
    paths = write_table(t, tmp_path / "g", title="Generation", weights_official=False)
    md, csv = paths["md"].read_text(), pd.read_csv(paths["csv"])
    for c in ("fid", "fid_lo", "kid_mean", "kid_std", "precision", "recall"):
        assert (csv[c].dropna() == STAND_IN).all(), c
    assert md_cells(md, "VQ-VAE")["FID@500 ↓"] == STAND_IN and "e+" not in md
    raw = pd.read_parquet(paths["parquet"])
    assert raw["fid"].dtype == float and not raw["weights_official"].any()


def test_generation_table_sides_are_optional():
    only_set = generation_table(make_set_level(), None)
    assert "rt_bce_excess" not in only_set and len(only_set) == 11
    only_rt = generation_table(pd.DataFrame(), make_roundtrip())
    assert "fid" not in only_rt and len(only_rt) == 11


def test_generation_table_refuses_unequal_n_within_a_row():
    df = make_set_level()
    df.loc[df["run"] == "beta_vae/beta~4/seed~1", "n_generated"] = 100
    with pytest.raises(VaebenchError, match="n_generated"):
        generation_table(df, None)


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
    assert run["n_rows"].item() == 5  # six rows (VAE once), VQ-VAE has no KL
    assert run["level"].item() == "model"


def test_agreement_uses_bce_excess_not_bce(per_image):
    """BCE is the target's entropy plus the excess: it ranks images by content."""
    t = image_rank_agreement(per_image, n_boot=5).set_index(["metric_a", "metric_b"])
    assert "bce" not in set(t.index.get_level_values(0)) | set(t.index.get_level_values(1))
    assert t.loc[("bce_excess", "mse"), "tau"] > 0.5
    bce = image_rank_agreement(per_image, ["bce", "mse"], n_boot=5)
    assert abs(bce["tau"].item()) < 0.3


def test_image_agreement_averages_seeds_within_rows():
    per_image = make_per_image(40, runs=TWO_SEEDS)
    t = image_rank_agreement(per_image, ["mse", "ssim"], n_boot=20)
    per_run = {
        run: kendalltau(g["mse"], -g["ssim"]).statistic for run, g in per_image.groupby("run")
    }
    rows = [np.mean([per_run[run_id(m, b, s)] for s in (0, 1)]) for m, b, _, _ in TWO_SEEDS[::2]]
    assert t["tau"].item() == pytest.approx(np.mean(rows))
    assert t["n_rows"].item() == 3 and t["n_seeds"].item() == 2


def test_metric_agreement_and_matrix(per_image):
    t = metric_agreement(per_image, ["mse", "ssim", "lpips"], n_boot=50, n_boot_images=10)
    assert set(t["level"]) == {"model", "image"} and len(t) == 6
    mat = tau_matrix(t, "model")
    assert mat.shape == (3, 3) and (np.diag(mat) == 1).all()
    assert mat.loc["ssim", "mse"] == mat.loc["mse", "ssim"]
    with pytest.raises(VaebenchError):
        tau_matrix(t)


# -- paired comparisons ---------------------------------------------------------------------


def test_paired_comparison_of_a_row_with_itself(per_image):
    row = VAE_SWEEP_LABEL
    t = paired_comparisons(per_image, ["mse", "ssim"], pairs=[(row, "vae/seed~0")])
    assert (t["diff"] == 0).all() and (t["diff_lo"] <= 0).all() and (t["diff_hi"] >= 0).all()
    assert (t["p"] == 1).all() and (t["verdict"] == "no difference").all()


def test_default_pairs_are_sweep_neighbours_and_families_against_vae(per_image):
    t = paired_comparisons(per_image, ["mse"])
    assert list(zip(t["row_a"], t["row_b"], strict=True)) == [
        ("β-VAE β=0.5", VAE_SWEEP_LABEL),
        (VAE_SWEEP_LABEL, "β-VAE β=4"),
        ("β-VAE β=4", "β-VAE β=8"),
        ("VQ-VAE", VAE_SWEEP_LABEL),
        ("VAE-GAN", VAE_SWEEP_LABEL),
    ]
    assert len(paired_comparisons(per_image, ["mse"], pairs="all")) == 15
    assert len(paired_comparisons(per_image, ["mse"], pairs="adjacent")) == 5
    with pytest.raises(VaebenchError, match="pairs"):
        paired_comparisons(per_image, ["mse"], pairs="some")


def test_paired_comparison_finds_the_better_row_after_holm(per_image):
    a, b = "β-VAE β=0.5", "β-VAE β=8"
    t = paired_comparisons(per_image, ["mse", "ssim", "kl"], pairs=[(a, b)])
    t = t.set_index("metric")
    assert t.loc["mse", "diff"] < 0 and t.loc["ssim", "diff"] > 0
    assert t.loc["mse", "verdict"] == f"{a} better" == t.loc["ssim", "verdict"]
    assert t.loc["kl", "verdict"] == "n/a (no direction)" and np.isnan(t.loc["kl", "p_holm"])
    assert t.loc["mse", "diff"] == pytest.approx(t.loc["mse", "mean_a"] - t.loc["mse", "mean_b"])
    # one seed each: the paired t test over the shared images (scipy's), not a bootstrap floor
    sub = per_image.set_index(["beta", "image"]).sort_index()
    want = scipy.stats.ttest_rel(sub.loc[0.5, "mse"], sub.loc[8.0, "mse"]).pvalue
    assert t.loc["mse", "p"] == pytest.approx(want, rel=1e-9) and want < 1e-6


def test_comparisons_table_states_its_holm_family(per_image, tmp_path):
    t = paired_comparisons(per_image, ["mse", "ssim", "lpips", "kl"])
    # 5 default pairs × 3 directed metrics; KL has no direction and is not in the family.
    family = 15
    assert int(t["p"].notna().sum()) == family
    assert t.attrs["table_metadata"]["comparisons"]["family_size"] == family
    np.testing.assert_allclose(t["p_holm"], holm(t["p"].to_numpy()))
    decided = t[~t["verdict"].isin(["no difference", "n/a (no direction)"])]
    assert len(decided) > 0 and (decided["p_holm"] < 0.05).all()
    assert (t.loc[t["verdict"] == "no difference", "p_holm"] >= 0.05).all()
    paths = write_table(t, tmp_path / "c", title="Comparisons", weights_official=True)
    md = paths["md"].read_text()
    assert holm_note(family) in md and "15 comparisons" in md
    meta = read_parquet_metadata(paths["parquet"])
    assert meta["comparisons"]["family_size"] == family
    cells = md_cells(md, "MSE")
    assert {"p", "p (Holm)", "verdict", "seeds"} <= set(cells)


def test_comparisons_resample_seeds(tmp_path):
    """Two seeds far apart in one row: the comparison's interval includes that spread."""
    per_image = make_per_image(64, runs=TWO_SEEDS)
    far = per_image.copy()
    far.loc[far["run"] == "vae/seed~1", "mse"] *= 3
    pair = [(VAE_SWEEP_LABEL, "β-VAE β=4")]
    narrow = paired_comparisons(per_image, ["mse"], pairs=pair).iloc[0]
    wide = paired_comparisons(far, ["mse"], pairs=pair).iloc[0]
    assert narrow["n_seeds"] == wide["n_seeds"] == 2
    width = lambda r: r["diff_hi"] - r["diff_lo"]  # noqa: E731
    assert width(wide) > 3 * width(narrow)


def test_stand_in_comparisons_and_agreement_are_not_shown(per_image, tmp_path):
    cmp = paired_comparisons(per_image, ["mse", "lpips"])
    md = write_table(cmp, tmp_path / "c", title="C", weights_official=False)["md"].read_text()
    row = md_cells(md, "LPIPS")
    assert row["A − B"] == row["p (Holm)"] == row["verdict"] == STAND_IN
    assert md_cells(md, "MSE")["verdict"] != STAND_IN
    tau = metric_agreement(per_image, ["mse", "ssim", "lpips"], n_boot=20, n_boot_images=5)
    md = write_table(tau, tmp_path / "a", title="A", weights_official=False)["md"].read_text()
    lines = [line for line in md.splitlines() if "LPIPS" in line and line.startswith("|")]
    assert lines and all(STAND_IN in line for line in lines)


def test_stand_in_metrics_stay_out_of_the_holm_family(per_image):
    """With stand-in weights LPIPS's p-values mean nothing: no p, no verdict, and the other
    comparisons are corrected over their own family only."""
    official = paired_comparisons(per_image, ["mse", "lpips"])
    stand_in = paired_comparisons(per_image, ["mse", "lpips"], weights_official=False)
    lp = stand_in[stand_in["metric"] == "lpips"]
    assert lp["p"].isna().all() and (lp["verdict"] == STAND_IN).all()
    family = int(stand_in["p"].notna().sum())
    assert family == int((official["metric"] == "mse").sum()) < int(official["p"].notna().sum())
    assert stand_in.attrs["table_metadata"]["comparisons"]["family_size"] == family
    mse = stand_in[stand_in["metric"] == "mse"]
    np.testing.assert_allclose(mse["p_holm"], holm(mse["p"].to_numpy()))
    assert any("not in the Holm family" in n for n in stand_in.attrs["footnotes"])


def test_agreement_needs_the_same_images_for_every_run(per_image):
    df = per_image[~((per_image["model"] == "vae") & (per_image["image"] == 0))]
    with pytest.raises(VaebenchError, match="same images"):
        paired_comparisons(df, ["mse"])


def test_boot_means_columns_stay_paired():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 1))
    b = boot_means(np.hstack([x, x, np.full_like(x, np.nan)]), 50, rng)
    assert np.array_equal(b[:, 0], b[:, 1]) and np.isnan(b[:, 2]).all()


def test_all_pairs_family_is_every_pair():
    per_image = make_per_image(16, runs=[r for r in RUNS if r[2] == 0])
    t = paired_comparisons(per_image, ["mse"], pairs="all")
    pairs = set(zip(t["row_a"], t["row_b"], strict=True))
    assert pairs == set(itertools.combinations(LABELS, 2))


# -- findings -------------------------------------------------------------------------------


def test_findings_say_only_what_the_tables_support(per_image):
    from vaebench.findings import findings, to_html

    metrics = ["mse", "ssim", "lpips"]
    recon = reconstruction_table(per_image)
    cmp = paired_comparisons(per_image, metrics)
    tau = metric_agreement(per_image, metrics, n_boot=50, n_boot_images=5)
    text = findings(recon, cmp, tau, weights_official=False)
    sweep, best, agree = text.split("\n## ")[1:]
    # stand-in weights: LPIPS is named only to say that it is left out
    assert "LPIPS" not in sweep + best + agree and "left out" in text.split("\n## ")[0]
    # every sweep step is in the text, unresolved exactly where p (Holm) >= 0.05
    sweep_rows = cmp[cmp["metric"].isin(["mse", "ssim"])
                     & cmp["row_a"].str.contains("β") & cmp["row_b"].str.contains("β")]  # fmt: skip
    assert len(sweep_rows) and sweep.count("→") == len(sweep_rows)
    assert sweep.count("not resolved") == int((sweep_rows["p_holm"] >= 0.05).sum())
    assert sweep.count("at the higher β") == int((sweep_rows["p_holm"] < 0.05).sum())
    # the best row on MSE is the table's lowest mean, with its interval
    live = recon.dropna(subset=["mse"])
    best_row = live.loc[live["mse"].idxmin()]
    assert f"best {best_row['label']}, {best_row['mse']:.4g}" in best
    with_official = findings(recon, cmp, tau, weights_official=True)
    assert "**LPIPS**" in with_official
    page = to_html(text)
    assert page.count("<h2>") == 3 and "<strong>MSE</strong>" in page
