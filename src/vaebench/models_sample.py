"""Generating samples from a trained run: the prior, a latent GMM, or a PixelCNN code prior.

- `normal`: Pythae's NormalSampler (z ~ N(0, I) through the decoder): families with an N(0, I)
  prior (for VAE-LinNF, VAE-IAF and HVAE the prior of the decoder's input z_K).
- `vamp`: VAMP's learned prior as trained: the uniform mixture of the pseudo-inputs'
  posteriors q(z|u_k), with their raw log-variances. Not Pythae's VAMPSampler: it squashes the
  log-variances with tanh (which the training prior does not: a component with log-variance
  -6 would be sampled with std 0.61 instead of 0.05) and cycles through only the first
  min(components, batch) pseudo-inputs.
- `gmm`: a Gaussian mixture fitted on the training latents, for every family, as Pythae's
  GaussianMixtureSampler does (sklearn GaussianMixture, full covariance, max_iter 2000, tol
  1e-3; its EM run in torch on the job's device by vaebench.gmm) on what its `fit` reads,
  `model(x).z`: one posterior sample per training image through the family's flow
  (`sampling.gmm.fit_on: sample`, the default; the draws are seeded by the run's seed on the
  CPU, so any batch size gives the same latents), a deterministic encoder's point, VQ-VAE's
  quantized code. HVAE's sample is taken before its Hamiltonian steps, which need gradients.
  `fit_on: mean` fits on the flow of the posterior mean instead (models.code, the
  deterministic decoder input). We fit it ourselves because Pythae's sampler asserts
  `train_data.max() >= 1` and cannot fit VQ-VAE's spatial code grids (sklearn wants 2-D
  input); VQ-VAE draws are snapped to the nearest codebook vectors.
- `pixelcnn`: Pythae's PixelCNNSampler fitted on the VQ-VAE's code indices (the maintainers'
  advice for sampling a VQ-VAE). The PixelCNN has BatchNorm layers, and the sampler's `fit`
  reloads the best prior with `PixelCNN.load_from_folder`, which returns it in train mode:
  sampled that way, every code's logits use the statistics of the whole sampling batch, so
  each sample depends on the others drawn with it (and on the batch size). `fit_pixelcnn`
  therefore puts the fitted prior in eval() before any sampling.
Samples are returned as uint8 images, like saved image files.
"""

from __future__ import annotations

import tempfile
from typing import Any

import numpy as np
import torch
from pythae.samplers import NormalSampler, PixelCNNSampler, PixelCNNSamplerConfig
from pythae.trainers import BaseTrainerConfig

from vaebench import VaebenchError
from vaebench.models import code, family, flow, seed_everything, to_float
from vaebench.runtime import device


def to_uint8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


@torch.inference_mode()
def latents(
    model, images: np.ndarray, batch_size: int = 256, sample_seed: int | None = None
) -> torch.Tensor:
    """Decoder inputs of `images`: deterministic ones (models.code: the flow of the posterior
    mean, a point, or VQ-VAE's quantized code grid, B x D x h x w), or with `sample_seed` what
    Pythae's forward gives as `z`: the flow of one posterior sample mu + std·eps per image,
    eps drawn for all images at once from a CPU generator (independent of batch size)."""
    dev = next(model.parameters()).device
    gaussian = family(model).encoder == "gaussian"
    eps = None
    if sample_seed is not None and gaussian:
        gen = torch.Generator().manual_seed(sample_seed)
        eps = torch.randn((len(images), model.model_config.latent_dim), generator=gen)
    out = []
    for i in range(0, len(images), batch_size):
        x = to_float(np.asarray(images[i : i + batch_size])).to(dev)
        if eps is None:
            out.append(code(model, x))
            continue
        enc = model.encoder(x)
        std = torch.exp(0.5 * enc.log_covariance)
        out.append(flow(model, enc.embedding + std * eps[i : i + batch_size].to(dev)))
    return torch.cat(out)


