"""Reading per-run metric files, and the table notes their metadata implies.

The metric jobs write one Parquet file per run (and sampler) with what defines the numbers
in its metadata: the metric settings, whether the LPIPS/DISTS/Inception weights are the official
ones, the checkpoint rule and the generation settings. `load_metrics` merges them; the note
functions turn them into the one-line footnotes under the tables.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vaebench import VaebenchError, families
from vaebench.io import read_parquet_metadata
from vaebench.metrics import registry
from vaebench.names import SET_METRICS, metric_name
from vaebench.stats import ONE_SEED_NOTE, SEED_INTERVAL_NOTE

CHECKPOINT_RULES = {
    "last": "the last training epoch",
    "best_val_mse": "the epoch with the lowest pixel MSE on the validation split",
}


def _drop_seeds(obj: Any) -> Any:
    """Settings without their per-run `seed` entries (the ELBO draws are seeded per run)."""
    if isinstance(obj, dict):
        return {k: _drop_seeds(v) for k, v in obj.items() if k != "seed"}
    return obj


def _comparable(s: dict[str, Any], other: dict[str, Any]) -> str:
    """`s` as compared with `other`: without seeds, without metrics it did not compute (a
    file written before a metric existed simply lacks it), and without the ELBO draws'
    settings where `other` has none (the set metrics of a samples entry, which has no model)."""
    out = _drop_seeds(s)
    out = {k: v for k, v in out.items()
           if not (isinstance(v, dict) and v.get("computed") is False)}  # fmt: skip
    if "elbo" not in other:
        out.pop("elbo", None)
    return json.dumps(out, sort_keys=True)


def _merge(values: list[Any]) -> Any:
    distinct = list({json.dumps(v, sort_keys=True): v for v in values}.values())
    return distinct[0] if len(distinct) == 1 else distinct


def _generation_settings(meta: dict, settings_key: str) -> dict[str, Any]:
    """metadata["generation"] (or [settings_key]["generation"]); else what the metrics config
    in the provenance says about KID and precision/recall."""
    g = meta.get("generation") or meta.get(settings_key, {}).get("generation")
    if isinstance(g, dict):
        return g
    cfg = meta.get("config", {}).get("metrics", {})
    kid = cfg.get("kid", {})
    out = {
        "pr_k": cfg.get("pr_k"),
        "kid_subset_size": kid.get("subset_size"),
        "kid_n_subsets": kid.get("n_subsets"),
    }
    return {k: v for k, v in out.items() if v is not None}


def load_metrics(
    paths: Iterable[str | Path], settings_key: str = "metrics"
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Concatenate per-run metric Parquets and merge what their metadata says.

    Returns (frame, info); info = {"weights_official": bool, "settings": dict, "checkpoint":
    str | list | None, "generation": dict}, also attached as frame.attrs["metadata"] so the
    table functions can print it. `weights_official` is True only if every file says so: a
    missing flag counts as False. Settings (metadata[settings_key]: MS-SSIM kernel, LPIPS
    net, ...) must be equal across files apart from per-run seeds: a table mixing them compares
    numbers that are not comparable. `checkpoint` is metadata["checkpoint"] (a list when runs
    differ, None when no file records it); `generation` merges the generation settings (a
    list where files differ).
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise VaebenchError("no metric files to aggregate: is the run table empty?")
    frames, official, settings, first = [], True, None, None
    checkpoints, generation = [], {}
    for p in paths:
        if not p.exists():
            raise VaebenchError(f"{p}: metric file missing; run its metrics job first")
        meta = read_parquet_metadata(p)
        official = official and bool(meta.get("weights_official", False))
        s = meta.get(settings_key, {})
        if settings is None:
            settings, first = s, p
        elif "elbo" in s and "elbo" not in settings:  # the first was a samples entry's
            settings = {**settings, "elbo": s["elbo"]}
        if _comparable(s, settings) != _comparable(settings, s):
            raise VaebenchError(
                f"{p} was computed with metric settings {s}, but {first} with {settings}; "
                "rerun the metrics with one config"
            )
        if meta.get("checkpoint"):
            checkpoints.append(meta["checkpoint"])
        for k, v in _generation_settings(meta, settings_key).items():
            generation.setdefault(k, []).append(v)
        frames.append(pd.read_parquet(p))
    info = {
        "weights_official": official,
        "settings": settings or {},
        "checkpoint": _merge(checkpoints) if checkpoints else None,
        "generation": {k: _merge(v) for k, v in generation.items()},
    }
    frame = pd.concat(frames, ignore_index=True)
    frame.attrs["metadata"] = info
    return frame, info


def frame_metadata(*frames: pd.DataFrame | None) -> dict[str, Any]:
    """The load_metrics info attached to the first frame that has it ({} otherwise)."""
    for f in frames:
        if f is not None and f.attrs.get("metadata"):
            return f.attrs["metadata"]
    return {}


# -- notes ----------------------------------------------------------------------------------


def settings_footnotes(settings: dict[str, Any], columns: Iterable[str] | None = None) -> list:
    """One footnote per metric whose settings change its values (MS-SSIM kernel, LPIPS net,
    ...), for the metrics in `columns` (all when None). BCE and −ELBO have their own notes."""
    keep = None if columns is None else {c.removeprefix("rt_") for c in columns}
    notes = []
    for name, s in sorted(settings.items()):
        if name in ("versions", "elbo") or not isinstance(s, dict):
            continue  # versions stay in the metadata; the −ELBO note has its standard error
        if keep is not None and name not in keep:
            continue
        registered = registry.note(name, s)
        if registered is not None:
            notes.append(registered)
        else:
            plain = {k: v for k, v in sorted(s.items()) if not isinstance(v, dict | list)}
            plain.pop("impl", None)
            items = ", ".join(f"{k} {v}" for k, v in plain.items())
            notes.append(f"{metric_name(name)}: {items}.")
    return notes


def seed_notes(n_seeds: pd.Series, labels: pd.Series) -> list[str]:
    """ONE_SEED_NOTE when every row has one seed; else name the rows that have one."""
    n_seeds, labels = pd.Series(n_seeds).reset_index(drop=True), pd.Series(labels)
    live = n_seeds[n_seeds > 0]
    if len(live) and (live == 1).all():
        return [ONE_SEED_NOTE]
    one = labels.reset_index(drop=True)[n_seeds == 1]
    if len(one):
        return [
            f"Rows with one training seed ({', '.join(map(str, dict.fromkeys(one)))}): their "
            "intervals cover resampled test images only, not training variance."
        ]
    return []


def checkpoint_note(meta: dict[str, Any]) -> list[str]:
    """Which checkpoint rule picked every family's model (nothing when not recorded)."""
    rule = meta.get("checkpoint")
    if not rule:
        return []
    if isinstance(rule, list):
        return [f"Checkpoints: runs were kept by different rules ({', '.join(map(str, rule))})."]
    what = CHECKPOINT_RULES.get(rule, str(rule))
    return [f"Checkpoint: every family's model is {what} (training.checkpoint: {rule})."]


