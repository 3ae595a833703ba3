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


rule prepare_reference:
    # The generation metrics' reference set (dataset.n_reference) in its own job, so that its
    # size never reruns data preparation or training.
    output:
        reference=f"{DATA}/reference.npy",
        manifest=f"{DATA}/reference.json",
    log:
        f"{STUDY}/logs/prepare_reference.log",
    benchmark:
        f"{STUDY}/benchmarks/prepare_reference.tsv"
    priority: 1
    conda:
        "../../envs/vaebench.yaml"
    threads: 2
    params:
        dataset=vb.reference_params(config),
    script:
        "../scripts/prepare_reference.py"
