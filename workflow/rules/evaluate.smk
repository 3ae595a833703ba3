localrules:
    stage_weights,


rule stage_weights:
    # The only job that may use the network: run it on the login node (a local rule).
    output:
        report=f"{WEIGHTS}/staged.json",
    log:
        "results/logs/stage_weights.log",
    conda:
        "../../envs/vaebench.yaml"
    params:
        allow_random=config["weights"]["allow_random"],
    script:
        "../scripts/stage_weights.py"


rule test_features:
    input:
        test=f"{DATA}/test.npy",
        weights=f"{WEIGHTS}/staged.json",
    output:
        "results/metrics/test_features.npy",
    log:
        "results/logs/test_features.log",
    benchmark:
        "results/benchmarks/test_features.tsv"
    conda:
        "../../envs/vaebench.yaml"
    threads: 2
    resources:
        runtime=test_features_runtime,
        mem_mb=eval_mem_mb,
    params:
        batch_size=config["metrics"]["batch_size"],
    script:
        "../scripts/test_features.py"


rule recon_metrics:
    input:
        test=f"{DATA}/test.npy",
        recon="results/runs/{run}/recon.npy",
        kl="results/runs/{run}/kl.npy",
        weights=f"{WEIGHTS}/staged.json",
    output:
        "results/metrics/{run}/reconstruction.parquet",
    log:
        "results/logs/recon_metrics/{run}.log",
    benchmark:
        "results/benchmarks/recon_metrics/{run}.tsv"
    conda:
        "../../envs/vaebench.yaml"
    threads: 1
    resources:
        runtime=recon_metrics_runtime,
        mem_mb=eval_mem_mb,
    params:
        info=run_info,
        metrics=recon_metric_params,
    script:
        "../scripts/recon_metrics.py"


rule generation_metrics:
    input:
        model="results/runs/{run}/model",
        samples="results/runs/{run}/samples_{sampler}.npy",
        test_features="results/metrics/test_features.npy",
        weights=f"{WEIGHTS}/staged.json",
    output:
        set_level="results/metrics/{run}/generation_{sampler}.parquet",
        roundtrip="results/metrics/{run}/roundtrip_{sampler}.parquet",
    log:
        "results/logs/generation_metrics/{run}/{sampler}.log",
    benchmark:
        "results/benchmarks/generation_metrics/{run}/{sampler}.tsv"
    conda:
        "../../envs/vaebench.yaml"
    threads: 1
    resources:
        runtime=generation_metrics_runtime,
        mem_mb=eval_mem_mb,
    params:
        info=run_info,
        metrics=generation_metric_params,
    script:
        "../scripts/generation_metrics.py"
