rule train:
    input:
        train=f"{DATA}/train.npy",
        val=f"{DATA}/val.npy",
    output:
        model=directory(f"{STUDY}/runs/{{run}}/model"),
        history=f"{STUDY}/runs/{{run}}/history.parquet",
    log:
        f"{STUDY}/logs/train/{{run}}.log",
    benchmark:
        f"{STUDY}/benchmarks/train/{{run}}.tsv"
    wildcard_constraints:
        run=vb.TRAINED_PATTERN,
    # the longest jobs start first: on a few cores, evaluating an early run before the
    # other trainings have started leaves a core idle at the end
    priority: 2
    conda:
        "../../envs/vaebench.yaml"
    threads: config["compute"]["train_threads"]
    resources:
        gpu=GPUS,
        runtime=train_runtime,
        mem_mb=train_mem_mb,
    params:
        cfg=train_params,
        checkpoint=f"{STUDY}/runs/{{run}}/checkpoint.pt",
        diverged=divergence_marker,
    script:
        "../scripts/train.py"


rule reconstruct:
    input:
        model=f"{STUDY}/runs/{{run}}/model",
        test=f"{DATA}/test.npy",
    output:
        recon=f"{STUDY}/runs/{{run}}/recon.npy",
        terms=f"{STUDY}/runs/{{run}}/elbo_terms.npz",
        grid=f"{STUDY}/runs/{{run}}/recon_grid.png",
        meta=f"{STUDY}/runs/{{run}}/recon.json",
    log:
        f"{STUDY}/logs/reconstruct/{{run}}.log",
    benchmark:
        f"{STUDY}/benchmarks/reconstruct/{{run}}.tsv"
    # before the metric jobs: each one feeds several of them
    priority: 1
    conda:
        "../../envs/vaebench.yaml"
    threads: config["compute"]["eval_threads"]
    resources:
        gpu=GPUS,
        runtime=reconstruct_runtime,
        mem_mb=eval_mem_mb,
    params:
        elbo_samples=config["metrics"]["elbo_samples"],
    script:
        "../scripts/reconstruct.py"


rule sample:
    input:
        model=f"{STUDY}/runs/{{run}}/model",
        train=f"{DATA}/train.npy",
        val=f"{DATA}/val.npy",
    output:
        samples=f"{STUDY}/runs/{{run}}/samples_{{sampler}}.npy",
        grid=f"{STUDY}/runs/{{run}}/samples_{{sampler}}.png",
        meta=f"{STUDY}/runs/{{run}}/samples_{{sampler}}.json",
    log:
        f"{STUDY}/logs/sample/{{run}}/{{sampler}}.log",
    benchmark:
        f"{STUDY}/benchmarks/sample/{{run}}/{{sampler}}.tsv"
    # before the metric jobs: each one feeds several of them
    priority: 1
    conda:
        "../../envs/vaebench.yaml"
    threads: config["compute"]["eval_threads"]
    resources:
        gpu=GPUS,
        runtime=sample_runtime,
        mem_mb=sample_mem_mb,
    params:
        cfg=sampler_params,
    script:
        "../scripts/sample.py"
