"""The formula-only perceptual metrics, from piq 0.8.0: HaarPSI, MDSI, VSI, FSIMc, MS-GMSD.

They need no weights, so they score every offline run (the demo, the tests) where LPIPS and
the Inception metrics show stand-in values, and several match or beat LPIPS on the
human-rated sets (Spearman on TID2013 / KADID-10k, from piq's README: MDSI .89/.89, HaarPSI
.87/.89, VSI .90/.88, FSIMc .85/.85; LPIPS-VGG .67/.72, SSIM .72/.72). Each is piq's own
function on the candidate clamped to [0, 1] with data_range 1, per image, at piq's defaults
(SETTINGS, recorded in every Parquet file's metadata). At 64 px:
  haarpsi  similarity (1 for identical images); needs >= 2^(scales+1) = 16 px;
  mdsi     a deviation (0 for identical images, lower is better); piq pools by
           round(side / 256), i.e. not at all below 384 px;
  vsi      similarity; its saliency map is computed on a bilinear 256 px copy and scaled
           back, the slowest of the five (~0.1 s per image on one core);
  fsimc    piq.fsim with chromatic=True (FSIMc), similarity; 4 scales, 4 orientations;
  ms_gmsd  a deviation; piq's 4 scale weights need >= 2^4 + 1 = 17 px; luminance only
           (chromatic=False, as MS-GMSD is published; MS-GMSDc adds the chroma).
Which way is better, labels and notes: vaebench.metrics.registry.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch

MIN_SIDE = 17  # MS-GMSD's 4 scales (HaarPSI's 3 need 16)
# piq's function and the keyword arguments it gets for each metric (piq's defaults, written
# out so that Parquet metadata records them; VSI's saliency size, 256 px, is fixed in piq)
PIQ_FUNCTIONS = {"haarpsi": "haarpsi", "mdsi": "mdsi", "vsi": "vsi", "fsimc": "fsim",
                 "ms_gmsd": "multi_scale_gmsd"}  # fmt: skip
SETTINGS: dict[str, dict] = {
    "haarpsi": {"scales": 3, "subsample": True, "c": 30.0, "alpha": 4.2},
    "mdsi": {"combination": "sum", "c1": 140.0, "c2": 55.0, "c3": 550.0, "alpha": 0.6},
    "vsi": {},
    "fsimc": {"chromatic": True, "scales": 4, "orientations": 4},
    "ms_gmsd": {"chromatic": False},
}


def functions() -> dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    """key -> f(x_hat, x) giving one float per image (imports piq: ~2 s, only where used)."""
    import piq

    return {
        key: partial(getattr(piq, name), data_range=1.0, reduction="none", **SETTINGS[key])
        for key, name in PIQ_FUNCTIONS.items()
    }
