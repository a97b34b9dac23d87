"""Rule judge_extraction: an LLM judge of one arm/stage's extraction outputs -> extraction_judged.json.

What decides the verdicts (backend, model, answer length, request settings) arrives as params, so
changing it reruns the judge; the operational settings (prices, the cost cap, the unjudged
ceiling, batch tuning, where the API key comes from) are read from the config, so tuning them
does not invalidate finished verdicts. The key itself is read by the OpenAI client only
(``trellis.labels.openai_common.make_client``) and is never logged or written.
"""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import time

from trellis.core.io import write_json
from trellis.core.logs import setup_logging
from trellis.evaluate.judge import judge_extraction, judge_settings

log = setup_logging(snakemake.log[0])
start = time.monotonic()
p = snakemake.params
config = getattr(snakemake, "config", None) or {}
# params.judge (the deciding part, judge_params) is there for Snakemake's rerun triggers; the job
# reads the whole section, operational keys included, from the same config.
judge_cfg = dict(config["evaluate"]["extraction"]["judge"])
settings = judge_settings(judge_cfg, config["labels"], int(p.n_jobs))
log.info(
    "judge_extraction: %s with %s; deciding settings %s; cost cap for this job $%s (of $%s for %d jobs)",
    snakemake.input.extraction,
    settings["backend"],
    dict(p.judge),
    settings["batch"]["max_estimated_cost_usd"],
    judge_cfg.get("max_cost_usd"),
    int(p.n_jobs),
)
result = judge_extraction(snakemake.input.extraction, settings, p.work_dir, dict(p.bootstrap), int(p.seed))
out = snakemake.output[0]
write_json(out, result)
j = result["judge"]
metrics = ", ".join(
    f"{k}={v['value']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]" for k, v in result["metrics"].items()
)
log.info(
    "wrote %s: n=%d %s; %d request(s), %d with no JSON (not sent), %d unjudged; agreement on exact "
    "matches %s; billed $%s in %.1fs",
    out,
    result["n"],
    metrics,
    j["requests"],
    j["skipped_no_json"],
    j["unjudged"],
    j["agreement_on_exact_matches"],
    j["backend_info"].get("billed_usd", 0.0),
    time.monotonic() - start,
)
