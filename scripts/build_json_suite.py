"""Rule build_json_suite: the locked JSON Schema compliance suite (JSONL + sha256 sidecar)."""

import time

from trellis.benchmarks.json_schema import sidecar_path, write_suite
from trellis.logs import setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
start = time.monotonic()
p = snakemake.params  # noqa: F821
out = snakemake.output[0]  # noqa: F821
log.info("build_json_suite: n=%s seed=%s from the eval schema pool", p.n, p.seed)
digest = write_suite(out, int(p.n), int(p.seed))
log.info("wrote %s (sha256 %s) and %s in %.1fs", out, digest, sidecar_path(out), time.monotonic() - start)
