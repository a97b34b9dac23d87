"""Rule subject_check: the subject filter's precision and recall against the topic labels."""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import csv
import time

from trellis.core.io import atomic_path, iter_rows, read_json, write_json
from trellis.core.logs import setup_logging
from trellis.curate.subject_check import TABLE_COLUMNS, measure, table_rows

log = setup_logging(snakemake.log[0])
start = time.monotonic()
source = snakemake.params.source
sample = list(iter_rows(snakemake.input.sample))
labels = {row["id"]: row["label"] for row in iter_rows(snakemake.input.labels)}
report = measure(
    source, sample, labels, snakemake.params.subject_filter, read_json(snakemake.input.label_report)
)
write_json(snakemake.output.json, report)
with atomic_path(snakemake.output.csv) as tmp, open(tmp, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=TABLE_COLUMNS)
    writer.writeheader()
    writer.writerows(table_rows(report))

overall = report["overall"]
log.info(
    "%s subject filter on %d labeled sample documents (%d without a label): keeps %d, %d on subject "
    "by the labels; precision %s, recall %s",
    source,
    report["labeled_docs"],
    report["unlabeled_docs"],
    overall["kept"],
    overall["on_subject"],
    overall["precision"]["value"],
    overall["recall"]["value"],
)
for name, scores in report["subjects"].items():
    log.info("  %s: precision %s, recall %s", name, scores["precision"]["value"], scores["recall"]["value"])
log.info("wrote %s and %s in %.1fs", snakemake.output.json, snakemake.output.csv, time.monotonic() - start)
