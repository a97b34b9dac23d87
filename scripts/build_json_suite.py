"""Rule build_json_suite: the configured stratified subset of the locked JSON Schema suite."""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import time

from trellis.core.logs import setup_logging
from trellis.evaluate.json_schema import sidecar_path, write_subset

log = setup_logging(snakemake.log[0])
start = time.monotonic()
inp, p = snakemake.input, snakemake.params
out = snakemake.output.suite
log.info("build_json_suite: %s examples from the locked suite %s", p.n, inp.locked)
digest, n = write_subset(inp.locked, out, int(p.n))
log.info(
    "wrote %s (%d examples, sha256 %s) and %s in %.1fs",
    out,
    n,
    digest,
    sidecar_path(out),
    time.monotonic() - start,
)
