"""Rule signatures: MinHash signatures of one raw part (independent of any filter threshold)."""

import time

from trellis.dedup import compute_signatures
from trellis.logs import setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
start = time.monotonic()
p = snakemake.params  # noqa: F821
log.info("signatures of %s: num_perm=%s shingle_words=%s seed=%s", snakemake.input[0], p.num_perm, p.shingle_words, p.seed)  # noqa: F821
stats = compute_signatures(snakemake.input[0], snakemake.output[0], int(p.num_perm), int(p.shingle_words), int(p.seed))  # noqa: F821
log.info(
    "wrote %s: %d x %d uint64 (%d empty docs), %s docs/s, %.1fs",
    snakemake.output[0], stats["rows"], stats["num_perm"], stats["empty_documents"],  # noqa: F821
    stats["docs_per_second"], time.monotonic() - start,
)
