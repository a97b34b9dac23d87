"""Rule sft: full-parameter SFT of one arm's base model (identical data and settings for all arms).

snakemake: input model (HF model dir), data (SFT JSONL); params cfg {epochs, learning_rate,
batch_size}, max_length, seed; output[0] the SFT model dir; log[0].
"""

import time

import torch

from trellis.logs import setup_logging
from trellis.posttrain import run_sft

log = setup_logging(snakemake.log[0])  # noqa: F821 (the global Snakemake provides)
# Stay within the cores Snakemake granted this job (torch would otherwise take every core).
torch.set_num_threads(max(1, int(snakemake.threads)))  # noqa: F821
start = time.monotonic()
inp, params, out = snakemake.input, snakemake.params, snakemake.output[0]  # noqa: F821
log.info("SFT of %s on %s with %s, max_length %s, seed %s", inp.model, inp.data, dict(params.cfg),
         params.max_length, params.seed)
metrics = run_sft(inp.model, inp.data, out, dict(params.cfg), int(params.max_length), int(params.seed))
log.info("wrote %s: %d steps, final loss %.4f, %d examples (%d too long) in %.1fs", out, metrics["steps"],
         metrics["final_loss"], metrics["examples"], metrics["dropped_too_long"], time.monotonic() - start)
