rule train:
    input:
        train=f"{DATA}/train.npy",
        val=f"{DATA}/val.npy",
    output:
        model=directory("results/runs/{run}/model"),
        history="results/runs/{run}/history.parquet",
    log:
        "results/logs/train/{run}.log",
    benchmark:
        "results/benchmarks/train/{run}.tsv"
    conda:
        "../../envs/vaebench.yaml"
    threads: 2
    resources:
        gpu=1,
        runtime=train_runtime,
        mem_mb=train_mem_mb,
    params:
        cfg=train_params,
        checkpoint="results/runs/{run}/checkpoint.pt",
        diverged=divergence_marker,
    script:
        "../scripts/train.py"


rule reconstruct:
    input:
        model="results/runs/{run}/model",
        test=f"{DATA}/test.npy",
    output:
        recon="results/runs/{run}/recon.npy",
        kl="results/runs/{run}/kl.npy",
        grid="results/runs/{run}/recon_grid.png",
        meta="results/runs/{run}/recon.json",
    log:
        "results/logs/reconstruct/{run}.log",
    benchmark:
        "results/benchmarks/reconstruct/{run}.tsv"
    conda:
        "../../envs/vaebench.yaml"
    threads: 1
    resources:
        runtime=reconstruct_runtime,
        mem_mb=eval_mem_mb,
    script:
        "../scripts/reconstruct.py"


rule sample:
    input:
        model="results/runs/{run}/model",
        train=f"{DATA}/train.npy",
        val=f"{DATA}/val.npy",
    output:
        samples="results/runs/{run}/samples_{sampler}.npy",
        grid="results/runs/{run}/samples_{sampler}.png",
        meta="results/runs/{run}/samples_{sampler}.json",
    log:
        "results/logs/sample/{run}/{sampler}.log",
    benchmark:
        "results/benchmarks/sample/{run}/{sampler}.tsv"
    conda:
        "../../envs/vaebench.yaml"
    threads: 1
    resources:
        runtime=sample_runtime,
        mem_mb=sample_mem_mb,
    params:
        cfg=sampler_params,
    script:
        "../scripts/sample.py"
