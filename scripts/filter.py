"""Rule filter: keep one raw part's documents that pass its source's score/heuristic thresholds."""

import time

from trellis.filtering import filter_part
from trellis.io import write_json
from trellis.logs import setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
start = time.monotonic()
source = snakemake.params.source  # noqa: F821
thresholds = dict(snakemake.params.thresholds)  # noqa: F821
log.info("filter %s: raw %s, scores %s, thresholds %s", source, snakemake.input.raw, snakemake.input.scores, thresholds)  # noqa: F821
stats = filter_part(source, snakemake.input.raw, snakemake.input.scores, thresholds, snakemake.output.part)  # noqa: F821
write_json(snakemake.output.stats, stats)  # noqa: F821
log.info(
    "wrote %s (%d of %d docs kept; dropped %s) and %s in %.1fs",
    snakemake.output.part, stats["docs_out"], stats["docs_in"], stats["dropped"],  # noqa: F821
    snakemake.output.stats, time.monotonic() - start,  # noqa: F821
)
