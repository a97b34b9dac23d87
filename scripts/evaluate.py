"""Rule evaluate: one benchmark on one model (arm × stage) -> eval/<arm>/<stage>/<benchmark>.json."""

import torch

from trellis.acquire import read_manifest
from trellis.benchmarks import evaluate
from trellis.io import write_json
from trellis.logs import setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
torch.set_num_threads(max(1, int(snakemake.threads)))  # noqa: F821 (the rule's threads, no more)
inp, p = snakemake.input, snakemake.params  # noqa: F821
out = snakemake.output[0]  # noqa: F821
suite = inp.get("suite")
# Downloaded evaluation data (MBPP): the files its manifest lists, each checked for its size.
data_files = [str(f) for f in read_manifest(inp.data)] if inp.get("data") else None
# Code benchmarks run their programs `threads` at a time.
cfg = {"workers": int(p.workers), **dict(p.cfg)}
log.info("evaluate %s: arm=%s stage=%s model=%s suite=%s cfg=%s bootstrap=%s seed=%s",
         p.benchmark, p.arm, p.stage, inp.model, suite, cfg, dict(p.bootstrap), p.seed)
result = evaluate(
    p.benchmark, inp.model, p.stage, p.arm, suite, cfg, dict(p.bootstrap), int(p.seed), data_files=data_files
)
write_json(out, result)
metrics = ", ".join(f"{k}={v['value']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]" for k, v in result["metrics"].items())
t = result["timing"]
log.info("wrote %s: n=%d %s; truncated prompts %d; load %.1fs, generate %.1fs (%.2f examples/s), score %.1fs, "
         "total %.1fs", out, result["n"], metrics, result["generation"]["truncated_prompts"],
         t["load_s"], t["generate_s"], t["examples_per_s"] or 0, t["score_s"], t["total_s"])
