rule prepare_data:
    output:
        train=f"{DATA}/train.npy",
        val=f"{DATA}/val.npy",
        test=f"{DATA}/test.npy",
        manifest=f"{DATA}/manifest.json",
    log:
        "results/logs/prepare_data.log",
    benchmark:
        "results/benchmarks/prepare_data.tsv"
    conda:
        "../../envs/vaebench.yaml"
    threads: 2
    params:
        dataset=config["dataset"],
    script:
        "../scripts/prepare_data.py"
