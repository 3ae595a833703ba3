from vaebench import jobs

jobs.run(
    snakemake,
    jobs.stage_space_weights,
    space=snakemake.wildcards.space,
    cache=snakemake.params.cache,
    allow_random=snakemake.params.allow_random,
    report=snakemake.output.report,
)
