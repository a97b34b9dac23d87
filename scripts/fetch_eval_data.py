"""Rule fetch_eval_data: an evaluation dataset (MBPP) from the Hugging Face hub, with a manifest."""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import time
from pathlib import Path

from trellis.acquire.download import download_huggingface
from trellis.core.logs import setup_logging

log = setup_logging(snakemake.log[0])
start = time.monotonic()
p = snakemake.params
hf = dict(p.hf)
out_dir = Path(snakemake.output.manifest).parent
log.info(
    "fetch_eval_data %s: %s@%s %s -> %s", p.dataset, hf["repo"], hf["revision"], hf["allow_patterns"], out_dir
)
manifest = download_huggingface(hf["repo"], hf["revision"], hf["allow_patterns"], out_dir, source=p.dataset)
log.info("wrote %s in %.1fs", manifest, time.monotonic() - start)
