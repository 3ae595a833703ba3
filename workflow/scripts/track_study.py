from vaebench import jobs, tracking

jobs.run(
    snakemake,
    tracking.track_study,
    trackers=snakemake.params.trackers,
    tables=list(snakemake.input.tables),
    figures=list(snakemake.input.figures),
    out=snakemake.output[0],
)
