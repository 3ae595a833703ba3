from vaebench import jobs

jobs.run(
    snakemake,
    jobs.generation_metrics,
    info=snakemake.params.info,
    sampler=snakemake.wildcards.sampler,
    mcfg=snakemake.params.metrics,
    model=snakemake.input.model,
    samples=snakemake.input.samples,
    reference_features=snakemake.input.reference_features,
    weights_cache=snakemake.params.weights_cache,
    out_set=snakemake.output.set_level,
    out_roundtrip=snakemake.output.roundtrip,
)
