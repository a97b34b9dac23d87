"""Rule validate_bfcl: BFCL's prompt mode on the leaderboard's reference model vs its published
prompt-mode numbers -> eval/bfcl_validation.json and .csv; no output when a gated section is
outside tolerance (trellis.evaluate.bfcl_validation).
"""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import torch

from trellis.core.io import write_json
from trellis.core.logs import setup_logging
from trellis.evaluate.bfcl_validation import (
    check_validation,
    validate_model,
    validation_table,
    write_validation_csv,
)

log = setup_logging(snakemake.log[0])
torch.set_num_threads(max(1, int(snakemake.threads)))
inp, p, out = snakemake.input, snakemake.params, snakemake.output
cfg = dict(p.cfg)
log.info(
    "validate_bfcl: model=%s (%s@%s) tolerance=%s max_new_tokens=%s batch_size=%s",
    inp.model,
    cfg["repo"],
    cfg["revision"],
    cfg["tolerance"],
    cfg["max_new_tokens"],
    cfg["batch_size"],
)
record = validate_model(inp.model, cfg, dict(p.bootstrap), int(p.seed), float(cfg["tolerance"]))
log.info("%s, prompt mode, ours vs published:\n%s", record["published_row"], validation_table(record))
check_validation(record)  # raises before any output is written
write_json(out.json, {**record, "repo": cfg["repo"], "revision": cfg["revision"]})
write_validation_csv(record, out.csv)
log.info("wrote %s and %s: every gated section within ±%g", out.json, out.csv, record["tolerance"])
