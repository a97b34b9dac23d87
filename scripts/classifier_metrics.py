"""Rule classifier_metrics: every classifier's metrics.json as one table (CSV and Markdown) for the report."""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import csv

from trellis.classifiers.metrics import METRICS_COLUMNS, metrics_rows
from trellis.core.io import atomic_path, read_json
from trellis.core.logs import setup_logging

log = setup_logging(snakemake.log[0])
rows = [row for path in snakemake.input.metrics for row in metrics_rows(read_json(path))]
with atomic_path(snakemake.output.csv) as tmp, open(tmp, "w", newline="") as fh:
    writer = csv.DictWriter(fh, fieldnames=METRICS_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
# The headline (test split) as Markdown: what the seeds report per classifier.
lines = ["| task | metric | test | validation |", "|---|---|---|---|"]
test = {(r["task"], r["metric"]): r["value"] for r in rows if r["split"] == "test" and not r["label"]}
val = {(r["task"], r["metric"]): r["value"] for r in rows if r["split"] == "validation" and not r["label"]}


def fmt(v):
    return "n/a" if v is None else f"{v:.4f}"


for (task, metric), value in test.items():
    other = val.get((task, metric))
    lines.append(f"| {task} | {metric} | {fmt(value)} | {fmt(other)} |")
with atomic_path(snakemake.output.md) as tmp:
    tmp.write_text("\n".join(lines) + "\n")
log.info("wrote %d rows to %s and the headline to %s", len(rows), snakemake.output.csv, snakemake.output.md)
