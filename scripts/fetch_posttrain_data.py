"""Rule fetch_posttrain_data: one public post-training set's file from the Hugging Face hub.

snakemake: params name, repo, revision, file, gated; output[0] the set's directory (the file + fetch.json);
log[0]. Needs network (and HF_TOKEN for gated sets such as xLAM) at job time: study config only.
"""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import time

from trellis.core.logs import setup_logging
from trellis.train.posttrain_data import fetch_public_file

log = setup_logging(snakemake.log[0])
start = time.monotonic()
p = snakemake.params
info = fetch_public_file(p.repo, p.revision, p.file, snakemake.output[0], name=p.name, gated=p.gated)
log.info(
    "fetched %s@%s/%s: %s bytes, sha256 %s",
    info["repo"],
    info["revision"],
    info["file"],
    f"{info['bytes']:,}",
    info["sha256"],
)
log.info("done in %.1fs", time.monotonic() - start)
