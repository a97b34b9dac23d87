"""Rule dpo: DPO of one arm's SFT model against a frozen copy of itself (identical for all arms).

snakemake: input model (SFT model dir), data (DPO JSONL), manifest (of the data); params cfg
{epochs, learning_rate, batch_size, beta}, max_length, seed; output[0] the DPO model dir; log[0].
"""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import time

import torch

from trellis.core.logs import setup_logging
from trellis.train.posttrain import run_dpo

log = setup_logging(snakemake.log[0])
# Stay within the cores Snakemake granted this job (torch would otherwise take every core).
torch.set_num_threads(max(1, int(snakemake.threads)))
start = time.monotonic()
inp, params, out = snakemake.input, snakemake.params, snakemake.output[0]
log.info(
    "DPO of %s on %s with %s, max_length %s, seed %s",
    inp.model,
    inp.data,
    dict(params.cfg),
    params.max_length,
    params.seed,
)
metrics = run_dpo(
    inp.model,
    inp.data,
    out,
    dict(params.cfg),
    int(params.max_length),
    int(params.seed),
    manifest_path=inp.manifest,
)
log.info(
    "wrote %s: %d steps, final loss %.4f, reward accuracy %s, %d pairs (%d seen; order %s, data %s) in %.1fs",
    out,
    metrics["steps"],
    metrics["final_loss"],
    metrics["final_rewards_accuracies"],
    metrics["examples"],
    metrics["examples_seen"],
    metrics["order_sha256"][:12],
    metrics["data_sha256"][:12],
    time.monotonic() - start,
)
