# Trellis: the curated-pretraining study as one Snakemake DAG.
#
#   snakemake --cores 2                                  # the embedded demo (config/config.yaml)
#   snakemake --cores all --configfile config/study.yaml # the 20B study
#   snakemake --profile profiles/slurm --configfile config/study.yaml
#
# The layout and the DAG are described in README.md; every rule's work is done by the trellis/
# library through a thin script in scripts/.

import sys

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "config/schema.yaml")


# `snakemake --report report.html`: every output declared with report() under this front page.
report: "report/workflow.rst"


# The Snakefile imports a few names from the library (task definitions). Jobs import it through
# scripts/trellis, a link to ../trellis: Snakemake puts each script's directory on sys.path, so
# the library is importable in every job, in its own conda env and on a cluster node alike.
sys.path.insert(0, workflow.basedir)


include: "rules/common.smk"
include: "rules/acquire.smk"
include: "rules/labels.smk"
include: "rules/classifiers.smk"
include: "rules/curate.smk"
include: "rules/tokens.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        get_headline_outputs(),
