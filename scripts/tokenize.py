"""Rule tokenize: one document part -> one token part (id, tokens, n_tokens)."""

import time

from trellis.logs import setup_logging
from trellis.tokenize import tokenize_part

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
start = time.monotonic()
inp = snakemake.input  # noqa: F821
out = snakemake.output[0]  # noqa: F821
log.info("tokenizing %s with %s", inp.part, inp.tokenizer)
stats = tokenize_part(inp.tokenizer, inp.part, out)
log.info(
    "wrote %s: %d docs, %d tokens (%s), %d skipped empty, %s tokens/s, %.1fs",
    out, stats["docs_out"], stats["tokens"], stats["token_dtype"], stats["dropped"]["skipped_empty"],
    stats["tokens_per_second"], time.monotonic() - start,
)
