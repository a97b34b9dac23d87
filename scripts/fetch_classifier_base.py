"""Rule fetch_classifier_base: classifiers.base_model from the Hugging Face hub -> a local model directory.

Needs network access to the hub (study config only; the demo trains from scratch). train_classifier
reads the directory, so the GPU job needs none.
"""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import time

from trellis.classifiers.base import fetch_base_model
from trellis.core.logs import setup_logging

log = setup_logging(snakemake.log[0])
start = time.monotonic()
p = snakemake.params
out_dir = snakemake.output[0]
log.info("fetching %s at revision %s -> %s", p.repo, p.revision, out_dir)
manifest = fetch_base_model(str(p.repo), str(p.revision), out_dir)
log.info(
    "wrote %s: commit %s, %d files, %s bytes in %.1fs",
    out_dir,
    manifest["commit"],
    len(manifest["files"]),
    f"{manifest['total_bytes']:,}",
    time.monotonic() - start,
)
