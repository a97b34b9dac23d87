"""Rule script: label the domain's sample for one task; write labels parquet and a JSON report.

The label-deciding settings arrive as params (so changing them reruns labeling); the operational
ones (polling, concurrency, limits, prices, cost cap, where the API key comes from) are read from
the config, so tuning them does not invalidate finished labels.
"""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import time

from trellis.core.io import write_json
from trellis.core.logs import setup_logging
from trellis.core.tasks import build_tasks
from trellis.labels.label import label_task, make_labeler
from trellis.labels.settings import labels_runtime, merge_labels_config

log = setup_logging(snakemake.log[0])
start = time.monotonic()
sample = snakemake.input.get("sample", snakemake.input[0])
config = getattr(snakemake, "config", None) or {}
labels_config = merge_labels_config(dict(snakemake.params.labels), labels_runtime(config.get("labels", {})))
task_name = snakemake.params.task
work_dir = snakemake.params.get("work_dir")
out = snakemake.output.get("labels", snakemake.output[0])
report_path = snakemake.output.report

tasks = build_tasks({"labels": labels_config})
if task_name not in tasks:
    raise ValueError(f"params.task {task_name!r} is not a known task; known: {sorted(tasks)}")
task = tasks[task_name]
labeler = make_labeler(labels_config)
log.info(
    "labeling %s (%s) from %s with backend=%s model=%s",
    task.name,
    task.kind,
    sample,
    labeler.backend,
    labeler.model,
)
# params.source: the sample's source when it is not the task's own (the subject check's peS2o).
report = label_task(task, sample, out, labeler, work_dir=work_dir, source=snakemake.params.get("source"))
write_json(report_path, report)
log.info("prompt_version=%s prompt_hash=%s", report["prompt_version"], report["prompt_hash"])
log.info(
    "read %d rows, labeled %d, invalid %d (%s)",
    report["n_in"],
    report["n_labeled"],
    report["invalid"],
    report["invalid_reasons"] or "none",
)
if "backend_info" in report:
    log.info(
        "backend: %s; documents retried after an invalid answer: %d",
        report["backend_info"],
        report["retried_docs"],
    )
log.info("label distribution: %s", report["distribution"])
log.info("wrote %s and %s in %.1fs", out, report_path, time.monotonic() - start)
