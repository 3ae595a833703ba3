"""Every metric vaebench reports, in one registry (as vaebench.families is for models).

An entry says what the tables, figures, model card and comparisons need to know: its column
key, display label, which way is better, units, kind, the weight files it needs, the footnote
printed under the tables, and its reference (the paper and the implementation its numbers
must match). vaebench.names, the per-image metric columns (vaebench.metrics), the default
paired comparisons and agreement (vaebench.paired) and the model card (vaebench.publish)
derive their lists from it; adding a metric is one entry here plus its function.

Kinds:
  image   full-reference, per image: the deterministic reconstruction against its original
          (and a generated sample against its round trip), computed by
          vaebench.metrics.reconstruction_metrics;
  model   per image, from the model itself (KL, the Monte Carlo −ELBO, the training
          objective), computed by the reconstruct job;
  set     set-level, on Inception (the generation table's FID, KID, ...);
  space   set-level on any feature space (the feature_spaces table, vaebench.metrics.spaces);
  info    a number reported beside a set metric (a fit's residual, a spread).

A footnote (`note`) may name settings from the metric's Parquet metadata in braces, e.g.
"{scales} scales"; the tables fill them in from what the job recorded.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    better: str | None  # "higher", "lower", or None: no direction (KL is a rate)
    kind: str  # image | model | set | info
    reference: str
    units: str | None = None
    weights: tuple[str, ...] = ()  # weight files it needs (vaebench.metrics.weights)
    note: str | None = None
    card: str | None = None  # the model card's name, when it needs more than the label
    compared: bool = False  # in the default paired comparisons and metric agreement
    roundtrip: bool = False  # in the round-trip table of generated samples
    # agreement with human ratings: Spearman's ρ on TID2013 / KADID-10k as piq 0.8.0's README
    # reports it for piq's implementation (None: not in that table)
    srcc: tuple[float, float] | None = None


NATS = "nats/image"
REGISTRY: tuple[Metric, ...] = (
    # in table order: the original study's columns (BCE MSE KL ELBO LPIPS SSIM GMSD) with ours
    # inserted, then the formula-only perceptual metrics of piq
    Metric("bce", "BCE", "lower", "image", "Pythae's 'bce' loss (torch binary_cross_entropy, "
           "summed)", NATS),
    Metric("bce_excess", "BCE excess", "lower", "image", "BCE − Σ H(x): Σ KL(Bern(x) ‖ "
           "Bern(x̂))", NATS, compared=True, roundtrip=True),
    Metric("mse", "MSE", "lower", "image", "mean squared error", "per pixel, [0, 1] scale",
           card="MSE (per pixel)", compared=True, roundtrip=True),
    Metric("kl", "KL", None, "model", "analytic KL(q(z|x) ‖ p(z))", NATS, roundtrip=True),
    Metric("neg_elbo", "−ELBO (MC)", "lower", "model", "E_q[BCE] + KL, Monte Carlo", NATS,
           card="-ELBO, Monte Carlo (nats/image)", roundtrip=True),
    Metric("objective", "objective (E_q BCE+β·KL)", "lower", "model", "the training loss of "
           "VAE and β-VAE", NATS, card="objective E_q[BCE] + beta KL (nats/image)",
           roundtrip=True),
    Metric("lpips", "LPIPS", "lower", "image", "Zhang et al. 2018; lpips 0.1.4, AlexNet, v0.1",
           weights=("alexnet",), card="LPIPS (AlexNet, v0.1)", compared=True, roundtrip=True,
           note="LPIPS: {net} trunk, v{version}, inputs in [-1, 1]; scores from different "
           "nets are not comparable."),
    Metric("lpips_vgg", "LPIPS-VGG", "lower", "image", "Zhang et al. 2018; lpips 0.1.4, VGG16, "
           "v0.1", weights=("vgg16",), card="LPIPS (VGG16, v0.1)", compared=True,
           roundtrip=True, note="LPIPS-VGG: lpips v0.1 on torchvision's VGG16 trunk, inputs in "
           "[-1, 1]; not comparable with LPIPS (AlexNet).", srcc=(0.67, 0.72)),
    Metric("dists", "DISTS", "lower", "image", "Ding et al. 2020; torchmetrics 1.9.0's DISTS, "
           "the authors' α, β", weights=("vgg16",), compared=True, roundtrip=True,
           note="DISTS: VGG16 trunk (torchvision), the authors' α and β (torchmetrics' copy), "
           "inputs in [0, 1]; a distance, 0 for identical images.", srcc=(0.81, 0.88)),
    Metric("ssim", "SSIM", "higher", "image", "Wang et al. 2004; piq.ssim", compared=True,
           roundtrip=True, srcc=(0.72, 0.72)),
    Metric("gmsd", "GMSD", "lower", "image", "Xue et al. 2014; piq.gmsd", compared=True,
           roundtrip=True, note="GMSD: piq's, with the population std (about 0.05% below "
           "the authors' MATLAB at 64 px).", srcc=(0.8, 0.85)),
    Metric("psnr", "PSNR", "higher", "image", "piq.psnr, data_range 1", "dB",
           card="PSNR (dB)", compared=True, srcc=(0.69, 0.68)),
    Metric("ms_ssim", "MS-SSIM", "higher", "image", "Wang et al. 2003; piq.multi_scale_ssim",
           compared=True, note="MS-SSIM: piq, data_range 1, Gaussian kernel {kernel_size}, "
           "{scales} scales (the default 11/5 needs >= 161 px).", srcc=(0.8, 0.8)),
    Metric("haarpsi", "HaarPSI", "higher", "image", "Reisenhofer et al. 2018; piq.haarpsi",
           compared=True, note="HaarPSI: piq, data_range 1, {scales} scales, subsample "
           "{subsample}.", srcc=(0.87, 0.89)),
    Metric("mdsi", "MDSI", "lower", "image", "Nafchi et al. 2016; piq.mdsi (a deviation: 0 "
           "for identical images)", compared=True, note="MDSI: piq, data_range 1, "
           "combination {combination}, a deviation (0 for identical images).", srcc=(0.89, 0.89)),
    Metric("vsi", "VSI", "higher", "image", "Zhang et al. 2014; piq.vsi", compared=True,
           note="VSI: piq, data_range 1; its saliency map is computed at 256 px.",
           srcc=(0.9, 0.88)),
    Metric("fsimc", "FSIMc", "higher", "image", "Zhang et al. 2011; piq.fsim(chromatic=True)",
           compared=True, note="FSIMc: piq.fsim with chromatic {chromatic}, {scales} scales, "
           "{orientations} orientations.", srcc=(0.85, 0.85)),
    Metric("ms_gmsd", "MS-GMSD", "lower", "image", "Zhang et al. 2017; piq.multi_scale_gmsd",
           compared=True, note="MS-GMSD: piq.multi_scale_gmsd with chromatic {chromatic}.",
           srcc=(0.81, 0.85)),
    # set-level, on Inception-v3 pool3 (the pytorch-fid protocol); KID first: unbiased at any N
    Metric("kid_mean", "KID", "lower", "set", "Bińkowski et al. 2018, unbiased MMD²",
           weights=("inception",), card="KID"),
    Metric("fid", "FID@N", "lower", "set", "Heusel et al. 2017; pytorch-fid's Inception",
           weights=("inception",)),
    Metric("fid_inf", "FID∞", "lower", "set", "Chong & Forsyth 2020, FID(N) = FID∞ + k/N",
           weights=("inception",), card="FID-infinity"),
    Metric("precision", "precision", "higher", "set", "Kynkäänniemi et al. 2019, k-NN",
           weights=("inception",), card="precision (Inception pool3)"),
    Metric("recall", "recall", "higher", "set", "Kynkäänniemi et al. 2019, k-NN",
           weights=("inception",), card="recall (Inception pool3)"),
    Metric("density", "density", "higher", "set", "Naeem et al. 2020, k-NN; prdc 0.2",
           weights=("inception",), card="density (Inception pool3)"),
    Metric("coverage", "coverage", "higher", "set", "Naeem et al. 2020, k-NN; prdc 0.2",
           weights=("inception",), card="coverage (Inception pool3)"),
    # set-level on any feature space (the feature_spaces table; metrics.spaces), beside
    # precision, recall, density and coverage above; on Inception they are FID, FID∞ and KID
    Metric("fd", "FD", "lower", "space", "Fréchet distance of the space's features (FID's "
           "formula)", weights=("the space's",)),
    Metric("fd_inf", "FD∞", "lower", "space", "FD(N) = FD∞ + k/N, as FID∞",
           weights=("the space's",)),
    Metric("kd_mean", "KD", "lower", "space", "KID's unbiased MMD² on the space's features",
           weights=("the space's",)),
    Metric("cmmd", "CMMD", "lower", "space", "Jayasumana et al. 2024; google-research/cmmd's "
           "estimator on CLIP ViT-L/14@336", weights=("clip_vitl14_336",),
           note="CMMD: 1000 · MMD² with a Gaussian kernel (σ = 10) on L2-normalised CLIP "
           "ViT-L/14@336 image embeddings, google-research/cmmd's estimator (kernel means "
           "with the diagonal); computed on CLIP only, its protocol: blank on other spaces."),
    Metric("fid_inf_residual", "FID∞ fit RMS", None, "info", "RMS residual of the FID∞ fit",
           weights=("inception",)),
    Metric("kid_std", "KID std", None, "info", "KID's std over subsets",
           weights=("inception",), card="KID std over subsets"),
)  # fmt: skip

BY_KEY = {m.key: m for m in REGISTRY}
PER_IMAGE = tuple(m.key for m in REGISTRY if m.kind in ("image", "model"))
IMAGE = tuple(m.key for m in REGISTRY if m.kind == "image")
SET = tuple(m.key for m in REGISTRY if m.kind == "set")
# the feature_spaces table's columns: FD, FD∞, KD, then the k-NN metrics, then CMMD
SPACE = ("fd", "fd_inf", "kd_mean", "precision", "recall", "density", "coverage", "cmmd")
COMPARED = tuple(m.key for m in REGISTRY if m.compared)
ROUNDTRIP = tuple(m.key for m in REGISTRY if m.roundtrip)
HIGHER_IS_BETTER = frozenset(m.key for m in REGISTRY if m.better == "higher")
NO_DIRECTION = frozenset(m.key for m in REGISTRY if m.better is None)
LEARNED = frozenset(m.key for m in REGISTRY if m.weights)
# "LPIPS, KID, FID@N, ... and coverage": the metrics that stand-in weights make meaningless,
# for every warning that names them (terminal, tables, report, model card, stage_weights)
_learned = [m.label for m in REGISTRY if m.weights and m.kind != "info"]
LEARNED_TEXT = ", ".join(_learned[:-1]) + " and " + _learned[-1]
LABELS = {m.key: m.label for m in REGISTRY if m.kind != "info" or m.key == "fid_inf_residual"}
UNITS = {m.key: m.units for m in REGISTRY if m.units}


def markdown_table() -> str:
    """The README's table of metrics (`python -m vaebench.metrics.registry` prints it)."""
    arrow = {"higher": "↑", "lower": "↓", None: ""}
    rows = ["| key | metric | better | kind | weights | reference | human ρ TID2013 / KADID |",
            "|:---|:---|:---:|:---|:---|:---|:---|"]  # fmt: skip
    for m in REGISTRY:
        if m.kind == "info":
            continue
        srcc = f"{m.srcc[0]:.2f} / {m.srcc[1]:.2f}" if m.srcc else "—"
        cells = [f"`{m.key}`", m.label + (f" ({m.units})" if m.units else ""), arrow[m.better],
                 m.kind, ", ".join(m.weights) or "none", m.reference, srcc]  # fmt: skip
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)


def card_name(key: str) -> str:
    """The model card's name of a metric (its label, with units where it has them)."""
    m = BY_KEY[key]
    if m.card:
        return m.card
    return f"{m.label} ({m.units})" if m.units else m.label


def note(key: str, settings: dict) -> str | None:
    """The metric's footnote with the recorded settings filled in (None: no footnote)."""
    m = BY_KEY.get(key)
    if m is None or m.note is None:
        return None
    if settings.get("computed") is False:  # a metric the study switched off
        return f"{m.label}: not computed ({settings.get('switch')}: false)."
    values = {**settings, "kernel_size": settings.get("kernel_size", settings.get("kernel"))}
    try:
        return m.note.format_map(values)
    except KeyError:  # settings recorded by an older vaebench: the note without them
        return m.note.split(":")[0] + "."


if __name__ == "__main__":
    print(markdown_table())
