"""Rule plot_deltas: curated-minus-control deltas with CIs per stage, from the headline table."""

from trellis.core.gc_tuning import tune_gc

tune_gc()

from trellis.core.logs import setup_logging
from trellis.report.plot_deltas import plot_deltas

log = setup_logging(snakemake.log[0])
inp, out = snakemake.input[0], snakemake.output[0]
n = plot_deltas(inp, out)
log.info("plotted %d deltas from %s into %s", n, inp, out)
