"""Rule pretrain: one arm's TKDS shards -> LitGPT checkpoints (final/lit_model.pth) + metrics.csv.

The checkpoint directory is output.checkpoint's grandparent (<out>/final/lit_model.pth). LitGPT's
step-* checkpoints live beside final/ and are not declared outputs, so Snakemake leaves them in
place after a killed job and the rerun resumes from the last one; pretrain.keep_checkpoints of
them stay on disk.
"""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import time
from pathlib import Path

import torch

from trellis.core.logs import setup_logging
from trellis.train.pretrain import final_checkpoint, run_pretrain

log = setup_logging(snakemake.log[0])
start = time.monotonic()
p = snakemake.params
manifest = Path(snakemake.input.manifest)
tokenizer = Path(snakemake.input.tokenizer)
checkpoint = Path(snakemake.output.checkpoint)
metrics = Path(snakemake.output.metrics)
out_dir = checkpoint.parent.parent
if final_checkpoint(out_dir) != checkpoint:
    raise ValueError(f"output.checkpoint must be <dir>/final/lit_model.pth, got {checkpoint}")
if metrics != out_dir / "metrics.csv":
    raise ValueError(f"output.metrics must be {out_dir / 'metrics.csv'}, got {metrics}")

# Stay within the cores Snakemake granted this job: on CPU, more intra-op threads than cores
# (other jobs run beside us) makes every step spin and stall.
torch.set_num_threads(max(1, int(snakemake.threads)))
log.info("torch threads: %d", torch.get_num_threads())
log.info("arm %s: shards %s, tokenizer %s -> %s", p.arm, manifest.parent, tokenizer, out_dir)
log.info("model %s", dict(p.model))
log.info("pretrain %s", dict(p.pretrain))
summary = run_pretrain(
    shard_dir=manifest.parent,
    tokenizer_dir=tokenizer,
    out_dir=out_dir,
    model=dict(p.model),
    # keep_checkpoints is not a param (it changes no result, so changing it must rerun nothing).
    pretrain=dict(p.pretrain) | {"keep_checkpoints": snakemake.config["pretrain"]["keep_checkpoints"]},
    seed=int(p.seed),
    arm_name=p.arm,
)
log.info(
    "wrote %s (%d iterations, %d optimizer steps, %s tokens, %s parameters; resumed from %s) and %s",
    summary["final_checkpoint"],
    summary["iter_num"],
    summary["step_count"],
    f"{summary['tokens']:,}",
    f"{summary['parameters']:,}",
    summary["resumed_from"],
    summary["metrics"],
)
log.info("done in %.1fs", time.monotonic() - start)
