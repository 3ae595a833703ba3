"""Every figure function writes a non-empty PNG and PDF; small inputs keep this fast."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from vaebench import VaebenchError, figstyle, figures, figures_images, figures_training
from vaebench.agreement import metric_agreement, run_rank_agreement
from vaebench.families import FAMILY
from vaebench.tables import VAE_SWEEP_LABEL, reconstruction_table

RUNS = [
    ("vae/seed~0", "vae", 1.0, 1.0),
    ("beta_vae/beta~0.5/seed~0", "beta_vae", 0.5, 0.8),
    ("beta_vae/beta~4/seed~0", "beta_vae", 4.0, 1.5),
    ("vqvae/seed~0", "vqvae", np.nan, 0.9),
    ("vaegan/seed~0", "vaegan", 1.0, 1.1),
]


def per_image(n: int = 32, runs=RUNS) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frames = []
    for run, model, beta, q in runs:
        mse = 0.01 * q * rng.lognormal(0, 0.3, n)
        kl = np.full(n, np.nan) if model == "vqvae" else 40 / q * rng.lognormal(0, 0.1, n)
        frames.append(
            pd.DataFrame(
                {
                    "run": run,
                    "model": model,
                    "family": FAMILY[model],
                    "beta": beta,
                    "seed": int(run[-1]),
                    "image": np.arange(n),
                    "bce": 2000 + 3000 * mse,
                    "bce_excess": 3000 * mse,
                    "mse": mse,
                    "kl": kl,
                    "ssim": 1 - 5 * mse * rng.lognormal(0, 0.1, n),
                    "lpips": 3 * np.sqrt(mse) * rng.lognormal(0, 0.2, n),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return reconstruction_table(per_image())


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (10, 3, 16, 16), dtype=np.uint8)


@pytest.fixture
def captured(monkeypatch):
    """The Figure objects the functions save (the files are still written)."""
    figs = []
    for module in (figures, figures_images, figures_training):
        real = module.save_figure

        def capture(fig, stem, real=real):
            figs.append(fig)
            return real(fig, stem)

        monkeypatch.setattr(module, "save_figure", capture)
    return figs


def texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]


def assert_written(paths, stem) -> None:
    assert [p.name for p in paths] == [f"{stem.name}.png", f"{stem.name}.pdf"]
    png, pdf = (p.read_bytes() for p in paths)
    assert png.startswith(b"\x89PNG") and len(png) > 1000
    assert pdf.startswith(b"%PDF") and len(pdf) > 1000
    assert not [p for p in stem.parent.iterdir() if p.name.startswith(".")]  # no temp files


def test_reconstruction_grid(tmp_path, images):
    recons = {
        "VAE": images.astype(np.float32) / 255,
        "β-VAE β=4": np.clip(images / 255 + 0.1, 0, 1.2).astype(np.float32),
        "VQ-VAE": images,  # uint8 is accepted too
    }
    stem = tmp_path / "recon_grid"
    assert_written(figures.reconstruction_grid(images, recons, stem, n=4), stem)


def test_sample_grid_titles_name_the_sampler(tmp_path, images, captured):
    for sampler in ("normal", "gmm"):
        stem = tmp_path / f"samples_{sampler}"
        assert_written(figures.sample_grid({"VAE": images, "VQ-VAE": images[:5]}, stem), stem)
    one = tmp_path / "one"
    assert_written(figures.sample_grid(images, one, n=9, sampler="pixelcnn"), one)
    titles = [fig.axes[0].get_title() for fig in captured]
    assert "sampler: normal prior N(0, I)" in titles[0]
    assert "sampler: GMM fitted to the training codes" in titles[1]
    assert "PixelCNN prior" in titles[2] and len(set(titles)) == 3


def test_image_grids_check_shapes(tmp_path, images):
    with pytest.raises(VaebenchError, match="N x C x H x W"):
        figures.sample_grid(images.transpose(0, 2, 3, 1), tmp_path / "x")
    with pytest.raises(VaebenchError, match="need the first"):
        figures.reconstruction_grid(images, {"VAE": images[:2]}, tmp_path / "x", n=4)


def test_metric_vs_beta_puts_vae_on_the_beta_curve(tmp_path, table, captured):
    stem = tmp_path / "metric_vs_beta"
    assert_written(figures.metric_vs_beta(table, stem, metrics=["mse", "kl", "ssim"]), stem)
    ax = captured[0].axes[0]
    vae = table[table["label"] == VAE_SWEEP_LABEL].iloc[0]
    curve = [line for line in ax.get_lines() if len(line.get_xdata()) == 3][0]
    assert list(curve.get_xdata()) == [0.5, 1.0, 4.0]  # β-VAE 0.5, VAE at β = 1, β-VAE 4
    assert curve.get_ydata()[1] == pytest.approx(vae["mse"])
    legend = texts(captured[0])
    assert VAE_SWEEP_LABEL in legend and "VAE" not in legend and "VQ-VAE" in legend


def test_metric_vs_beta_without_a_sweep_draws_rows_not_a_beta_axis(tmp_path, table, captured):
    """A study with no β sweep gets each row's mean and interval on a row axis, and says so,
    not flat lines over a 'β (log scale)' axis."""
    no_sweep = table[~table["in_sweep"]]
    assert len(no_sweep) >= 2
    stem = tmp_path / "metric_vs_beta"
    assert_written(figures.metric_vs_beta(no_sweep, stem, metrics=["mse", "ssim"]), stem)
    fig = captured[0]
    words = texts(fig)
    assert any("no β sweep" in t for t in words) and not any("log scale" in t for t in words)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(no_sweep["label"])
    assert ax.get_xscale() == "linear"


def test_rate_distortion_draws_no_vqvae_and_no_overlapping_labels(tmp_path, table, captured):
    stem = tmp_path / "rate_distortion"
    crowded = table.copy()
    crowded.loc[crowded["model"] == "vaegan", ["mse", "kl"]] = crowded.loc[
        crowded["label"] == VAE_SWEEP_LABEL, ["mse", "kl"]
    ].to_numpy()  # two points on top of each other: their labels must still not overlap
    paths = figures.rate_distortion(crowded, stem, distortions=("mse", "bce_excess", "lpips"))
    assert_written(paths, stem)
    fig = captured[0]
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        labels = [t for t in ax.texts if type(t).__name__ == "Annotation"]
        assert sorted(t.get_text() for t in labels) == sorted(
            ["β=0.5", "β=4", VAE_SWEEP_LABEL, "VAE-GAN"]
        )  # VQ-VAE is not placed
        boxes = [t.get_window_extent(renderer) for t in labels]
        assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))
        assert any("not drawn (no KL): VQ-VAE" in t.get_text() for t in ax.texts)


def test_learning_curves_have_row_labels_and_integer_epochs(tmp_path, captured):
    epochs = np.arange(1, 4)
    histories = {}
    for run, model, _, _ in [*RUNS[:3], RUNS[4], ("beta_vae/beta~4/seed~1", "beta_vae", 4, 1)]:
        gan = np.ones(3) if model == "vaegan" else np.full(3, np.nan)
        histories[run] = pd.DataFrame(
            {
                "epoch": epochs,
                "train_loss": 100 / epochs,
                "eval_loss": 110 / epochs,
                "seconds": 1.0,
                "encoder_loss": gan,
                "decoder_loss": 2 * gan,
                "discriminator_loss": 3 * gan,
            }
        )
    stem = tmp_path / "learning_curves"
    assert_written(figures.learning_curves(histories, stem), stem)
    fig = captured[0]
    legends = [
        [t.get_text() for t in ax.get_legend().get_texts()] for ax in fig.axes if ax.get_legend()
    ]
    sweep = legends[0]
    assert sweep[:4] == ["β-VAE β=0.5", VAE_SWEEP_LABEL, "β-VAE β=4 seed 0", "β-VAE β=4 seed 1"]
    assert "train" in sweep and "eval" in sweep
    assert not any("~" in t for legend in legends for t in legend)  # no raw run ids
    fig.draw_without_rendering()
    for ax in fig.axes:
        if ax.get_visible():
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            assert ticks and all(float(t).is_integer() for t in ticks)


def test_agreement_heatmap(tmp_path):
    tau = run_rank_agreement(per_image(), ["mse", "ssim", "lpips"], n_boot=20)
    stem = tmp_path / "agreement"
    assert_written(figures.agreement_heatmap(tau, stem), stem)


def test_stand_in_warning_only_where_learned_metrics_would_be(tmp_path, images, table, captured):
    def png(fn, *args, official, **kw):
        return fn(*args, tmp_path / f"x{len(captured)}", weights_official=official, **kw)[0]

    # No LPIPS/FID on these: identical with and without official weights, no warning.
    for fn, args, kw in [
        (figures.sample_grid, (images,), {"n": 4}),
        (figures.reconstruction_grid, (images, {"VAE": images}), {"n": 4}),
        (figures.metric_vs_beta, (table,), {"metrics": ["mse", "ssim"]}),
        (figures.rate_distortion, (table,), {"distortions": ("mse",)}),
    ]:
        a, b = png(fn, *args, official=True, **kw), png(fn, *args, official=False, **kw)
        assert a.read_bytes() == b.read_bytes(), fn.__name__
    # With LPIPS: left out with stand-in weights, and the figure says so.
    n = len(captured)
    png(figures.metric_vs_beta, table, official=False, metrics=["mse", "lpips"])
    fig = captured[n]
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 1
    assert "Not drawn: LPIPS" in fig.get_suptitle()
    tau = metric_agreement(per_image(), ["mse", "ssim", "lpips"], n_boot=10, n_boot_images=5)
    png(figures.agreement_heatmap, tau, official=False)
    heat = captured[-1]
    assert "Not drawn: LPIPS" in heat.get_suptitle()
    assert "LPIPS" not in [t.get_text() for t in heat.axes[0].get_xticklabels()]
    again = figures.sample_grid(images, tmp_path / "again", n=4)
    plain = figures.sample_grid(images, tmp_path / "plain", n=4)
    assert plain[0].read_bytes() == again[0].read_bytes()  # no timestamps: reruns are equal
    assert plain[1].read_bytes() == again[1].read_bytes()


def test_one_colour_per_family():
    assert figures.family_colour("beta_vae") == figures.family_colour("β-VAE β=8")
    assert figures.family_colour("VAE") != figures.family_colour("β-VAE")
    assert figures.family_colour(VAE_SWEEP_LABEL) == figures.family_colour("vae")
    assert len(set(figstyle.PALETTE.values())) == len(figstyle.PALETTE)
