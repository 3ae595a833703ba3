from vaebench import jobs

jobs.run(
    snakemake,
    jobs.reconstruct,
    model=snakemake.input.model,
    test=snakemake.input.test,
    recon=snakemake.output.recon,
    terms=snakemake.output.terms,
    elbo_samples=snakemake.params.elbo_samples,
    grid=snakemake.output.grid,
    meta=snakemake.output.meta,
)
