"""The feature spaces of the set-level generation metrics, in one registry.

A space says how an image becomes a feature vector: the weight file it needs
(vaebench.metrics.weights), the network's architecture, the protocol it follows and the
module that extracts (vaebench.metrics.feature_<module>). The same set-level formulas
(vaebench.metrics.sets) run on every space: FD, FD∞, KD, precision/recall and density/
coverage; CMMD on CLIP, whose protocol it is. `metrics.feature_spaces` in the config lists
the spaces a study runs; Inception (the literature's FID) is always among them.

Light on purpose (no torch): the workflow reads it when it parses the config.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Space:
    key: str
    label: str
    weights: str  # a WeightFile key
    module: str  # vaebench.metrics.feature_<module>
    arch: str  # the network's name in the package that builds it
    protocol: str  # what its features are, for the Parquet metadata and the tables
    reference: str  # the implementation its features must match
    cmmd: bool = False  # CMMD is computed on this space


INCEPTION = "inception"
SPACES: tuple[Space, ...] = (
    Space(INCEPTION, "Inception-v3", "inception", "inception", "pytorch-fid InceptionV3",
          "pool3 (2048-d), bilinear resize to 299 px", "pytorch-fid, through piq"),
    Space("dinov2_vits14", "DINOv2 ViT-S/14", "dinov2_vits14", "dinov2",
          "vit_small_patch14_dinov2", "final-norm CLS token (384-d), PIL bicubic resize to "
          "224 px, ImageNet normalisation", "dgm-eval's DINOv2Encoder (Stein et al. 2023)"),
    Space("dinov2_vitl14", "DINOv2 ViT-L/14", "dinov2_vitl14", "dinov2",
          "vit_large_patch14_dinov2", "final-norm CLS token (1024-d), PIL bicubic resize to "
          "224 px, ImageNet normalisation", "dgm-eval's DINOv2Encoder (Stein et al. 2023)"),
    Space("clip_vitl14_336", "CLIP ViT-L/14@336", "clip_vitl14_336", "clip", "ViT-L-14-336",
          "L2-normalised image embedding (768-d), open_clip's preprocess (PIL bicubic resize "
          "to 336 px, centre crop, CLIP normalisation)", "CMMD (Jayasumana et al. 2024) "
          "through open_clip", cmmd=True),
)  # fmt: skip
BY_KEY = {s.key: s for s in SPACES}
KEYS = tuple(BY_KEY)
# The generation table names Inception's set metrics as the literature does; on every other
# space (and in the feature_spaces table) they are FD, FD∞ and KD.
INCEPTION_COLUMNS = {"fd": "fid", "fd_inf": "fid_inf", "fd_inf_residual": "fid_inf_residual",
                     "kd_mean": "kid_mean", "kd_std": "kid_std"}  # fmt: skip
