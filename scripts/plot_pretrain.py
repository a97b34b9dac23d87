"""Rule plot_pretrain: every pretrained arm's metrics.csv -> one loss/throughput PNG.

snakemake: input metrics (one metrics.csv per pretrain arm, in config order); params arms (their
names, same order); output png; log[0].
"""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import time

from trellis.core.logs import setup_logging
from trellis.report.plot_pretrain import plot_pretraining

log = setup_logging(snakemake.log[0])
start = time.monotonic()
metrics = dict(zip(snakemake.params.arms, snakemake.input.metrics, strict=True))
summary = plot_pretraining(metrics, snakemake.output.png)
for arm, figures in summary.items():
    log.info("%s: %s", arm, figures)
log.info("wrote %s in %.1fs", snakemake.output.png, time.monotonic() - start)
