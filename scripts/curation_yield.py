"""Rule curation_yield.

Documents and tokens per source and step (in, out, dropped per reason), CSV + funnel PNG.
"""

from trellis.core.gc_tuning import tune_gc

tune_gc()

from trellis.core.logs import setup_logging
from trellis.curate.yields import funnel_plot, site_yield, source_yield, write_yield_csv

log = setup_logging(snakemake.log[0])
inp, p = snakemake.input, snakemake.params
filter_stats = list(inp.filter_stats)
rows = []
for i, source in enumerate(p.sources):
    # filter_stats lists every part of the first source, then of the next (the rule's order).
    before = sum(p.parts[s] for s in p.sources[:i])
    mine = filter_stats[before : before + p.parts[source]]
    rows += source_yield(source, mine, inp.dedup_stats[i], inp.select_stats[i])
funnel_plot(rows, snakemake.output.png)
for r in rows:
    log.info(
        "%-14s %-7s %-28s %9d docs %12d tokens (%.1f%% of raw tokens)",
        r["source"],
        r["step"],
        r["reason"],
        r["docs"],
        r["tokens"],
        100 * r["tokens_share"],
    )
# StackExchange's site and answer-score filter (normalize), per site, after the curated rows.
sites = site_yield(list(inp.site_stats))
for r in sites:
    log.info("%-14s %-44s %-28s %9d docs", r["source"], r["step"], r["reason"], r["docs"])
write_yield_csv(rows + sites, snakemake.output.csv)
log.info("wrote %s and %s", snakemake.output.csv, snakemake.output.png)
