from pathlib import Path

from vaebench import jobs

files = snakemake.params.files
jobs.run(
    snakemake,
    jobs.figures,
    test=files["test"],
    recons=files["recons"],
    samples=files["samples"],
    histories=files["histories"],
    recon_table=files["recon_table"],
    agreement_table=files["agreement_table"],
    out_dir=str(Path(snakemake.output[0]).parent),
)
