"""Rule fetch_harness_data: lm-eval's own tasks' datasets (study) -> a datasets cache with a manifest.

Needs network access to the Hugging Face hub (study config only; the demo's tasks are local). The
cache lies beside the manifest; evaluate_harness reads it offline.
"""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import time
from pathlib import Path

from trellis.core.io import read_json
from trellis.core.logs import setup_logging
from trellis.evaluate.harness import fetch_task_data, use_data_cache

log = setup_logging(snakemake.log[0])
start = time.monotonic()
out_dir = Path(snakemake.output.manifest).parent
tasks = list(snakemake.params.tasks)
# Before lm-eval imports datasets and huggingface_hub, which read their cache locations then.
use_data_cache(out_dir, offline=False)
log.info("fetch_harness_data: building lm-eval tasks %s with their datasets cached under %s", tasks, out_dir)
manifest = read_json(fetch_task_data(tasks, out_dir))
log.info(
    "wrote %s: %d leaf tasks, %d files, %s bytes in %.1fs",
    snakemake.output.manifest,
    len(manifest["tasks"]),
    len(manifest["files"]),
    f"{manifest['total_bytes']:,}",
    time.monotonic() - start,
)
