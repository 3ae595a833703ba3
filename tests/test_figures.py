"""Every figure function writes a non-empty PNG and PDF; small inputs keep this fast."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vaebench import VaebenchError, figures
from vaebench.agreement import run_rank_agreement
from vaebench.tables import reconstruction_table

FAMILY = {"vae": "VAE", "beta_vae": "β-VAE", "vqvae": "VQ-VAE", "vaegan": "VAE-GAN"}
RUNS = [
    ("vae/seed~0", "vae", 1.0, 1.0),
    ("beta_vae/beta~0.5/seed~0", "beta_vae", 0.5, 0.8),
    ("beta_vae/beta~4/seed~0", "beta_vae", 4.0, 1.5),
    ("vqvae/seed~0", "vqvae", np.nan, 0.9),
    ("vaegan/seed~0", "vaegan", 1.0, 1.1),
]


def per_image(n: int = 32) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frames = []
    for run, model, beta, q in RUNS:
        mse = 0.01 * q * rng.lognormal(0, 0.3, n)
        kl = np.full(n, np.nan) if model == "vqvae" else 40 / q * rng.lognormal(0, 0.1, n)
        frames.append(
            pd.DataFrame(
                {
                    "run": run,
                    "model": model,
                    "family": FAMILY[model],
                    "beta": beta,
                    "seed": 0,
                    "image": np.arange(n),
                    "bce": 2000 + 3000 * mse,
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
    return reconstruction_table(per_image(), n_boot=50)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (10, 3, 16, 16), dtype=np.uint8)


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


def test_sample_grid(tmp_path, images):
    stem = tmp_path / "samples"
    assert_written(figures.sample_grid({"VAE": images, "VQ-VAE": images[:5]}, stem), stem)
    one = tmp_path / "samples_one"
    assert_written(figures.sample_grid(images, one, n=9), one)


def test_image_grids_check_shapes(tmp_path, images):
    with pytest.raises(VaebenchError, match="N x C x H x W"):
        figures.sample_grid(images.transpose(0, 2, 3, 1), tmp_path / "x")
    with pytest.raises(VaebenchError, match="need the first"):
        figures.reconstruction_grid(images, {"VAE": images[:2]}, tmp_path / "x", n=4)


def test_metric_vs_beta(tmp_path, table):
    stem = tmp_path / "metric_vs_beta"
    assert_written(figures.metric_vs_beta(table, stem, metrics=["mse", "kl", "ssim"]), stem)


def test_rate_distortion(tmp_path, table):
    stem = tmp_path / "rate_distortion"
    assert_written(figures.rate_distortion(table, stem, distortions=("mse", "lpips")), stem)


def test_learning_curves(tmp_path):
    epochs = np.arange(1, 6)
    histories = {}
    for run, model, _, _ in RUNS[:3] + RUNS[4:]:
        gan = np.ones(5) if model == "vaegan" else np.full(5, np.nan)
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


def test_agreement_heatmap(tmp_path):
    tau = run_rank_agreement(per_image(), ["mse", "ssim", "lpips"], n_boot=20)
    stem = tmp_path / "agreement"
    assert_written(figures.agreement_heatmap(tau, stem), stem)


def test_weights_warning_changes_the_figure(tmp_path, images):
    plain = figures.sample_grid(images, tmp_path / "plain", n=4)
    marked = figures.sample_grid(images, tmp_path / "marked", n=4, weights_official=False)
    assert plain[0].read_bytes() != marked[0].read_bytes()
    again = figures.sample_grid(images, tmp_path / "again", n=4)
    assert plain[0].read_bytes() == again[0].read_bytes()  # no timestamps: reruns are equal
    assert plain[1].read_bytes() == again[1].read_bytes()


def test_one_colour_per_family():
    assert figures.family_colour("beta_vae") == figures.family_colour("β-VAE β=8")
    assert figures.family_colour("VAE") != figures.family_colour("β-VAE")
    assert len(set(figures.PALETTE.values())) == len(figures.PALETTE)