def elbo_note(df: pd.DataFrame, meta: dict[str, Any], prefix: str = "") -> list[str]:
    """−ELBO is a Monte Carlo estimate over q(z|x): how many draws, and its standard error."""
    if f"{prefix}neg_elbo" not in df or df[f"{prefix}neg_elbo"].isna().all():
        return []
    samples = (meta.get("settings", {}).get("elbo") or {}).get("samples")
    draws = f"{samples} draws of z ~ q(z|x) per image" if samples else "draws of z ~ q(z|x)"
    note = f"{'RT ' if prefix else ''}−ELBO (MC): a Monte Carlo estimate over q(z|x), {draws}"
    se = df.get(f"{prefix}neg_elbo_se")
    if se is not None and se.notna().any():
        lo, hi = float(se.min()), float(se.max())
        span = f"{lo:.3g}" if np.isclose(lo, hi) else f"{lo:.3g} to {hi:.3g}"
        note += (
            f"; its Monte Carlo standard error per image averages {span} nats across rows "
            f"(column {prefix}neg_elbo_se of the Parquet file)"
        )
    shown = df[df[f"{prefix}neg_elbo"].notna()]
    mc = {families.BY_KEY[m].label: families.BY_KEY[m].mc_kl for m in shown.get("model", [])
          if m in families.BY_KEY and families.BY_KEY[m].mc_kl}  # fmt: skip
    if mc:
        how = {"flow": "log q0(z0) − log|det J| − log N(z_K; 0, I)",
               "vamp": "log q(z|x) − log p_VAMP(z)"}  # fmt: skip
        note += "; its KL term is analytic, except " + "; ".join(
            f"{label}: a Monte Carlo estimate with the same draws, {how[kind]}"
            for label, kind in mc.items()
        )
    return [note + "; objective uses the same draws."]


