"""Rule subject_sample: documents of a subject-filtered source, from its native files (before the filter)."""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import time

from trellis.acquire.download import read_manifest
from trellis.core.logs import setup_logging
from trellis.curate.subject_check import choose_files, sample_before_filter, sample_stats, write_sample

log = setup_logging(snakemake.log[0])
start = time.monotonic()
source = snakemake.params.source
n, seed = int(snakemake.params.n), int(snakemake.params.seed)

files = choose_files(read_manifest(snakemake.input.manifest), snakemake.params.max_files, seed)
log.info("sampling %d %s documents before the subject filter from %d native file(s)", n, source, len(files))
for f in files:
    log.info("  reading %s", f)
tally = sample_stats(source)
rows = sample_before_filter(source, files, n, seed, tally=tally)
if len(rows) < n:
    log.warning(
        "only %d eligible documents in those files; the sample has %d of the %d asked for",
        len(rows),
        len(rows),
        n,
    )
write_sample(rows, snakemake.output[0])
log.info(tally.summary())
log.info("wrote %s in %.1fs", snakemake.output[0], time.monotonic() - start)
