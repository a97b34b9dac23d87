"""Rule fetch_bfcl_reference: the model whose BFCL prompt-mode scores are published
(evaluate.bfcl.validation) from the Hugging Face hub -> an HF model directory.

Needs network access to the hub at job time (study config only; the demo has no such check).
"""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import time
from pathlib import Path

from trellis.core.logs import setup_logging
from trellis.train.baselines import fetch_baseline

log = setup_logging(snakemake.log[0])
start = time.monotonic()
p = snakemake.params
out_dir = Path(snakemake.output.model)
log.info("fetching %s at revision %s -> %s", p.repo, p.revision, out_dir)
info = fetch_baseline(str(p.repo), str(p.revision), out_dir)
log.info("wrote %s: %s, %s parameters", out_dir, info["architecture"], f"{info['parameters']:,}")
log.info("done in %.1fs", time.monotonic() - start)
