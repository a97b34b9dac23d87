"""Rule stage0: the classifiers on a sample of the source; a failing check stops curation (the gate)."""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import time

from trellis.core.logs import setup_logging
from trellis.core.tasks import build_tasks
from trellis.curate.stage0 import Stage0GateError, run_stage0

log = setup_logging(snakemake.log[0])
start = time.monotonic()
inp, out, p = snakemake.input, snakemake.output, snakemake.params
all_tasks = build_tasks({"labels": dict(p.labels)})
tasks = {name: all_tasks[name] for name in p.tasks}
log.info(
    "Stage 0 %s: %s documents sampled from %d parts; classifiers %s",
    p.source,
    p.settings["sample_docs"],
    len(inp.parts),
    dict(zip(p.tasks, inp.classifiers)),
)
try:
    report = run_stage0(
        p.source,
        list(inp.parts),
        dict(zip(p.tasks, inp.classifiers)),
        tasks,
        dict(p.settings),
        out.report,
        out.plot,
        seed=int(p.seed),
        batch_size=int(p.batch_size),
        max_length=int(p.max_length),
        skip_below_compression_ratio=p.skip_below_compression_ratio,
        threads=snakemake.threads,
        thresholds=dict(p.thresholds),
    )
except Stage0GateError as err:
    log.error("%s", err)
    raise
for c in report["checks"]:
    if not c["passed"]:
        log.warning("check %s failed but is accepted: %s", c["check"], c.get("accepted"))
for name, values in report["thresholds"].items():
    log.info("%s thresholds (%s): %s", name, report["threshold_source"][name], values)
log.info(
    "Stage 0 %s passed: %d checks (%d accepted) on %d documents; wrote %s and %s in %.1fs",
    p.source,
    report["checks_run"],
    len(report["accepted"]),
    report["sample"]["documents"],
    out.report,
    out.plot,
    time.monotonic() - start,
)
