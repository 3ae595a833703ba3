from pathlib import Path

from vaebench import jobs

jobs.run(
    snakemake,
    jobs.stage_weights,
    cache=str(Path(snakemake.output.report).parent),
    allow_random=snakemake.params.allow_random,
    report=snakemake.output.report,
)
