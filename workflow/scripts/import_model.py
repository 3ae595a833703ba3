from vaebench import jobs

jobs.run(
    snakemake,
    jobs.import_model,
    params=snakemake.params.entry,
    files=list(snakemake.input.files),
    out=snakemake.output[0],
    fetch_record=snakemake.input.get("record"),
)
