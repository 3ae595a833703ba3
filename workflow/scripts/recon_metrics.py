from vaebench import jobs

jobs.run(
    snakemake,
    jobs.recon_metrics,
    info=snakemake.params.info,
    mcfg=snakemake.params.metrics,
    test=snakemake.input.test,
    recon=snakemake.input.recon,
    terms=snakemake.input.terms,
    recon_meta=snakemake.input.recon_meta,
    weights_cache=snakemake.params.weights_cache,
    out=snakemake.output[0],
)
