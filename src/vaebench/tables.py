"""The study's tables: the entry point `vaebench.jobs.tables` calls.

Per-image metrics in, one row per model/β (and sampler) out, written in four formats: every
cell a mean with a 95% interval that includes seed-to-seed variation where there are several
seeds, so that two rows whose intervals overlap are not ranked by the table. A metric that
does not apply to a model stays blank with a note, never 0: the original study filled the
VQ-VAE and VAE-GAN rows it could not compute with zeros, which reads as a perfect score.

The work is split along its seams; this module re-exports the names callers use:
- `vaebench.names`: metric names, directions, row labels and order, notes;
- `vaebench.summaries`: reading metric files and building the table frames (statistics);
- `vaebench.stats`: bootstrap, seed intervals, Holm, FID∞ (pure numpy/scipy);
- `vaebench.cells`: what each cell says (numbers to text, stand-in masking, blank-cell notes);
- `vaebench.render`: Parquet, plain CSV, Markdown, LaTeX and HTML output.
"""

from __future__ import annotations

from vaebench.cells import auto_footnotes, fmt, mask_stand_in
from vaebench.names import (
    DIVERGED,
    FAMILY,
    HIGHER_IS_BETTER,
    LEARNED,
    METRICS,
    MODEL_ORDER,
    NAMES,
    NO_DIRECTION,
    NOT_APPLICABLE,
    ROUNDTRIP_METRICS,
    ROUNDTRIP_PREFIX,
    SAMPLER_ORDER,
    SET_METRICS,
    STAND_IN,
    UNITS,
    VAE_SWEEP_LABEL,
    WEIGHTS_WARNING,
    diverged_mask,
    header,
    metric_base,
    metric_name,
    order_rows,
    row_label,
    sweep_rows,
    with_diverged,
)
from vaebench.render import (
    tex_escape,
    to_csv_text,
    to_latex,
    to_markdown,
    write_table,
)
from vaebench.stats import boot_means, crossed_interval, crossed_paired, resample_counts
from vaebench.summaries import (
    generation_table,
    load_metrics,
    reconstruction_table,
    settings_footnotes,
)

__all__ = [
    "DIVERGED",
    "FAMILY",
    "HIGHER_IS_BETTER",
    "LEARNED",
    "METRICS",
    "MODEL_ORDER",
    "NAMES",
    "NOT_APPLICABLE",
    "NO_DIRECTION",
    "ROUNDTRIP_METRICS",
    "ROUNDTRIP_PREFIX",
    "SAMPLER_ORDER",
    "SET_METRICS",
    "STAND_IN",
    "UNITS",
    "VAE_SWEEP_LABEL",
    "WEIGHTS_WARNING",
    "auto_footnotes",
    "boot_means",
    "crossed_interval",
    "crossed_paired",
    "diverged_mask",
    "fmt",
    "generation_table",
    "header",
    "load_metrics",
    "mask_stand_in",
    "metric_base",
    "metric_name",
    "order_rows",
    "reconstruction_table",
    "resample_counts",
    "row_label",
    "settings_footnotes",
    "sweep_rows",
    "tex_escape",
    "to_csv_text",
    "to_latex",
    "to_markdown",
    "with_diverged",
    "write_table",
]
