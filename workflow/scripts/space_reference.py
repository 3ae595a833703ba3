from vaebench import jobs

jobs.run(
    snakemake,
    jobs.space_reference,
    space=snakemake.wildcards.space,
    reference=snakemake.input.reference,
    weights_cache=snakemake.params.weights_cache,
    out=snakemake.output[0],
    batch_size=snakemake.params.batch_size,
)
