"""Rule train_tokenizer: train the demo byte-level BPE, or fetch the study's pretrained tokenizer."""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import time

from trellis.core.logs import setup_logging
from trellis.tokens.tokenizer import fetch_pretrained, train_bpe

log = setup_logging(snakemake.log[0])
start = time.monotonic()
p = snakemake.params
out_dir = snakemake.output[0]
parts = list(snakemake.input.get("parts", []))
if p.kind == "train":
    if not parts:
        raise ValueError("tokenizer kind 'train' needs document parts as input.parts; got none")
    log.info(
        "training byte-level BPE (vocab %s, %s docs/source, seed %s) on %d parts: %s",
        p.vocab_size,
        p.docs_per_source,
        p.seed,
        len(parts),
        parts,
    )
    stats = train_bpe(
        parts,
        int(p.vocab_size),
        int(p.docs_per_source),
        out_dir,
        int(p.seed),
        model_max_length=int(p.get("model_max_length", 2048)),
    )
elif p.kind == "pretrained":
    log.info("fetching pretrained tokenizer %s", p.pretrained)
    stats = fetch_pretrained(p.pretrained, out_dir)
else:
    raise ValueError(f"tokenizer.kind must be 'train' or 'pretrained', got {p.kind!r}")
log.info("wrote tokenizer to %s: %s (%.1fs)", out_dir, stats, time.monotonic() - start)
