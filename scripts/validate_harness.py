"""Rule validate_harness: lm-eval on the final Pythia-410M-deduped baseline vs its published
zero-shot acc -> eval/harness_validation.json and .csv; no output when a task is outside tolerance.

Same harness settings as evaluate_harness (batch size, limit, bf16 on a GPU, plain prompts), on
lm-eval's task data as fetch_harness_data cached it, offline.
"""

from trellis.core.gc_tuning import tune_gc

tune_gc()

from pathlib import Path

import torch

from trellis.core.io import write_json
from trellis.core.logs import setup_logging
from trellis.evaluate.harness import (
    check_validation,
    use_data_cache,
    validate_model,
    validation_table,
    write_validation_csv,
)

log = setup_logging(snakemake.log[0])
torch.set_num_threads(max(1, int(snakemake.threads)))
inp, p, out = snakemake.input, snakemake.params, snakemake.output
# Before lm-eval imports datasets and huggingface_hub, which read these settings then.
use_data_cache(Path(inp.data).parent, offline=True)
log.info(
    "validate_harness: model=%s (arm %s) tolerance=%s batch_size=%s limit=%s data=%s",
    inp.model,
    p.arm,
    p.tolerance,
    p.cfg["batch_size"],
    p.cfg["limit"],
    inp.data,
)
record = validate_model(inp.model, dict(p.cfg), int(p.seed), float(p.tolerance), data_manifest=inp.data)
log.info(
    "%s zero-shot %s, ours vs published:\n%s",
    record["published_model"],
    record["metric"],
    validation_table(record),
)
check_validation(record)  # raises before any output is written
write_json(out.json, {**record, "arm": p.arm})
write_validation_csv(record, out.csv)
log.info("wrote %s and %s: every task within ±%g", out.json, out.csv, record["tolerance"])
