"""What a run says on the terminal: where it writes at the start, where the results are at the end.

Users read the terminal, not the logs: the first line names the config, the study's results
folder and whether the metric weights are official; a run on stand-in weights says so at
the start and again at the end, beside the reconstruction table's headline and the paths of
the tables, the figures and the report command. Snakemake parses the workflow on every
invocation, so everything at module level stays light (no torch, no pandas).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vaebench.config import LAYOUT_HELP, study_dir
from vaebench.metrics.registry import LEARNED_TEXT

STAND_IN = (
    "vaebench: WARNING: the LPIPS/DISTS/FID weights are randomly initialised STAND-INS, not the "
    f"official files: {LEARNED_TEXT} are meaningless (the tables show them as n/a); run "
    "`snakemake --cores 1 weights` with network, or place the files by hand"
)
HEADLINE = ("mse", "ssim", "gmsd", "kl", "lpips")  # the reconstruction table's headline columns


def weights_official(config: dict[str, Any]) -> bool | None:
    """Whether this study's staged weights (LPIPS/DISTS/FID and each further feature space's)
    are the official files (None: not all staged yet)."""
    from vaebench.config import extra_spaces

    staged = {}
    for name in ["staged", *extra_spaces(config)]:
        path = Path(study_dir(config), "weights", f"{name}.json")
        try:
            staged.update(json.loads(path.read_text()))
        except (OSError, ValueError):  # absent, or unreadable: its staging job rewrites it
            return None
    return bool(staged) and all(w.get("official") for w in staged.values())


def banner(config: dict[str, Any], configfiles: list) -> list[str]:
    """The lines a run starts with: config, results folder, weights."""
    files = ", ".join(os.path.relpath(f) for f in configfiles) or "none"
    official = weights_official(config)
    allow = config["weights"]["allow_random"]
    allowed = " (stand-ins allowed: weights.allow_random)" if allow else ""
    weights = {
        True: "official metric weights",
        False: "STAND-IN metric weights",
        None: "metric weights not staged yet" + allowed,
    }[official]
    lines = [
        f"vaebench: study {config['study']!r} from config {files}; results in "
        f"{study_dir(config)}/; {weights}"
    ]
    return lines + ([STAND_IN] if official is False else [])


def snakemake_command() -> str:
    """How to run this environment's snakemake again: `snakemake` where the PATH finds it
    (an activated .venv), else its path (`.venv/bin/snakemake` after `make demo`)."""
    import shutil
    import sys

    mine = Path(sys.executable).parent / "snakemake"
    found = shutil.which("snakemake")
    if not mine.exists() or (found and Path(found).parent == mine.parent):
        return "snakemake"
    return os.path.relpath(mine)


def kid_warning(config: dict[str, Any]) -> str | None:
    """A one-line warning when KID's subsets are larger than the sets they are drawn from: the
    generation job then clamps them (and its table note says so); better to know before."""
    subset = config["metrics"]["kid"]["subset_size"]
    n = min(config["sampling"]["n_samples"], config["dataset"]["n_reference"])
    if subset <= n:
        return None
    return (
        f"vaebench: warning: metrics.kid.subset_size {subset} is more than the {n} images of "
        "the smaller set (sampling.n_samples, dataset.n_reference): KID will use subsets of "
        f"{n}; set metrics.kid.subset_size to at most {n}"
    )


def weights_warning(config: dict[str, Any]) -> str | None:
    """A one-line warning, at parse time (a dry run too), when the official LPIPS/Inception
    files are not in the weights cache and stand-ins are not allowed: the stage_weights job
    will need the network."""
    from vaebench.config import extra_spaces, vgg16_needed
    from vaebench.metrics.weights import OFFLINE_HINT, needed, space_file, weight_path

    if config["weights"]["allow_random"] or weights_official(config):
        return None
    cache = config["weights"]["cache"]
    files = [*needed(vgg16_needed(config)), *map(space_file, extra_spaces(config))]
    missing = [w.name for w in files if not weight_path(cache, w).is_file()]
    if not missing:
        return None
    return (
        f"vaebench: warning: pretrained weights {', '.join(missing)} are not in {cache}; "
        "the staging jobs (`snakemake --cores 1 weights`) download them (network needed), "
        f"{OFFLINE_HINT}"
    )


def dataset_warning(config: dict[str, Any]) -> str | None:
    """A one-line warning when dataset.root does not exist and the data is not prepared yet.

    Only a warning: users dry-run a config before they copy the data; prepare_data itself
    stops with the full message."""
    d = config["dataset"]
    if d["name"] not in LAYOUT_HELP or Path(study_dir(config), "data", "manifest.json").exists():
        return None
    if d["root"] and Path(d["root"]).expanduser().is_dir():
        return None
    return (
        f"vaebench: warning: dataset.root = {d['root']} does not exist; "
        f"{LAYOUT_HELP[d['name']]} (prepare_data stops until it does)"
    )


def summary(config: dict[str, Any], configfiles: list) -> list[str]:
    """The lines a successful run ends with: the reconstruction table's headline, where the
    tables, figures and report are, and the stand-in warning again; when the run did not
    build the tables (a target such as data/manifest.json), where its results folder is."""
    base = study_dir(config)
    table = Path(base, "tables", "reconstruction.csv")
    lines = []
    if not table.is_file():
        return [f"vaebench: done; the study's tables are not built yet (results in {base}/)"]
    import pandas as pd

    try:
        df = pd.read_csv(table)
        shown = df[["label", *(c for c in HEADLINE if c in df)]].copy()
    except (ValueError, KeyError):  # not the table's CSV (empty, other columns): no headline
        shown = None
    if shown is not None:
        for c in shown.columns[1:]:
            shown[c] = [v if isinstance(v, str) else "" if v != v else f"{v:.4g}" for v in shown[c]]
        lines.append("vaebench: reconstruction of held-out test images (mean per image):")
        lines += ["  " + row for row in shown.fillna("").to_string(index=False).splitlines()]
    cfg = " ".join(f"--configfile {os.path.relpath(f)}" for f in configfiles)
    lines += [
        f"vaebench: tables   {base}/tables/ (.md, .csv, .tex, .html, .parquet)",
        f"vaebench: figures  {base}/figures/",
        f"vaebench: report   {snakemake_command()} {cfg + ' ' if cfg else ''}--report "
        f"{base}/report.html",
    ]
    return lines + ([STAND_IN] if weights_official(config) is False else [])
