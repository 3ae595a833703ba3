from vaebench import jobs

jobs.run(
    snakemake,
    jobs.sample,
    model=snakemake.input.model,
    params=snakemake.params.cfg,
    train=snakemake.input.train,
    val=snakemake.input.val,
    samples=snakemake.output.samples,
    grid=snakemake.output.grid,
    meta=snakemake.output.meta,
)
