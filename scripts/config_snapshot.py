"""Rule config_snapshot: the validated config this run used, as one YAML file in its results."""

from trellis.core.gc_tuning import tune_gc

tune_gc()

from pathlib import Path

import yaml

from trellis.core.io import atomic_path
from trellis.core.logs import setup_logging

log = setup_logging(snakemake.log[0])
out = snakemake.output[0]
with atomic_path(out) as tmp:
    Path(tmp).write_text(yaml.safe_dump(dict(snakemake.params.config), sort_keys=False, allow_unicode=True))
log.info("wrote %s", out)
