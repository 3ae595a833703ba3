"""The registry of model families: the one list every other module derives its lists from.

Each entry says what a family is called (config key, table label, colour), where it sits in
the tables, which Pythae classes and trainer build and train it, what its encoder returns,
which samplers apply and which per-image quantities do not apply to it (and why). The config
schema's `models` list, the run table, the workflow's wildcard constraint, the samplers per
run, the tables' row order, labels and blank cells and the figures' colours all come from
here. Plain data only (no torch, no Pythae imports): Snakemake reads it on every invocation.

Adding a family is one entry here, plus its networks in `vaebench.models` if the presets lack
them, plus its hyperparameters in the schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Samplers in table order, with what they draw from.
SAMPLERS = ("normal", "gmm", "pixelcnn")
TRAINERS = ("base", "adversarial", "coupled_optimizer", "coupled_adversarial")
ENCODERS = ("gaussian", "deterministic", "vector_quantised")


@dataclass(frozen=True)
class Family:
    """One model family.

    key: the config's name (`models: [...]`) and the first part of its run ids.
    label: the tables' and figures' name. colour: its fixed colour (Okabe-Ito).
    pythae: (model class, config class) names in `pythae.models`.
    trainer: the Pythae trainer `pythae.pipelines.training` uses for it (TRAINERS).
    encoder: what the encoder returns (ENCODERS): a Gaussian posterior's mean and log-variance,
      a point, or a grid of vectors to quantise.
    samplers: the samplers that apply, a subset of SAMPLERS.
    swept: trained once per β of the config's `betas` (the β-VAE sweep).
    not_applicable: per-image quantity -> why it is blank for this family.
    """

    key: str
    label: str
    colour: str
    pythae: tuple[str, str]
    trainer: str
    encoder: str
    samplers: tuple[str, ...]
    swept: bool = False
    not_applicable: dict[str, str] = field(default_factory=dict)


_NO_KL = "needs KL, which VQ-VAE does not have"

REGISTRY: tuple[Family, ...] = (
    Family("vae", "VAE", "#0072B2", ("VAE", "VAEConfig"), "base", "gaussian",
           ("normal", "gmm")),
    Family("beta_vae", "β-VAE", "#E69F00", ("BetaVAE", "BetaVAEConfig"), "base", "gaussian",
           ("normal", "gmm"), swept=True),
    Family(
        "vqvae", "VQ-VAE", "#009E73", ("VQVAE", "VQVAEConfig"), "base", "vector_quantised",
        ("gmm", "pixelcnn"),
        not_applicable={
            "kl": "VQ-VAE has no Gaussian posterior, so no KL",
            "neg_elbo": _NO_KL,
            "neg_elbo_se": _NO_KL,
            "objective": "VQ-VAE is trained on MSE plus codebook terms, not on BCE + β·KL",
        },
    ),
    Family(
        "vaegan", "VAE-GAN", "#D55E00", ("VAEGAN", "VAEGANConfig"), "coupled_adversarial",
        "gaussian", ("normal", "gmm"),
        not_applicable={
            "objective": "VAE-GAN is trained on a discriminator-feature loss plus an "
            "adversarial loss, not on BCE + β·KL",
        },
    ),
)  # fmt: skip

BY_KEY = {f.key: f for f in REGISTRY}
MODEL_ORDER = tuple(f.key for f in REGISTRY)
FAMILY = {f.key: f.label for f in REGISTRY}
SAMPLER_MODELS = {s: tuple(f.key for f in REGISTRY if s in f.samplers) for s in SAMPLERS}
NOT_APPLICABLE = {(f.key, q): why for f in REGISTRY for q, why in f.not_applicable.items()}
PALETTE = {f.label: f.colour for f in REGISTRY}


def run_pattern() -> str:
    """The regular expression of every run id (the workflow's `run` wildcard constraint):
    `<key>/seed~S`, and `<key>/beta~B/seed~S` for swept families."""
    plain = "|".join(f.key for f in REGISTRY if not f.swept)
    swept = "|".join(f.key for f in REGISTRY if f.swept)
    alternatives = [f"(?:{plain})"] + ([rf"(?:{swept})/beta~[0-9.e+-]+"] if swept else [])
    return rf"(?:{'|'.join(alternatives)})/seed~\d+"


def check() -> None:
    """The registry's own consistency (unique keys and labels, known kinds and samplers)."""
    assert len(BY_KEY) == len(REGISTRY), "family keys must be unique"
    assert len(PALETTE) == len(REGISTRY), "family labels must be unique"
    for f in REGISTRY:
        assert f.trainer in TRAINERS and f.encoder in ENCODERS, f
        assert f.samplers and set(f.samplers) <= set(SAMPLERS), f


check()
