from vaebench import jobs

jobs.run(
    snakemake,
    jobs.test_features,
    test=snakemake.input.test,
    weights_cache=snakemake.params.weights_cache,
    out=snakemake.output[0],
    batch_size=snakemake.params.batch_size,
)
