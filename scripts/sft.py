"""Rule sft: full-parameter SFT of one arm's base model (identical data and settings for all arms).

snakemake: input model (HF model dir), data (SFT JSONL), manifest (of the data); params cfg
{epochs, learning_rate, batch_size}, max_length, seed; output[0] the SFT model dir; log[0].
"""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import time

import torch

from trellis.core.logs import setup_logging
from trellis.train.posttrain import run_sft

log = setup_logging(snakemake.log[0])
# Stay within the cores Snakemake granted this job (torch would otherwise take every core).
torch.set_num_threads(max(1, int(snakemake.threads)))
start = time.monotonic()
inp, params, out = snakemake.input, snakemake.params, snakemake.output[0]
log.info(
    "SFT of %s on %s with %s, max_length %s, seed %s",
    inp.model,
    inp.data,
    dict(params.cfg),
    params.max_length,
    params.seed,
)
metrics = run_sft(
    inp.model,
    inp.data,
    out,
    dict(params.cfg),
    int(params.max_length),
    int(params.seed),
    manifest_path=inp.manifest,
)
log.info(
    "wrote %s: %d steps, final loss %.4f, %d examples (%d seen; order %s, data %s) in %.1fs",
    out,
    metrics["steps"],
    metrics["final_loss"],
    metrics["examples"],
    metrics["examples_seen"],
    metrics["order_sha256"][:12],
    metrics["data_sha256"][:12],
    time.monotonic() - start,
)
