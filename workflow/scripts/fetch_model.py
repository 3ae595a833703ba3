from vaebench import jobs

jobs.run(
    snakemake,
    jobs.fetch_model,
    params=snakemake.params.entry,
    out=snakemake.output.files,
    record=snakemake.output.record,
)
