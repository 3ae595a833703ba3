from vaebench import jobs, tracking

jobs.run(
    snakemake,
    tracking.track,
    info=snakemake.params.info,
    trackers=snakemake.params.trackers,
    samplers=list(snakemake.params.samplers),
    history=snakemake.input.history,
    reconstruction=snakemake.input.reconstruction,
    generation=list(snakemake.input.generation),
    roundtrip=list(snakemake.input.roundtrip),
    recon_grid=snakemake.input.recon_grid,
    sample_grids=list(snakemake.input.sample_grids),
    out=snakemake.output[0],
)
