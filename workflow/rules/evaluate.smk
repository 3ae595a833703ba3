localrules:
    stage_weights,


rule stage_weights:
    # The only job that may use the network: run it on the login node (a local rule).
    output:
        report=f"{STUDY}/weights/staged.json",
    log:
        f"{STUDY}/logs/stage_weights.log",
    conda:
        "../../envs/vaebench.yaml"
    params:
        cache=WEIGHTS,
        allow_random=config["weights"]["allow_random"],
        # VGG16 (DISTS's trunk and LPIPS-VGG's); the param keeps its first name, so that
        # studies staged before LPIPS-VGG existed stay up to date
        dists=vb.vgg16_needed(config),
    script:
        "../scripts/stage_weights.py"


rule reference_features:
    input:
        reference=f"{DATA}/reference.npy",
        weights=f"{STUDY}/weights/staged.json",
    output:
        f"{STUDY}/metrics/reference_features.npy",
    log:
        f"{STUDY}/logs/reference_features.log",
    benchmark:
        f"{STUDY}/benchmarks/reference_features.tsv"
    # every generation_metrics job waits for it: compute it while trainings run
    priority: 1
    conda:
        "../../envs/vaebench.yaml"
    threads: config["compute"]["eval_threads"]
    resources:
        gpu=GPUS,
        runtime=reference_features_runtime,
        mem_mb=eval_mem_mb,
    params:
        batch_size=config["metrics"]["batch_size"],
        weights_cache=WEIGHTS,
    script:
        "../scripts/reference_features.py"


rule recon_metrics:
    input:
        test=f"{DATA}/test.npy",
        recon=f"{STUDY}/runs/{{run}}/recon.npy",
        terms=f"{STUDY}/runs/{{run}}/elbo_terms.npz",
        recon_meta=f"{STUDY}/runs/{{run}}/recon.json",
        weights=f"{STUDY}/weights/staged.json",
    output:
        f"{STUDY}/metrics/{{run}}/reconstruction.parquet",
    log:
        f"{STUDY}/logs/recon_metrics/{{run}}.log",
    benchmark:
        f"{STUDY}/benchmarks/recon_metrics/{{run}}.tsv"
    conda:
        "../../envs/vaebench.yaml"
    threads: config["compute"]["eval_threads"]
    resources:
        gpu=GPUS,
        runtime=recon_metrics_runtime,
        mem_mb=eval_mem_mb,
    params:
        info=run_info,
        metrics=recon_metric_params,
        weights_cache=WEIGHTS,
    script:
        "../scripts/recon_metrics.py"


rule generation_metrics:
    input:
        model=f"{STUDY}/runs/{{run}}/model",
        samples=f"{STUDY}/runs/{{run}}/samples_{{sampler}}.npy",
        reference_features=f"{STUDY}/metrics/reference_features.npy",
        weights=f"{STUDY}/weights/staged.json",
    output:
        set_level=f"{STUDY}/metrics/{{run}}/generation_{{sampler}}.parquet",
        roundtrip=f"{STUDY}/metrics/{{run}}/roundtrip_{{sampler}}.parquet",
    log:
        f"{STUDY}/logs/generation_metrics/{{run}}/{{sampler}}.log",
    benchmark:
        f"{STUDY}/benchmarks/generation_metrics/{{run}}/{{sampler}}.tsv"
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
        "../scripts/generation_metrics.py"
