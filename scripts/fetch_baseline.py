"""Rule fetch_baseline: an external model (e.g. Pythia) at a revision -> an HF model directory.

Needs network access to the Hugging Face hub at job time (study config only; the demo has none).
"""

import time
from pathlib import Path

from trellis.train.baselines import fetch_baseline
from trellis.core.logs import setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
start = time.monotonic()
p = snakemake.params  # noqa: F821
out_dir = Path(snakemake.output.model)  # noqa: F821
log.info("fetching %s at revision %s -> %s", p.repo, p.revision, out_dir)
info = fetch_baseline(str(p.repo), str(p.revision), out_dir)
log.info("wrote %s: %s, %s parameters, pad token id %s", out_dir, info["architecture"],
         f"{info['parameters']:,}", info["pad_token_id"])
log.info("done in %.1fs", time.monotonic() - start)
