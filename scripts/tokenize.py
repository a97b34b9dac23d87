"""Rule tokenize: one document part -> one token part (id, tokens, n_tokens)."""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import os
import time

# The Rust tokenizer's thread pool is sized from this variable when it first starts, so it is set
# before anything is encoded: the rule's threads, not every core of a shared node.
os.environ["RAYON_NUM_THREADS"] = str(snakemake.threads)

from trellis.core.logs import setup_logging
from trellis.tokens.tokenize import tokenize_part

log = setup_logging(snakemake.log[0])
start = time.monotonic()
inp = snakemake.input
out = snakemake.output[0]
log.info("tokenizing %s with %s on %s threads", inp.part, inp.tokenizer, os.environ["RAYON_NUM_THREADS"])
stats = tokenize_part(inp.tokenizer, inp.part, out)
log.info(
    "wrote %s: %d docs, %d tokens (%s), %d skipped empty, %s tokens/s, %.1fs",
    out,
    stats["docs_out"],
    stats["tokens"],
    stats["token_dtype"],
    stats["dropped"]["skipped_empty"],
    stats["tokens_per_second"],
    time.monotonic() - start,
)
