localrules:
    tables,
    figures,
    compare,


rule tables:
    input:
        recon=lambda w: metric_files("reconstruction"),
        generation=lambda w: metric_files("generation"),
        roundtrip=lambda w: metric_files("roundtrip"),
        spaces=lambda w: metric_files("spaces"),
    output:
        **TABLE_OUTPUTS,
    log:
        f"{STUDY}/logs/tables.log",
    benchmark:
        f"{STUDY}/benchmarks/tables.tsv"
    conda:
        "../../envs/vaebench.yaml"
    params:
        n_boot=config["metrics"]["n_boot"],
        comparison_pairs=config["metrics"]["comparison_pairs"],
        diverged=vb.canonical(list(DIVERGED.values())),
        evaluated=lambda w: vb.evaluated_records(config, list(map(resolved, EVALUATED))),
    script:
        "../scripts/tables.py"


rule figures:
    input:
        unpack(figure_inputs),
    output:
        **FIGURE_OUTPUTS,
    log:
        f"{STUDY}/logs/figures.log",
    benchmark:
        f"{STUDY}/benchmarks/figures.tsv"
    conda:
        "../../envs/vaebench.yaml"
    params:
        files=lambda w: figure_files(),
    script:
        "../scripts/figures.py"


rule compare:
    input:
        recon_table=f"{STUDY}/tables/reconstruction.parquet",
        generation_table=f"{STUDY}/tables/generation.parquet",
        published=config["compare_to"]["file"] or [],
    output:
        vb.compare_outputs(config),
    log:
        f"{STUDY}/logs/compare.log",
    benchmark:
        f"{STUDY}/benchmarks/compare.tsv"
    conda:
        "../../envs/vaebench.yaml"
    params:
        label=config["compare_to"]["label"],
    script:
        "../scripts/compare.py"
