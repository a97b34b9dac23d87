"""Rule dedup: exact + MinHash-LSH near-duplicate removal over all filtered parts of a source."""

import time

from trellis.dedup import dedup_source
from trellis.io import write_json
from trellis.logs import setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
start = time.monotonic()
inp, p = snakemake.input, snakemake.params  # noqa: F821
filtered, raw, signatures = list(inp.filtered), list(inp.raw), list(inp.signatures)
parts = list(snakemake.output.parts)  # noqa: F821
log.info("dedup: %d filtered parts %s; raw %s; signatures %s; num_perm=%s threshold=%s",
         len(filtered), filtered, raw, signatures, p.num_perm, p.threshold)
stats = dedup_source(filtered, raw, signatures, parts, int(p.num_perm), float(p.threshold))
write_json(snakemake.output.stats, stats)  # noqa: F821
log.info(
    "wrote %s and %s: %d of %d docs kept, dropped %s, %d clusters, %.1fs",
    parts, snakemake.output.stats, stats["kept"], stats["docs_in"], stats["dropped"],  # noqa: F821
    stats["clusters"], time.monotonic() - start,
)
