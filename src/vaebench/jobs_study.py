"""The study-level jobs: the tables and the figures, from every run's metric files, and the
table of published numbers next to the study's (`compare`).

Called through vaebench.jobs (`jobs.tables`, `jobs.figures`, `jobs.compare`), which wraps
every job alike.
"""

from __future__ import annotations

from pathlib import Path

from vaebench import io


def tables(
    recon: list[str],
    generation: list[str],
    roundtrip: list[str],
    n_boot: int,
    out_dir: str,
    spaces: list[str] = (),
    diverged: list[dict] = (),
    comparison_pairs: str = "default",
    evaluated: list[dict] = (),
    threads: int = 1,
) -> None:
    """The study's tables: reconstruction, generation, metric agreement, paired comparisons,
    and the findings they support in sentences (findings.md, findings.html).

    `diverged`: records of runs whose training diverged (vaebench.config.diverged_runs); their
    rows say 'diverged' instead of numbers. `n_boot`: resamples of the agreement table's τ
    intervals (the other tables' intervals and tests use Student t, stats.crossed_*).
    `evaluated`: the `evaluate:` entries' records (vaebench.config.evaluated_records): their
    rows are marked in a footnote, and their blank cells say why. `spaces`: the metric files
    of the feature spaces beyond Inception (the feature_spaces table).
    """
    import pandas as pd

    from vaebench import agreement, findings, names, space_tables
    from vaebench import tables as tb

    names.EVALUATED.update({e["name"]: e["family_key"] for e in evaluated})

    out = Path(out_dir)
    per_image, info = tb.load_metrics(recon)
    set_level, ginfo = tb.load_metrics(generation)
    rt, rinfo = tb.load_metrics(roundtrip)
    space_level, sinfo = tb.load_metrics(spaces) if spaces else (None, {"weights_official": True})
    per_image = tb.with_diverged(per_image, diverged)
    set_level = tb.with_diverged(set_level, diverged, per_sampler=True)
    rt = tb.with_diverged(rt, diverged, per_sampler=True)
    official = info["weights_official"] and ginfo["weights_official"] and rinfo["weights_official"]
    common = dict(
        footnotes=_evaluated_notes(evaluated),
        weights_official=official,
        settings=info["settings"],
        metadata=io.provenance(
            {"n_boot": n_boot, "comparison_pairs": comparison_pairs}
        ),  # fmt: skip
    )
    recon_table = tb.reconstruction_table(per_image)
    tb.write_table(
        recon_table,
        out / "reconstruction",
        title="Reconstruction of held-out test images",
        **common,
    )
    tb.write_table(
        tb.generation_table(set_level, rt),
        out / "generation",
        title="Generation: FID/KID/precision/recall, and sample round-trip",
        **common,
    )
    tb.write_table(
        space_tables.feature_space_table(set_level, space_level),
        out / "feature_spaces",
        title="Generation metrics on each feature space (Inception-v3, DINOv2, CLIP)",
        **{**common, "weights_official": ginfo["weights_official"] and sinfo["weights_official"]},
    )
    tau = agreement.metric_agreement(per_image, n_boot=n_boot)
    by_space = space_tables.space_agreement(set_level, space_level, n_boot=n_boot)
    if len(by_space):  # two feature spaces or more: do they rank the samples alike?
        notes = tau.attrs["footnotes"] + by_space.attrs["footnotes"]
        tau = pd.concat([tau, by_space], ignore_index=True)
        tau.attrs["footnotes"] = notes
    tb.write_table(
        tau,
        out / "metric_agreement",
        title="Do the metrics agree? Kendall τ between metric rankings",
        **common,
    )
    comparisons = agreement.paired_comparisons(
        per_image, pairs=comparison_pairs, weights_official=official
    )
    tb.write_table(
        comparisons,
        out / "paired_comparisons",
        title="Paired comparisons between rows (t over seeds and images, Holm-corrected)",
        **common,
    )
    text = findings.findings(recon_table, comparisons, tau, official)
    with io.atomic_path(out / "findings.md") as tmp:
        tmp.write_text(text, encoding="utf-8")
    with io.atomic_path(out / "findings.html") as tmp:
        tmp.write_text(findings.to_html(text), encoding="utf-8")


def _evaluated_notes(evaluated: list[dict]) -> list[str]:
    """The footnote that marks rows of models and samples vaebench did not train."""
    if not evaluated:
        return []
    parts = []
    for e in evaluated:
        what = f"{e['what']} {e['source']}"
        if e["family_key"] is not None:
            what += f", {e['family']}"
        if e.get("n_used") is not None and e["n_used"] < e["n_samples"]:
            what += (f"; {e['n_used']} images, fewer than sampling.n_samples = "
                     f"{e['n_samples']}: its set metrics are at N = {e['n_used']}")  # fmt: skip
        parts.append(f"{e['name']} ({what})")
    return ["Evaluated here, not trained here (config key evaluate): " + "; ".join(parts) + "."]


def figures(
    test: str,
    recons: list[list[str]],
    samples: list[list],
    histories: list[list[str]],
    recon_table: str,
    agreement_table: str,
    out_dir: str,
    threads: int = 1,
) -> None:
    """The study's figures; `recons`, `histories` are [row label / run id, file] pairs in row
    order and `samples` is [sampler, [[label, file], ...]] (vaebench.config.figure_files)."""
    import pandas as pd

    from vaebench import figures as fg

    out = Path(out_dir)
    table = pd.read_parquet(recon_table)
    official = bool(table["weights_official"].all())
    tau = pd.read_parquet(agreement_table)
    fg.reconstruction_grid(
        io.load_npy(test),
        {k: io.load_npy(v) for k, v in recons},
        out / "reconstruction_grid",
        weights_official=official,
    )
    for sampler, files in samples:
        fg.sample_grid(
            {k: io.load_npy(v) for k, v in files},
            out / f"samples_{sampler}",
            weights_official=official,
        )
    fg.metric_vs_beta(table, out / "metric_vs_beta", weights_official=official)
    fg.rate_distortion(table, out / "rate_distortion", weights_official=official)
    fg.learning_curves(
        {k: pd.read_parquet(v) for k, v in histories},
        out / "learning_curves",
        weights_official=official,
    )
    fg.agreement_heatmap(tau, out / "agreement_heatmap", weights_official=official)


def compare(
    recon_table: str, generation_table: str, published: str, label: str, out_dir: str,
    threads: int = 1,
) -> None:  # fmt: skip
    """tables/compared.*: published values (config compare_to) next to the study's own."""
    import pandas as pd

    from vaebench import comparison
    from vaebench import tables as tb

    recon, generation = pd.read_parquet(recon_table), pd.read_parquet(generation_table)
    pub = comparison.read_published(published)
    official = recon["weights_official"].all() and generation["weights_official"].all()
    tb.write_table(
        comparison.comparison_table(recon, generation, pub, label),
        Path(out_dir) / "compared",
        title=f"This study next to {label}",
        weights_official=bool(official),
        metadata=io.provenance({"compare_to": {"file": published, "label": label}}),
    )
