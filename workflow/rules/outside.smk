# Models and samples vaebench did not train (config key `evaluate`, vaebench.outside): each
# model entry is imported as the run <name>/evaluated and then goes through the jobs of
# evaluate.smk like a trained run; a samples entry gets the set-level metrics only.
localrules:
    fetch_model,


# The only rule that reaches the Hub (on the login node under SLURM): a checkpoint, since
# the family of what it fetches decides which samplers the entry gets.
checkpoint fetch_model:
    output:
        files=directory(f"{STUDY}/evaluate/{{name}}/files"),
        record=f"{STUDY}/evaluate/{{name}}/fetched.json",
    log:
        f"{STUDY}/logs/fetch_model/{{name}}.log",
    conda:
        "../../envs/vaebench.yaml"
    params:
        entry=lambda w: vb.fetch_params(config, EVALUATED_BY_NAME[w.name]),
    script:
        "../scripts/fetch_model.py"


rule import_model:
    input:
        unpack(import_inputs),
    output:
        directory(f"{STUDY}/runs/{{run}}/model"),
    log:
        f"{STUDY}/logs/import_model/{{run}}.log",
    wildcard_constraints:
        run=vb.EVALUATED_PATTERN,
    conda:
        "../../envs/vaebench.yaml"
    params:
        entry=import_params,
    script:
        "../scripts/import_model.py"


rule import_samples:
    input:
        files=lambda w: vb.outside.source_files(run_of(w), STUDY),
    output:
        f"{STUDY}/runs/{{run}}/samples_{vb.outside.SUPPLIED}.npy",
    log:
        f"{STUDY}/logs/import_samples/{{run}}.log",
    wildcard_constraints:
        run=vb.EVALUATED_PATTERN,
    conda:
        "../../envs/vaebench.yaml"
    params:
        entry=import_params,
        image_size=config["dataset"]["image_size"],
    script:
        "../scripts/import_samples.py"


rule supplied_metrics:
    input:
        samples=f"{STUDY}/runs/{{run}}/samples_{vb.outside.SUPPLIED}.npy",
        reference_features=f"{STUDY}/metrics/reference_features.npy",
        weights=f"{STUDY}/weights/staged.json",
    output:
        f"{STUDY}/metrics/{{run}}/generation_{vb.outside.SUPPLIED}.parquet",
    log:
        f"{STUDY}/logs/supplied_metrics/{{run}}.log",
    benchmark:
        f"{STUDY}/benchmarks/supplied_metrics/{{run}}.tsv"
    wildcard_constraints:
        run=vb.EVALUATED_PATTERN,
    conda:
        "../../envs/vaebench.yaml"
    threads: config["compute"]["eval_threads"]
    resources:
        gpu=GPUS,
        runtime=generation_metrics_runtime,
        mem_mb=eval_mem_mb,
    params:
        info=run_info,
        metrics=generation_metric_params,
        weights_cache=WEIGHTS,
    script:
        "../scripts/supplied_metrics.py"
