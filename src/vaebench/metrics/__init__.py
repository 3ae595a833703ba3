"""Every metric vaebench computes, in one place (after torch-fidelity's layout).

- `registry`: every metric's key, label, direction, kind, weights, note and reference; the
  tables, figures, model card and trackers derive their lists from it;
- `spaces`: the feature spaces of the set-level metrics (Inception-v3, DINOv2, CLIP);
- `images`: the per-image metrics of a reconstruction against its original (pixel,
  structural, LPIPS, DISTS, piq's formula-only metrics), with `pixel` (torch formulas equal
  to piq's) and `formula` (piq's HaarPSI, MDSI, VSI, FSIMc, MS-GMSD);
- `feature_inception`, `feature_dinov2`, `feature_clip`: one module per feature extractor,
  each following its reference protocol; `features`: images to features on any space;
- `sets`: the set-level formulas (FD, FD∞'s inputs, KD, precision/recall, density/coverage,
  CMMD), the same on every space;
- `weights` (with `standins`): the weight files, staged by one local rule, hashed, and their
  random stand-ins for offline runs;
- `files`: reading the metric Parquets back and what their metadata says.

Importing this package imports nothing heavy: `vaebench.config` reads `registry` and `spaces`
while Snakemake parses the workflow.
"""
