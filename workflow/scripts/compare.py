from pathlib import Path

from vaebench import jobs

jobs.run(
    snakemake,
    jobs.compare,
    recon_table=snakemake.input.recon_table,
    generation_table=snakemake.input.generation_table,
    published=snakemake.input.published,
    label=snakemake.params.label,
    out_dir=str(Path(snakemake.output[0]).parent),
)
