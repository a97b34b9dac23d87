"""Rule filter: one raw part through its source's curation policy (hard rules, priority, group)."""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import json
import time

from trellis.core.io import write_json
from trellis.core.logs import setup_logging
from trellis.curate.filter import filter_part

log = setup_logging(snakemake.log[0])
start = time.monotonic()
inp, p = snakemake.input, snakemake.params
log.info(
    "filter %s: raw %s, scores %s, tokens %s; Stage 0 passed (%s); policy %s",
    p.source,
    inp.raw,
    inp.scores,
    inp.tokens,
    inp.stage0,
    dict(p.policy),
)
stats = filter_part(
    p.source,
    inp.raw,
    inp.scores,
    inp.tokens,
    dict(p.policy),
    snakemake.output.part,
    topics=list(p.topics),
    skip_below_compression_ratio=p.skip_below_compression_ratio,
    stage0_report=json.loads(open(inp.stage0).read()),
)
write_json(snakemake.output.stats, stats)
log.info(
    "wrote %s (%d of %d docs, %d of %d tokens kept; dropped %s) and %s in %.1fs",
    snakemake.output.part,
    stats["docs_out"],
    stats["docs_in"],
    stats["tokens_out"],
    stats["tokens_in"],
    stats["dropped"],
    snakemake.output.stats,
    time.monotonic() - start,
)
