from vaebench import jobs

jobs.run(
    snakemake,
    jobs.import_samples,
    params=snakemake.params.entry,
    files=list(snakemake.input.files),
    image_size=snakemake.params.image_size,
    out=snakemake.output[0],
)
