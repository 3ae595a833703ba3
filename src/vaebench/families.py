"""The registry of model families: the one list every other module derives its lists from.

Each entry says what a family is called (config key, table label, colour, marker), where it
sits in the tables, which Pythae classes and trainer build and train it, what its encoder
returns, which samplers apply, which per-image quantities do not apply to it (and why), and
which of the config's keys reach it. The config schema's `models` and `samplers` lists, the
run table, the workflow's wildcard constraint, the samplers per run, the train jobs' params,
the tables' row order, labels and blank cells, the figures' colours and markers, the model
card's tags and `vaebench.models.build` all come from here. Plain data only (no torch, no
Pythae imports): Snakemake reads it on every invocation.

Entries are code, like the rest of the package: editing one reruns no job (its train params
are the config's keys); after changing what an entry builds, rerun its families' training
(`snakemake --forcerun train`).

Adding a family is one entry here, plus its networks in `vaebench.nets` if the presets lack
them (they cover Gaussian, deterministic and vector-quantised encoders and an image
discriminator), plus its hyperparameters: a section named after its key in the config schema
(or `Family.schema` for a family registered outside this file). Keys of that section ending
in `_learning_rate` go to the family's trainer, every other key to its Pythae model config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

# Samplers in table order: the N(0, I) prior, VAMP's learned mixture prior, a Gaussian mixture
# fitted on the training latents, and a PixelCNN prior over VQ-VAE's code grid.
SAMPLERS = ("normal", "vamp", "gmm", "pixelcnn")
SAMPLER_TITLES = {
    "normal": "normal prior N(0, I)",
    "vamp": "VAMP's learned mixture prior",
    "gmm": "GMM fitted to the training codes",
    "pixelcnn": "PixelCNN prior over VQ-VAE codes",
}


class Trainer(NamedTuple):
    """A Pythae trainer: its class name in `pythae.trainers` (config class: name + "Config")
    and the per-part losses its train_step/eval_step return after the total."""

    cls: str
    parts: tuple[str, ...]


# Pythae's trainers, by kind (pythae.pipelines.training picks one per model).
TRAINERS = {
    "base": Trainer("BaseTrainer", ()),
    "adversarial": Trainer("AdversarialTrainer", ("autoencoder_loss", "discriminator_loss")),
    "coupled_optimizer": Trainer("CoupledOptimizerTrainer", ("encoder_loss", "decoder_loss")),
    "coupled_adversarial": Trainer(
        "CoupledOptimizerAdversarialTrainer", ("encoder_loss", "decoder_loss", "discriminator_loss")
    ),
}
ENCODERS = ("gaussian", "deterministic", "vector_quantised")
FLOWS = (None, "planar", "iaf")  # a flow applied to z before the decoder (VAE-LinNF, VAE-IAF)
MC_KL = (None, "flow", "vamp")  # Monte Carlo estimators of the ELBO's KL term (Family.mc_kl)
OBJECTIVE_ONLY = (
    "trained on another loss: BCE + β·KL is the training loss of VAE and β-VAE only"
)
# The per-image quantities a family may lack (metric names of vaebench.names).
POSTERIOR_QUANTITIES = ("kl", "neg_elbo", "neg_elbo_se")


@dataclass(frozen=True)
class Family:
    """One model family.

    key: the config's name (`models: [...]`), its hyperparameter section and the first part
      of its run ids. label: the tables' and figures' name. colour, marker: its fixed style.
    pythae: (model class, config class) names in `pythae.models`.
    trainer: the Pythae trainer `pythae.pipelines.training` uses for it (TRAINERS).
    encoder: what the encoder returns (ENCODERS): a Gaussian posterior's mean and log-variance,
      a point, or a grid of vectors to quantise. flow: the flow from the posterior sample to
      the decoder's input (FLOWS); the deterministic reconstruction decodes flow(mean).
    samplers: the samplers that apply, a subset of SAMPLERS.
    loss: what it is trained on (the README's family list and the Hub model card).
    no_kl: why KL(q(z|x) || N(0, I)) is blank for it (None: it applies), and with it the
      Monte Carlo -ELBO unless `mc_kl` says how to estimate the ELBO's KL term instead.
    mc_kl: the Monte Carlo estimator of the ELBO's KL term where the analytic one does not
      apply (MC_KL): "flow" (log q0(z0) − log|det J| − log p(z_K), VAE-LinNF and VAE-IAF) or
      "vamp" (log q(z|x) − log p_VAMP(z)), as in the families' own Pythae losses.
    objective: trained on BCE + β·KL, so `objective` is its loss.
    reconstruction_loss: its Pythae config takes training.reconstruction_loss (else MSE or
      its own loss is fixed by the model).
    swept: trained once per β of the config's `betas` (the β-VAE sweep).
    kl_weight: the fixed weight of the KL in its loss, its runs' `beta` (None: no such β).
    decoder_weight_decay: its decoder's optimizer has weight decay = its section's reg_weight
      (RAE-L2's regulariser, applied by the optimizer as in Pythae's training pipeline).
    fixed: Pythae config values the family fixes (not config keys).
    schema: the JSON schema of its hyperparameter section when the schema file lacks one.
    cost: training cost relative to a VAE step (SLURM runtime estimates).
    tags: the Hub model card's tags.
    """

    key: str
    label: str
    colour: str
    marker: str
    pythae: tuple[str, str]
    trainer: str
    encoder: str
    samplers: tuple[str, ...]
    loss: str
    no_kl: str | None = None
    mc_kl: str | None = None
    objective: bool = False
    reconstruction_loss: bool = True
    flow: str | None = None
    swept: bool = False
    kl_weight: float | None = None
    decoder_weight_decay: bool = False
    fixed: dict[str, Any] = field(default_factory=dict)
    schema: dict[str, Any] | None = None
    cost: float = 1.0
    tags: tuple[str, ...] = ()

    @property
    def not_applicable(self) -> dict[str, str]:
        """Per-image quantity -> why its cell is blank for this family."""
        out = {}
        if self.no_kl:
            blank = ("kl",) if self.mc_kl else POSTERIOR_QUANTITIES
            out = {q: self.no_kl for q in blank}
        if not self.objective:  # one reason for all, so the tables give it one footnote
            out["objective"] = OBJECTIVE_ONLY
        return out


_POINT = "a deterministic encoder: no posterior, so no KL"
_GAUSS = ("normal", "gmm")

# Table order: autoencoders, the VAE and its β sweep, the other single-Gaussian-posterior VAEs,
# richer posteriors and priors, then the quantised and adversarial families. Okabe-Ito
# colours for the original study's four; distinct colours and markers for the rest.
REGISTRY: list[Family] = [
    Family("ae", "AE", "#999999", "P", ("AE", "AEConfig"), "base", "deterministic", ("gmm",),
           "pixel MSE", no_kl=_POINT, reconstruction_loss=False, tags=("autoencoder",)),
    Family("vae", "VAE", "#0072B2", "D", ("VAE", "VAEConfig"), "base", "gaussian", _GAUSS,
           "the reconstruction loss + KL", objective=True, kl_weight=1.0, tags=("vae",)),
    Family("beta_vae", "β-VAE", "#E69F00", "o", ("BetaVAE", "BetaVAEConfig"), "base",
           "gaussian", _GAUSS, "the reconstruction loss + β·KL", objective=True, swept=True,
           tags=("vae", "beta-vae")),
    Family("iwae", "IWAE", "#56B4E9", "v", ("IWAE", "IWAEConfig"), "base", "gaussian", _GAUSS,
           "the importance-weighted bound", cost=4.0,  # decodes number_samples (10) z per image
           tags=("vae", "iwae")),
    Family("vae_lin_nf", "VAE-LinNF", "#CC79A7", "^", ("VAE_LinNF", "VAE_LinNF_Config"),
           "base", "gaussian", _GAUSS, "an ELBO through planar flows", flow="planar", mc_kl="flow",
           no_kl="its posterior is the flow-transformed q_K, not the Gaussian the analytic KL "
           "uses", tags=("vae", "normalizing-flow")),
    Family("vae_iaf", "VAE-IAF", "#882255", "<", ("VAE_IAF", "VAE_IAF_Config"), "base",
           "gaussian", _GAUSS, "an ELBO through an inverse autoregressive flow", flow="iaf",
           mc_kl="flow",
           no_kl="its posterior is the flow-transformed q_K, not the Gaussian the analytic KL "
           "uses", tags=("vae", "iaf", "normalizing-flow")),
    Family("beta_tc_vae", "β-TC-VAE", "#F0E442", ">", ("BetaTCVAE", "BetaTCVAEConfig"), "base",
           "gaussian", _GAUSS, "a total-correlation-weighted ELBO",
           tags=("vae", "beta-tc-vae", "disentanglement")),
    Family("factor_vae", "FactorVAE", "#117733", "p", ("FactorVAE", "FactorVAEConfig"),
           "adversarial", "gaussian", _GAUSS, "an ELBO plus a latent discriminator's "
           "total-correlation estimate", cost=1.5, tags=("vae", "factor-vae", "disentanglement")),
    Family("disentangled_beta_vae", "Disentangled β-VAE", "#DDCC77", "h",
           ("DisentangledBetaVAE", "DisentangledBetaVAEConfig"), "base", "gaussian", _GAUSS,
           "the reconstruction loss + β·abs(KL − C)", tags=("vae", "beta-vae", "disentanglement")),
    Family("info_vae", "InfoVAE (MMD)", "#44AA99", "H", ("INFOVAE_MMD", "INFOVAE_MMD_Config"),
           "base", "gaussian", _GAUSS, "an ELBO plus an MMD term", tags=("vae", "info-vae")),
    Family("wae", "WAE (MMD)", "#332288", "x", ("WAE_MMD", "WAE_MMD_Config"), "base",
           "deterministic", _GAUSS, "pixel MSE plus an MMD term", no_kl=_POINT,
           reconstruction_loss=False, tags=("autoencoder", "wae")),
    Family("vamp", "VAMP", "#AA4499", "+", ("VAMP", "VAMPConfig"), "base", "gaussian",
           ("vamp", "gmm"), "an ELBO with the VampPrior", mc_kl="vamp",
           no_kl="its prior is the VampPrior mixture, not N(0, I)", tags=("vae", "vamp")),
    Family("hvae", "HVAE", "#88CCEE", "*", ("HVAE", "HVAEConfig"), "base", "gaussian", _GAUSS,
           "an ELBO of Hamiltonian-refined latents",
           no_kl="its posterior is the Hamiltonian flow of q, not the Gaussian the analytic "
           "KL uses", reconstruction_loss=False, cost=3.0, tags=("vae", "hvae"),
           # its BCE is a torch Bernoulli that rejects non-binary pixels: Pythae's CelebA MSE
           fixed={"reconstruction_loss": "mse"}),
    Family("rae_gp", "RAE-GP", "#661100", "d", ("RAE_GP", "RAE_GP_Config"), "base",
           "deterministic", ("gmm",), "pixel MSE plus a gradient penalty", no_kl=_POINT,
           reconstruction_loss=False, cost=2.0, tags=("autoencoder", "rae")),
    Family("rae_l2", "RAE-L2", "#6699CC", "8", ("RAE_L2", "RAE_L2_Config"), "coupled_optimizer",
           "deterministic", ("gmm",), "pixel MSE plus decoder weight decay", no_kl=_POINT,
           reconstruction_loss=False, decoder_weight_decay=True, tags=("autoencoder", "rae")),
    Family("aae", "Adversarial AE", "#999933", "1", ("Adversarial_AE", "Adversarial_AE_Config"),
           "adversarial", "gaussian", _GAUSS, "a reconstruction loss plus a latent "
           "discriminator's adversarial loss", cost=1.5, tags=("autoencoder", "adversarial")),
    Family("msssim_vae", "MSSSIM-VAE", "#CC6677", "2", ("MSSSIM_VAE", "MSSSIM_VAEConfig"),
           "base", "gaussian", _GAUSS, "MS-SSIM + β·KL", reconstruction_loss=False,
           tags=("vae", "msssim")),
    Family("vqvae", "VQ-VAE", "#009E73", "s", ("VQVAE", "VQVAEConfig"), "base",
           "vector_quantised", ("gmm", "pixelcnn"), "MSE plus codebook terms",
           no_kl="VQ-VAE has no Gaussian posterior, so no KL", reconstruction_loss=False,
           fixed={"use_ema": False},  # Pythae 0.1.2's PixelCNN sampler fails with EMA codebooks
           tags=("vq-vae",)),
    Family("vaegan", "VAE-GAN", "#D55E00", "X", ("VAEGAN", "VAEGANConfig"),
           "coupled_adversarial", "gaussian", _GAUSS, "a discriminator-feature loss plus an "
           "adversarial loss", reconstruction_loss=False,
           kl_weight=1.0, fixed={"uses_default_discriminator": False}, cost=3.0,
           tags=("vae", "vae-gan", "gan")),
]  # fmt: skip

# A Pythae class the registry lacks, met in a model vaebench evaluates but did not train
# (vaebench.outside): its encoder's embedding is decoded as is (a Gaussian encoder's mean),
# the gmm sampler needs no more knowledge of it, and no posterior quantity is computed.
OTHER = Family("other", "other Pythae model", "#000000", ".", ("", ""), "base", "deterministic",
               ("gmm",), "unknown to vaebench",
               no_kl="its Pythae class is not in vaebench's family registry, so vaebench does "
               "not know its posterior")  # fmt: skip

BY_KEY: dict[str, Family] = {}
MODEL_ORDER: list[str] = []
FAMILY: dict[str, str] = {}
SAMPLER_MODELS: dict[str, tuple[str, ...]] = {}
NOT_APPLICABLE: dict[tuple[str, str], str] = {}
PALETTE: dict[str, str] = {}
MARKERS: dict[str, str] = {}


def _derive() -> None:
    """(Re)build the lookups from REGISTRY, in place, so every importer sees the same dicts."""
    check()
    MODEL_ORDER[:] = [f.key for f in REGISTRY]
    for target, items in (
        (BY_KEY, {f.key: f for f in REGISTRY}),
        (FAMILY, {f.key: f.label for f in REGISTRY}),
        (SAMPLER_MODELS, {s: tuple(f.key for f in REGISTRY if s in f.samplers) for s in SAMPLERS}),
        (NOT_APPLICABLE,
         {(f.key, q): why for f in REGISTRY for q, why in f.not_applicable.items()}),
        (PALETTE, {f.label: f.colour for f in REGISTRY}),
        (MARKERS, {f.label: f.marker for f in REGISTRY}),
    ):  # fmt: skip
        target.clear()
        target.update(items)


def lookup(key: str | None) -> Family:
    """The registry entry of `key`, or OTHER for a model of a class the registry lacks."""
    return BY_KEY.get(key or "", OTHER)


def by_config_class(name: str) -> str | None:
    """The family key whose Pythae config class is `name` (model_config.json's "name")."""
    return next((f.key for f in REGISTRY if f.pythae[1] == name), None)


def register(family: Family) -> None:
    """Add a family after the built-in ones (for extensions that cannot edit this file).

    Modules imported at startup by the environment variable VAEBENCH_FAMILIES (a comma-separated
    list of module names) call this, so that Snakemake and every job see the same registry.
    """
    REGISTRY.append(family)
    _derive()


def run_pattern() -> str:
    """The regular expression of every run id (the workflow's `run` wildcard constraint):
    `<key>/seed~S`, and `<key>/beta~B/seed~S` for swept families."""
    plain = "|".join(f.key for f in REGISTRY if not f.swept)
    swept = "|".join(f.key for f in REGISTRY if f.swept)
    alternatives = [f"(?:{plain})"] + ([rf"(?:{swept})/beta~[0-9.e+-]+"] if swept else [])
    return rf"(?:{'|'.join(alternatives)})/seed~\d+"


def evaluated_pattern() -> str:
    """The run ids of models vaebench evaluates but did not train (vaebench.outside)."""
    return r"[A-Za-z][A-Za-z0-9_-]*/evaluated"


def check() -> None:
    """The registry's own consistency (unique keys and labels, known kinds and samplers)."""
    keys, labels = [f.key for f in REGISTRY], [f.label for f in REGISTRY]
    if len(set(keys)) != len(keys) or len(set(labels)) != len(labels):
        raise ValueError(f"family keys and labels must be unique: {keys} {labels}")
    for f in REGISTRY:
        ok = f.trainer in TRAINERS and f.encoder in ENCODERS and f.flow in FLOWS
        ok = ok and f.mc_kl in MC_KL and (f.mc_kl is None or f.encoder == "gaussian")
        if not (ok and f.samplers and set(f.samplers) <= set(SAMPLERS)):
            raise ValueError(f"family {f.key!r}: unknown trainer, encoder, flow or sampler")


def markdown_table() -> str:
    """The README's table of families (`python -m vaebench.families` prints it)."""
    shown = {"kl": "KL", "neg_elbo": "−ELBO", "objective": "objective"}
    rows = ["| key | family | Pythae class | trainer | encoder | trained on | samplers | blank |",
            "|:---|:---|:---|:---|:---|:---|:---|:---|"]  # fmt: skip
    for f in REGISTRY:
        blank = ", ".join(name for q, name in shown.items() if q in f.not_applicable)
        encoder = f.encoder.replace("_", "-") + (f" + {f.flow} flow" if f.flow else "")
        cells = [f"`{f.key}`", f.label, f"`{f.pythae[0]}`", f.trainer.replace("_", "-"), encoder,
                 f.loss, ", ".join(f.samplers), blank or "—"]  # fmt: skip
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _load_extensions() -> None:
    """Import the modules named in VAEBENCH_FAMILIES (each calls `register`)."""
    import importlib
    import os

    from vaebench import VaebenchError

    names = [n.strip() for n in os.environ.get("VAEBENCH_FAMILIES", "").split(",")]
    for name in filter(None, names):
        try:
            importlib.import_module(name)
        except (ImportError, ValueError, TypeError) as err:
            raise VaebenchError(
                f"VAEBENCH_FAMILIES: module {name!r} did not register its family ({err}); put "
                "it on PYTHONPATH, fix it or unset the variable"
            ) from err


_derive()
_load_extensions()

if __name__ == "__main__":
    print(markdown_table())
