# The set-level metrics on the feature spaces of metrics.feature_spaces beyond Inception
# (vaebench.metrics.spaces): each space stages its own weight file, computes the reference
# set's features once, and scores every sample set, so that adding a space adds jobs and
# reruns none.
localrules:
    stage_space_weights,
    weights,


rule weights:
    # every weight file the config needs: `snakemake --cores 1 weights` on a machine with network
    input:
        f"{STUDY}/weights/staged.json",
        expand(f"{STUDY}/weights/{{space}}.json", space=SPACES),


rule stage_space_weights:
    # like stage_weights, the network may be used here only: a local rule
    output:
        report=f"{STUDY}/weights/{{space}}.json",
    log:
        f"{STUDY}/logs/stage_weights/{{space}}.log",
    wildcard_constraints:
        space=SPACE_PATTERN,
    conda:
        "../../envs/vaebench.yaml"
    params:
        cache=WEIGHTS,
        allow_random=config["weights"]["allow_random"],
    script:
        "../scripts/stage_space_weights.py"


rule space_reference:
    input:
        reference=f"{DATA}/reference.npy",
        weights=f"{STUDY}/weights/{{space}}.json",
    output:
        f"{STUDY}/metrics/reference_features_{{space}}.npy",
    log:
        f"{STUDY}/logs/space_reference/{{space}}.log",
    benchmark:
        f"{STUDY}/benchmarks/space_reference/{{space}}.tsv"
    wildcard_constraints:
        space=SPACE_PATTERN,
    priority: 1
    conda:
        "../../envs/vaebench.yaml"
    threads: config["compute"]["eval_threads"]
    resources:
        gpu=GPUS,
        runtime=space_reference_runtime,
        mem_mb=space_mem_mb,
    params:
        batch_size=config["metrics"]["batch_size"],
        weights_cache=WEIGHTS,
    script:
        "../scripts/space_reference.py"


rule space_metrics:
    input:
        samples=f"{STUDY}/runs/{{run}}/samples_{{sampler}}.npy",
        reference_features=f"{STUDY}/metrics/reference_features_{{space}}.npy",
        weights=f"{STUDY}/weights/{{space}}.json",
    output:
        f"{STUDY}/metrics/{{run}}/{{space}}_{{sampler}}.parquet",
    log:
        f"{STUDY}/logs/space_metrics/{{run}}/{{space}}_{{sampler}}.log",
    benchmark:
        f"{STUDY}/benchmarks/space_metrics/{{run}}/{{space}}_{{sampler}}.tsv"
    wildcard_constraints:
        space=SPACE_PATTERN,
        sampler=SET_SAMPLER_PATTERN,
    conda:
        "../../envs/vaebench.yaml"
    threads: config["compute"]["eval_threads"]
    resources:
        gpu=GPUS,
        runtime=space_metrics_runtime,
        mem_mb=space_mem_mb,
    params:
        info=run_info,
        metrics=space_metric_params,
        weights_cache=WEIGHTS,
    script:
        "../scripts/space_metrics.py"
