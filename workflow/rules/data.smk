rule prepare_data:
    output:
        train=f"{DATA}/train.npy",
        val=f"{DATA}/val.npy",
        test=f"{DATA}/test.npy",
        manifest=f"{DATA}/manifest.json",
    params:
        dataset=config["dataset"],
    threads: 2
    log:
        "results/logs/prepare_data.log",
    benchmark:
        "results/benchmarks/prepare_data.tsv"
    script:
        "../scripts/prepare_data.py"
