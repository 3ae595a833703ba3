rule train:
    input:
        train=f"{DATA}/train.npy",
        val=f"{DATA}/val.npy",
    output:
        model=directory("results/runs/{run}/model"),
        history="results/runs/{run}/history.parquet",
    params:
        cfg=train_params,
        checkpoint="results/runs/{run}/checkpoint.pt",
    threads: 2
    resources:
        gpu=1,
    log:
        "results/logs/train/{run}.log",
    benchmark:
        "results/benchmarks/train/{run}.tsv"
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
    threads: 1
    log:
        "results/logs/reconstruct/{run}.log",
    benchmark:
        "results/benchmarks/reconstruct/{run}.tsv"
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
    params:
        cfg=sampler_params,
    threads: 1
    log:
        "results/logs/sample/{run}/{sampler}.log",
    benchmark:
        "results/benchmarks/sample/{run}/{sampler}.tsv"
    script:
        "../scripts/sample.py"
