"""Rule signatures: MinHash signatures and exact-text keys of one raw part (threshold-independent)."""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import os
import time

# rensa computes a batch's sketches on rayon's thread pool, which takes every core unless told:
# keep it to the rule's threads, so parallel signature jobs do not oversubscribe a node.
os.environ["RAYON_NUM_THREADS"] = str(snakemake.threads)

from trellis.core.logs import setup_logging  # noqa: E402
from trellis.curate.signatures import compute_signatures  # noqa: E402

log = setup_logging(snakemake.log[0])
start = time.monotonic()
p, out = snakemake.params, snakemake.output
log.info(
    "signatures of %s: num_perm=%s shingle_words=%s seed=%s",
    snakemake.input[0],
    p.num_perm,
    p.shingle_words,
    p.seed,
)
stats = compute_signatures(
    snakemake.input[0],
    out.signatures,
    int(p.num_perm),
    int(p.shingle_words),
    int(p.seed),
    exact_npy=out.exact,
)
log.info(
    "wrote %s and %s: %d x %d uint32 (%d empty docs), %s docs/s, %.1fs",
    out.signatures,
    out.exact,
    stats["rows"],
    stats["num_perm"],
    stats["empty_documents"],
    stats["docs_per_second"],
    time.monotonic() - start,
)
