from pathlib import Path

from vaebench import jobs

jobs.run(
    snakemake,
    jobs.tables,
    recon=list(snakemake.input.recon),
    generation=list(snakemake.input.generation),
    roundtrip=list(snakemake.input.roundtrip),
    spaces=list(snakemake.input.spaces),
    n_boot=snakemake.params.n_boot,
    comparison_pairs=snakemake.params.comparison_pairs,
    diverged=snakemake.params.diverged,
    evaluated=snakemake.params.evaluated,
    out_dir=str(Path(snakemake.output[0]).parent),
)
