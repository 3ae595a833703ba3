from vaebench import jobs

jobs.run(
    snakemake,
    jobs.reconstruct,
    model=snakemake.input.model,
    test=snakemake.input.test,
    recon=snakemake.output.recon,
    kl=snakemake.output.kl,
    grid=snakemake.output.grid,
    meta=snakemake.output.meta,
)
