from vaebench import jobs

jobs.run(
    snakemake,
    jobs.stage_weights,
    cache=snakemake.params.cache,
    allow_random=snakemake.params.allow_random,
    report=snakemake.output.report,
    dists=snakemake.params.dists,
)
