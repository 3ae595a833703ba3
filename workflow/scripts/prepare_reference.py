from vaebench import jobs

jobs.run(
    snakemake,
    jobs.prepare_reference,
    dataset=snakemake.params.dataset,
    out_dir=str(snakemake.output.manifest).rsplit("/", 1)[0],
)
