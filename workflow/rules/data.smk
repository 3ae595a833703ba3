rule prepare_data:
    output:
        train=f"{DATA}/train.npy",
        val=f"{DATA}/val.npy",
        test=f"{DATA}/test.npy",
        manifest=f"{DATA}/manifest.json",
    log:
        f"{STUDY}/logs/prepare_data.log",
    benchmark:
        f"{STUDY}/benchmarks/prepare_data.tsv"
    conda:
        "../../envs/vaebench.yaml"
    threads: 2
    params:
        dataset=vb.data_params(config),
    script:
        "../scripts/prepare_data.py"
