from vaebench import jobs, publish

jobs.run(
    snakemake,
    publish.publish,
    params=snakemake.params.cfg,
    model=snakemake.input.model,
    history=snakemake.input.history,
    reconstruction=snakemake.input.reconstruction,
    generation=list(snakemake.input.generation),
    recon_grid=snakemake.input.recon_grid,
    sample_grids=list(snakemake.input.sample_grids),
    recon_meta=snakemake.input.recon_meta,
    samples_meta=list(snakemake.input.samples_meta),
    out=snakemake.output[0],
)
