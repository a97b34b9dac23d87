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

from trellis.core.gc_tuning import tune_gc

min_version("9.0")

# Snakemake's own process (scheduling, and on a cluster each job's start-up on its node) holds
# the whole DAG: the same collector setting as the rule scripts (trellis/core/gc_tuning.py).
tune_gc()


# The demo's config only when no --configfile is given: Snakemake deep-merges a Snakefile's
# configfile with the command line's, so a study run would otherwise inherit every key that only
# the demo sets (an accepted Stage 0 check, the demo's lm-eval tasks). A run sees exactly its own
# config file(s), --config overrides and the schema's defaults.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


validate(config, "config/schema.yaml")


# `snakemake --report report.html`: every output declared with report() under this front page.
report: "report/workflow.rst"


# The Snakefile imports a few names from the library (task definitions). Jobs import it through
# scripts/trellis, a link to ../trellis: Snakemake puts each script's directory on sys.path, so
# the library is importable in every job, in its own conda env and on a cluster node alike.
sys.path.insert(0, workflow.basedir)


include: "rules/scheduler.smk"
include: "rules/common.smk"
include: "rules/acquire.smk"
include: "rules/labels.smk"
include: "rules/classifiers.smk"
include: "rules/curate.smk"
include: "rules/tokens.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"


# Jobs that need the internet run where snakemake runs, not on compute nodes (slurm.partitions).
if INTERNET_JOBS_RUN_LOCALLY:
    workflow.localrules(*INTERNET_RULES)


rule all:
    default_target: True
    input:
        get_headline_outputs(),
