"""Rule select: a source's best deduplicated documents up to its token target, groups rebalanced."""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import json
import time

from trellis.core.io import write_json
from trellis.core.logs import setup_logging
from trellis.curate.select import select_source

log = setup_logging(snakemake.log[0])
start = time.monotonic()
inp, p = snakemake.input, snakemake.params
parts = list(snakemake.output.parts)
log.info("select %s: target %s tokens, target shares %s", p.source, p.target_tokens, dict(p.target_shares))
stats = select_source(list(inp.filtered), list(inp.dedup), parts, p.target_tokens, dict(p.target_shares))
write_json(snakemake.output.stats, stats)
log.info("groups: %s", json.dumps(stats["groups"]))
log.info(
    "wrote %s and %s: %d of %d docs, %d tokens (target %s, shortfall %d) in %.1fs",
    parts,
    snakemake.output.stats,
    stats["docs_out"],
    stats["docs_in"],
    stats["tokens_out"],
    p.target_tokens,
    stats["shortfall_tokens"],
    time.monotonic() - start,
)
