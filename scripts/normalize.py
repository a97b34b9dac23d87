"""Rule normalize: one part of a source's native files -> id/text/source/metadata parquet."""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import time

from trellis.acquire.download import read_manifest
from trellis.acquire.normalize import files_for_part, normalize_part
from trellis.core.io import write_json
from trellis.core.logs import setup_logging

log = setup_logging(snakemake.log[0])
start = time.monotonic()
source = snakemake.params.source
part, parts = int(snakemake.params.part), int(snakemake.params.parts)

files = files_for_part(read_manifest(snakemake.input.manifest), part, parts, source=source)
log.info(
    "%s part %d/%d: %d native file(s) from %s", source, part, parts, len(files), snakemake.input.manifest
)
for f in files:
    log.info("  reading %s", f)
subject_filter = snakemake.params.subject_filter
if subject_filter:
    log.info(
        "keeping %s documents on %s (at least %d of their terms in the first %d characters)",
        source,
        ", ".join(subject_filter["subjects"]),
        subject_filter["min_terms"],
        subject_filter["head_chars"],
    )
stackexchange = snakemake.params.stackexchange
if stackexchange:
    log.info(
        "keeping %s questions from %d listed site(s), never a meta site, with answers accepted or "
        "scoring pm_score >= %d",
        source,
        len(stackexchange["sites"]),
        stackexchange["min_answer_score"],
    )
stats = normalize_part(
    source, files, snakemake.output.part, subject_filter=subject_filter, stackexchange=stackexchange
)
stats.update({"part": part, "parts": parts})
write_json(snakemake.output.stats, stats)
log.info(
    "wrote %s (%d docs; %d in, dropped %s, rows changed %s) and %s in %.1fs",
    snakemake.output.part,
    stats["docs_out"],
    stats["docs_in"],
    stats["dropped"] or "none",
    stats["changed"] or "none",
    snakemake.output.stats,
    time.monotonic() - start,
)