def _text(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k} {_text(x)}" for k, x in sorted(v.items()))
    return ", ".join(map(_text, v)) if isinstance(v, list) else str(v)


def generation_notes(out: pd.DataFrame, meta: dict[str, Any]) -> list[str]:
    """What each generation metric is, with the settings the metric files recorded."""
    g = dict(meta.get("generation", {}))
    feats = g.pop("features", "Inception pool3 (2048-d, the pytorch-fid weights)")
    resize = g.pop("resize", "bilinear resize to 299 px")
    subset = g.pop("kid_subset_size", None)
    if subset is None and "kid_subset_size" in out:
        subset = [int(s) for s in out["kid_subset_size"].dropna().unique()] or None
    count, at, k = g.pop("kid_n_subsets", None), g.pop("fid_sizes", None), g.pop("pr_k", 3)
    dc_k = g.pop("dc_k", None)
    notes = []
    if "kid_mean" in out:
        notes.append(
            f"KID (first: unbiased at any N): polynomial-kernel MMD² on {feats} features, mean "
            f"over {_text(count) if count else 'random'} subsets of "
            f"{_text(subset) if subset else 'equal size'} samples; one seed: ± std over "
            "subsets; several: a t interval over seeds."
        )
    if "fid" in out:
        notes.append(
            f"FID@N: Fréchet distance of {feats} features, the pytorch-fid protocol ({resize}); "
            "N generated samples against N_ref reference images (column N gen/ref). Biased "
            "~c/N with a model-dependent c: compare rows only at equal N."
        )
    if "fid_inf" in out:
        notes.append(
            "FID∞: FID at "
            + (f"N = {_text(at)}" if at else "several N from N/5 to N")
            + ", fitted by least squares to FID∞ + k/N and extrapolated to 1/N = 0 (Chong & "
            "Forsyth, CVPR 2020); FID∞ fit RMS: the fit's residual RMS (mean over seeds)."
        )
    if "precision" in out:
        notes.append(
            f"precision/recall: k-NN manifold estimates (k = {_text(k)}) on {feats} features, "
            "not on the VGG16 fc2 features of Kynkäänniemi et al. (2019): the same "
            "construction on other features, so a different metric from theirs."
        )
    if "density" in out:
        notes.append(
            f"density/coverage (Naeem et al. 2020, the prdc formulas): on the real points' "
            f"k-NN balls (k = {_text(dc_k)}), density is the mean number of balls holding a "
            "generated sample over k (about 1 for matching sets, can exceed 1), coverage the "
            "share of real balls holding at least one; both robust to outliers."
        )
    sizes = out["n_generated"].dropna().unique() if "n_generated" in out else []
    if len(sizes) > 1:
        notes.append(
            f"Sample sizes differ across rows ({', '.join(str(int(s)) for s in sizes)}): "
            "FID@N values of rows with different N are not comparable."
        )
    if g:
        notes.append(
            "Generation settings: "
            + "; ".join(f"{k} {_text(v)}" for k, v in sorted(g.items()))
            + "."
        )
    if any(c in out for c in SET_METRICS):
        notes.append(SEED_INTERVAL_NOTE)
    return notes
