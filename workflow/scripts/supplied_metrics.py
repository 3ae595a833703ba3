from vaebench import jobs

jobs.run(
    snakemake,
    jobs.supplied_metrics,
    info=snakemake.params.info,
    mcfg=snakemake.params.metrics,
    samples=snakemake.input.samples,
    reference_features=snakemake.input.reference_features,
    weights_cache=snakemake.params.weights_cache,
    out=snakemake.output[0],
)
