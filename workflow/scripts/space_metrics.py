from vaebench import jobs

jobs.run(
    snakemake,
    jobs.space_metrics,
    info=snakemake.params.info,
    sampler=snakemake.wildcards.sampler,
    space=snakemake.wildcards.space,
    mcfg=snakemake.params.metrics,
    samples=snakemake.input.samples,
    reference_features=snakemake.input.reference_features,
    weights_cache=snakemake.params.weights_cache,
    out=snakemake.output[0],
)
