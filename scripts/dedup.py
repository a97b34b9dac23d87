"""Rule dedup: exact and near duplicates across all filtered parts of a source (band-partitioned LSH)."""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import time

from trellis.core.io import write_json
from trellis.core.logs import setup_logging
from trellis.curate.dedup import dedup_source

log = setup_logging(snakemake.log[0])
start = time.monotonic()
inp, p = snakemake.input, snakemake.params
filtered, raw = list(inp.filtered), list(inp.raw)
signatures, exact = list(inp.signatures), list(inp.exact)
decisions = list(snakemake.output.decisions)
log.info(
    "dedup: %d filtered parts; num_perm=%s threshold=%s partition_mb=%s",
    len(filtered),
    p.num_perm,
    p.threshold,
    p.partition_mb,
)
stats = dedup_source(
    filtered,
    raw,
    signatures,
    exact,
    decisions,
    int(p.num_perm),
    float(p.threshold),
    partition_mb=float(p.partition_mb),
    work_dir=snakemake.resources.get("tmpdir"),
)
write_json(snakemake.output.stats, stats)
log.info(
    "wrote %s and %s: %d of %d docs kept, dropped %s, %d clusters, %d partitions, %.1fs",
    decisions,
    snakemake.output.stats,
    stats["docs_out"],
    stats["docs_in"],
    stats["dropped"],
    stats["clusters"],
    stats["partitions"],
    time.monotonic() - start,
)
