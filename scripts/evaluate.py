"""Rule evaluate: every generation benchmark on one model (arm × stage) -> eval/<arm>/<stage>/*.json."""

from trellis.core.gc_tuning import tune_gc

tune_gc()

from pathlib import Path

import torch

from trellis.acquire.download import read_manifest
from trellis.core.io import write_json
from trellis.core.logs import setup_logging
from trellis.evaluate.dispatch import evaluate_model

log = setup_logging(snakemake.log[0])
torch.set_num_threads(max(1, int(snakemake.threads)))
inp, p = snakemake.input, snakemake.params
# Downloaded evaluation data (MBPP): the files its manifest lists, each checked for its size.
data_files = [str(f) for f in read_manifest(inp.data)] if inp.get("data") else None
# Code benchmarks run their programs `threads` at a time.
benchmarks = {
    name: {"workers": int(snakemake.threads), **dict(cfg)} for name, cfg in dict(p.benchmarks).items()
}
log.info(
    "evaluate: arm=%s stage=%s model=%s suite=%s benchmarks=%s bootstrap=%s seed=%s",
    p.arm,
    p.stage,
    inp.model,
    inp.suite,
    benchmarks,
    dict(p.bootstrap),
    p.seed,
)
results = evaluate_model(
    inp.model,
    p.stage,
    p.arm,
    benchmarks,
    dict(p.bootstrap),
    int(p.seed),
    suite_path=inp.suite,
    data_files=data_files,
)
for out in snakemake.output:
    result = results[Path(out).stem]
    write_json(out, result)
    metrics = ", ".join(
        f"{k}={v['value']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]" for k, v in result["metrics"].items()
    )
    t = result.get("timing", {})
    rate = f"; {t['examples_per_s']:.2f} examples/s" if t.get("examples_per_s") else ""
    truncated = result.get("generation", {}).get("truncated_prompts")
    log.info(
        "wrote %s: n=%d %s%s%s",
        out,
        result["n"],
        metrics,
        rate,
        f"; {truncated} prompts cut to fit the context" if truncated else "",
    )
