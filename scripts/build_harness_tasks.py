"""Rule build_harness_tasks: the demo's lm-eval task YAMLs and their local data."""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import time

from trellis.core.io import atomic_directory
from trellis.core.logs import setup_logging
from trellis.evaluate.harness import write_demo_tasks

log = setup_logging(snakemake.log[0])
start = time.monotonic()
p = snakemake.params
out = snakemake.output[0]
log.info("build_harness_tasks: %d documents per task, seed %s, %d topics", p.docs, p.seed, len(p.topics))
with atomic_directory(out) as tmp:
    tasks = write_demo_tasks(tmp, list(p.topics), int(p.seed), int(p.docs), final_dir=out)
log.info("wrote %s: tasks %s in %.1fs", out, tasks, time.monotonic() - start)
