from vaebench import jobs

jobs.run(
    snakemake,
    jobs.train,
    params=snakemake.params.cfg,
    train=snakemake.input.train,
    val=snakemake.input.val,
    model=snakemake.output.model,
    history=snakemake.output.history,
    checkpoint=snakemake.params.checkpoint,
    diverged=snakemake.params.diverged,
)
