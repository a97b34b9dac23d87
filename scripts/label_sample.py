"""Rule script: draw the labeling sample of one domain, evenly across the source's raw parts."""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import time

from trellis.core.logs import setup_logging
from trellis.labels.sample import sample_for_labeling, sample_stats, write_sample

log = setup_logging(snakemake.log[0])
start = time.monotonic()
parts = list(snakemake.input.parts)
n = int(snakemake.params.n)
seed = int(snakemake.params.seed)
out = snakemake.output[0]

log.info("sampling %d documents from %d part(s), seed %d: %s", n, len(parts), seed, parts)
tally = sample_stats()
rows = sample_for_labeling(parts, n, seed, tally=tally)
if len(rows) < n:
    log.warning(
        "only %d eligible documents in the parts; the sample has %d of the %d asked for",
        len(rows),
        len(rows),
        n,
    )
write_sample(rows, out)
log.info("per-part quotas: %s", tally.extra["quotas"])
log.info(tally.summary())
log.info("wrote %d rows to %s in %.1fs", len(rows), out, time.monotonic() - start)
