# vaebench: VAE, β-VAE sweep, VQ-VAE and VAE-GAN compared with perceptual metrics.
#   snakemake --cores 4 --resources gpu=1                    the study (config.yaml)
#   snakemake --cores 2 --resources gpu=1 --configfile workflow/configs/demo.yaml
# One config file is one whole study: --configfile X runs X plus the schema's defaults, never
# X merged over config.yaml, which is read only when no --configfile is given.
from snakemake.utils import min_version

min_version("9.0")


if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/spaces.smk"
include: "workflow/rules/outside.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/share.smk"


rule all:
    default_target: True
    input:
        lambda w: all_outputs(),


onsuccess:
    print(*terminal.summary(config, workflow.configfiles), sep="\n", file=sys.stderr)
