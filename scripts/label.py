"""Rule script: label the domain's sample for one task; write labels parquet and a JSON report."""

import time

from trellis.io import write_json
from trellis.labels import label_task, make_labeler
from trellis.logs import setup_logging
from trellis.tasks import build_tasks

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
start = time.monotonic()
sample = snakemake.input.get("sample", snakemake.input[0])  # noqa: F821
labels_config = dict(snakemake.params.labels)  # noqa: F821
task_name = snakemake.params.task  # noqa: F821
out = snakemake.output.get("labels", snakemake.output[0])  # noqa: F821
report_path = snakemake.output.report  # noqa: F821

tasks = build_tasks({"labels": labels_config})
if task_name not in tasks:
    raise ValueError(f"params.task {task_name!r} is not a known task; known: {sorted(tasks)}")
task = tasks[task_name]
labeler = make_labeler(labels_config)
log.info("labeling %s (%s) from %s with backend=%s model=%s prompt_version=%s",
         task.name, task.kind, sample, labeler.backend, labeler.model, labeler.prompt_version)
report = label_task(task, sample, out, labeler)
write_json(report_path, report)
log.info("read %d rows, labeled %d, invalid %d (%s)", report["n_in"], report["n_labeled"],
         report["invalid"], report["invalid_reasons"] or "none")
log.info("label distribution: %s", report["distribution"])
log.info("wrote %s and %s in %.1fs", out, report_path, time.monotonic() - start)
