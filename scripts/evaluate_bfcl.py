"""Rule evaluate_bfcl: BFCL's categories on one model (arm × stage), then BFCL's summary."""

from pathlib import Path

import torch

from trellis.benchmarks import evaluate_bfcl
from trellis.io import write_json
from trellis.logs import setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
torch.set_num_threads(max(1, int(snakemake.threads)))  # noqa: F821 (the rule's threads, no more)
inp, p = snakemake.input, snakemake.params  # noqa: F821
log.info("evaluate_bfcl: arm=%s stage=%s model=%s cfg=%s bootstrap=%s seed=%s",
         p.arm, p.stage, inp.model, dict(p.cfg), dict(p.bootstrap), p.seed)
results = evaluate_bfcl(inp.model, p.stage, p.arm, dict(p.cfg), dict(p.bootstrap), int(p.seed))
for out in snakemake.output:  # noqa: F821
    result = results[Path(out).stem]
    write_json(out, result)
    metrics = ", ".join(f"{k}={v['value']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]" for k, v in result["metrics"].items())
    rate = result.get("timing", {}).get("examples_per_s")
    log.info("wrote %s: n=%d %s%s", out, result["n"], metrics, f"; {rate:.2f} examples/s" if rate else "")
