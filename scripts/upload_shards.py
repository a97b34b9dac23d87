"""Rule upload_shards: one arm's shard set -> a Hugging Face dataset repo; record what was sent.

The token is read from HF_TOKEN by trellis.tokens.upload and is never logged or written; upload.json
records the repo, revision, commit and the files with their sha256.
"""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import time
from pathlib import Path

from trellis.core.io import write_json
from trellis.core.logs import setup_logging
from trellis.tokens.upload import upload_shards

log = setup_logging(snakemake.log[0])
start = time.monotonic()
p = snakemake.params
shard_dir = Path(snakemake.input.manifest).parent
record = upload_shards(
    shard_dir, p.repo, path_in_repo=snakemake.wildcards.arm, revision=p.revision, private=bool(p.private)
)
write_json(snakemake.output[0], record)
log.info(
    "uploaded %d files of %s to %s (commit %s) in %.1fs",
    len(record["files"]),
    shard_dir,
    record["repo"],
    record["commit"],
    time.monotonic() - start,
)
