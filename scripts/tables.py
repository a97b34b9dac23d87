"""Rule tables: the headline table (CSV + Markdown), built only from the result JSONs."""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import time

from trellis.core.logs import setup_logging
from trellis.report.tables import write_tables

log = setup_logging(snakemake.log[0])
start = time.monotonic()
results = list(snakemake.input.results)
out, control = snakemake.output, snakemake.params.control_arm
log.info("tables: %d result files %s; control arm %s", len(results), results, control)
# The workflow's table compares against the control arm: one without results is an error.
df = write_tables(results, out.csv, out.md, control, require_control=True)
log.info(
    "wrote %s and %s: %d result rows, %d delta rows in %.1fs",
    out.csv,
    out.md,
    int((df["kind"] == "result").sum()),
    int((df["kind"] == "delta").sum()),
    time.monotonic() - start,
)
