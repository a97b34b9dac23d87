"""Rule evaluate_harness: lm-eval tasks on one model (arm × stage) -> eval/<arm>/<stage>/lm_<task>.json.

lm-eval's own tasks (study) read their datasets from fetch_harness_data's cache, offline: the job
never reaches the hub. The demo's tasks are local files (include_path).
"""

from trellis.core.gc_tuning import tune_gc

tune_gc()

from pathlib import Path

import torch

from trellis.core.io import write_json
from trellis.core.logs import setup_logging
from trellis.evaluate.harness import benchmark_name, evaluate_harness, use_data_cache

log = setup_logging(snakemake.log[0])
torch.set_num_threads(max(1, int(snakemake.threads)))
inp, p = snakemake.input, snakemake.params
tasks_dir = inp.get("tasks")
data = inp.get("data")
if data:
    # Before lm-eval imports datasets and huggingface_hub, which read these settings then.
    use_data_cache(Path(data).parent, offline=True)
log.info(
    "evaluate_harness: arm=%s stage=%s model=%s tasks=%s include_path=%s data=%s limit=%s",
    p.arm,
    p.stage,
    inp.model,
    dict(p.cfg["tasks"]),
    tasks_dir,
    data,
    p.cfg["limit"],
)
results = evaluate_harness(
    inp.model, p.stage, p.arm, dict(p.cfg), dict(p.bootstrap), int(p.seed), tasks_dir, data_manifest=data
)
for task, out in zip(p.cfg["tasks"], snakemake.output):
    result = results[benchmark_name(task)]
    write_json(out, result)
    metrics = ", ".join(
        f"{k}={v['value']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]" for k, v in result["metrics"].items()
    )
    log.info("wrote %s: n=%d %s", out, result["n"], metrics)
t = next(iter(results.values()))["timing"]
log.info("%d documents in %.1fs (%.1f docs/s)", t["docs_all_tasks"], t["total_s"], t["examples_per_s"] or 0)
