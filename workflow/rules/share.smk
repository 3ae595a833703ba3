# Tracking and sharing: experiment trackers (W&B, MLflow) and Hugging Face Hub folders.
# All three read finished artifacts only; their settings (config keys tracking, publish)
# reach no other job, so turning them on reruns nothing else. They are local rules: they
# are light, and online trackers and the Hub need the network, which a cluster's login
# node has and its compute nodes often do not.
localrules:
    track,
    track_study,
    publish,


rule track:
    input:
        unpack(lambda w: vb.track_inputs(config, run_of(w))),
    output:
        f"{STUDY}/tracking/{{run}}.json",
    log:
        f"{STUDY}/logs/track/{{run}}.log",
    benchmark:
        f"{STUDY}/benchmarks/track/{{run}}.tsv"
    conda:
        "../../envs/vaebench.yaml"
    params:
        info=run_info,
        trackers=vb.tracking_params(config),
        samplers=lambda w: vb.samplers(config, run_of(w)),
    script:
        "../scripts/track.py"


rule track_study:
    input:
        tables=TABLES,
        figures=[f for f in FIGURES if f.endswith(".png")],
    output:
        f"{STUDY}/tracking/study.json",
    log:
        f"{STUDY}/logs/track/study.log",
    benchmark:
        f"{STUDY}/benchmarks/track/study.tsv"
    conda:
        "../../envs/vaebench.yaml"
    params:
        trackers=vb.tracking_params(config),
    script:
        "../scripts/track_study.py"


rule publish:
    input:
        unpack(lambda w: vb.publish_inputs(config, run_of(w))),
    output:
        directory(f"{STUDY}/publish/{{run}}"),
    log:
        f"{STUDY}/logs/publish/{{run}}.log",
    benchmark:
        f"{STUDY}/benchmarks/publish/{{run}}.tsv"
    conda:
        "../../envs/vaebench.yaml"
    params:
        cfg=lambda w: vb.publish_params(config, run_of(w)),
    script:
        "../scripts/publish.py"