@torch.inference_mode()
def _decode(model, z: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    parts = [
        model.decoder(z[i : i + batch_size]).reconstruction for i in range(0, len(z), batch_size)
    ]
    return to_uint8(torch.cat(parts))


@torch.inference_mode()
def sample_vamp(model, n: int, seed: int) -> np.ndarray:
    """n draws from VAMP's prior p(z) = 1/C sum_k q(z | u_k), the mixture `VAMP._log_p_z`
    trains: a component k uniformly, then z ~ N(mu_k, exp(log_var_k)) through the decoder.
    Draws come from a CPU generator seeded by `seed`."""
    dev = next(model.parameters()).device
    c = model.number_components
    u = model.pseudo_inputs(model.idle_input.to(dev))
    out = model.encoder(u.reshape((c, *model.model_config.input_dim)))
    gen = torch.Generator().manual_seed(seed)
    k = torch.randint(c, (n,), generator=gen).to(dev)
    eps = torch.randn((n, out.embedding.shape[1]), generator=gen).to(dev)
    return _decode(model, out.embedding[k] + torch.exp(0.5 * out.log_covariance[k]) * eps)


def sample_gmm(
    model, train_x: np.ndarray, n: int, n_components: int, seed: int, fit_on: str = "sample"
) -> np.ndarray:
    from vaebench import gmm

    z = latents(model, train_x, sample_seed=seed if fit_on == "sample" else None)
    shape = z.shape[1:]
    flat = z.reshape(len(z), -1).double().cpu().numpy()
    mixture = gmm.fit(flat, n_components, seed, next(model.parameters()).device)
    draws, _ = mixture.sample(n)
    draws = draws[np.random.default_rng(seed).permutation(n)]  # sklearn groups by component
    zs = torch.from_numpy(draws).float().reshape(n, *shape).to(next(model.parameters()).device)
    if family(model).encoder == "vector_quantised":
        with torch.inference_mode():
            zs = model.quantizer(zs.permute(0, 2, 3, 1)).quantized_vector
    return _decode(model, zs)


def fit_pixelcnn(
    model, train_x: np.ndarray, val_x: np.ndarray, cfg: dict[str, Any], seed: int
) -> PixelCNNSampler:
    """Pythae's PixelCNN sampler fitted on the VQ-VAE's training codes, its prior in eval().

    `val_x` picks Pythae's best prior epoch when it has a saturated pixel (its fit asserts it).
    """
    x = to_float(train_x)
    if float(x.max()) < 1.0:
        raise VaebenchError(
            "pixelcnn: Pythae's PixelCNN sampler needs training images whose maximum is 1.0 "
            "(its fit asserts it); this dataset has no fully saturated pixel"
        )
    sampler = PixelCNNSampler(
        model, PixelCNNSamplerConfig(n_layers=cfg["n_layers"], kernel_size=cfg["kernel_size"])
    )
    with tempfile.TemporaryDirectory(prefix=".pixelcnn-") as work:
        tc = BaseTrainerConfig(
            output_dir=work,
            num_epochs=cfg["epochs"],
            learning_rate=cfg["learning_rate"],
            per_device_train_batch_size=cfg["batch_size"],
            per_device_eval_batch_size=cfg["batch_size"],
            seed=seed,
            no_cuda=device().type != "cuda",
        )
        val = to_float(val_x)
        sampler.fit(x, eval_data=val if float(val.max()) >= 1.0 else None, training_config=tc)
    sampler.pixelcnn_model.eval()  # load_from_folder returns it in train mode (BatchNorm)
    return sampler


def sample_pixelcnn(
    model, train_x: np.ndarray, val_x: np.ndarray, n: int, cfg: dict[str, Any], seed: int
) -> np.ndarray:
    sampler = fit_pixelcnn(model, train_x, val_x, cfg, seed)
    seed_everything(seed)
    with torch.inference_mode():
        return to_uint8(sampler.sample(num_samples=n, batch_size=min(n, 256)))


def sample(model, params: dict[str, Any], train_x: np.ndarray, val_x: np.ndarray) -> np.ndarray:
    """`params` is config.sampler_params(...): sampler name, n_samples, seed and settings."""
    name, n, seed = params["sampler"], params["n_samples"], params["seed"]
    seed_everything(seed)
    if name == "normal":
        with torch.inference_mode():
            return to_uint8(NormalSampler(model).sample(num_samples=n, batch_size=min(n, 256)))
    if name == "vamp":
        return sample_vamp(model, n, seed)
    if name == "gmm":
        gmm = params["gmm"]
        return sample_gmm(model, train_x, n, gmm["n_components"], seed, gmm["fit_on"])
    if name == "pixelcnn":
        return sample_pixelcnn(model, train_x, val_x, n, params["pixelcnn"], seed)
    raise VaebenchError(f"sampling.samplers: unknown sampler {name!r}")
