"""Rule script: score one raw part with the source's classifiers (id + scores, no text)."""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import json
import time

from trellis.classifiers.score import score_part
from trellis.core.logs import setup_logging
from trellis.core.tasks import build_tasks

log = setup_logging(snakemake.log[0])
start = time.monotonic()
part = snakemake.input.part
task_names = list(snakemake.params.tasks)
model_dirs = list(snakemake.input.classifiers)
out = snakemake.output[0]
if len(model_dirs) != len(task_names):
    raise ValueError(
        f"input.classifiers has {len(model_dirs)} entries but params.tasks names "
        f"{len(task_names)} ({task_names}); they must pair up in order"
    )

tasks = build_tasks({"labels": dict(snakemake.params.labels)})
log.info("scoring %s with %s", part, dict(zip(task_names, model_dirs)))
stats = score_part(
    part,
    dict(zip(task_names, model_dirs)),
    out,
    batch_size=int(snakemake.params.batch_size),
    max_length=int(snakemake.params.max_length),
    tasks=tasks,
    threads=snakemake.threads,
    skip_below_compression_ratio=snakemake.params.get("skip_below_compression_ratio"),
)
log.info(
    "scored %d documents on %s (%.1f docs/s); %d skipped by the compression pre-filter",
    stats["scored"],
    stats["device"],
    stats["docs_per_second"] or 0,
    stats["prefiltered_compression_ratio"],
)
log.info("score summary: %s", json.dumps(stats["summary"]))
log.info("wrote %s in %.1fs", out, time.monotonic() - start)
