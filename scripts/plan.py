"""Rule plan: the run's plan from the config alone (mix, model size, FLOPs, cost, downloads)."""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import csv
import time

from trellis.core.io import atomic_path
from trellis.core.logs import setup_logging
from trellis.report.plan import write_plan

log = setup_logging(snakemake.log[0])
start = time.monotonic()
out = snakemake.output
plan = write_plan(dict(snakemake.params.config), out.md, out.json)
for path, rows in ((out.mix, plan["mix"]["components"]), (out.compute, plan["compute"])):
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
log.info(
    "wrote %s, %s, %s, %s: %s parameters, %s mix tokens, %.1f GPU-hours, $%.0f, %d downloads in %.1fs",
    out.md,
    out.json,
    out.mix,
    out.compute,
    f"{plan['model']['parameters']:,}",
    f"{plan['mix']['total_tokens']:,}",
    sum(r["gpu_hours"] for r in plan["compute"]),
    sum(r["cost_usd"] for r in plan["compute"]),
    len(plan["downloads"]),
    time.monotonic() - start,
)
