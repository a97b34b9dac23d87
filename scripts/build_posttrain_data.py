"""Rule build_posttrain_data: SFT examples and DPO pairs from the train pools (shared by all arms).

snakemake: params n_sft, n_dpo, seed; output sft, dpo, manifest; log[0].
"""

import time

from trellis.logs import setup_logging
from trellis.posttrain_data import write_posttrain_data

log = setup_logging(snakemake.log[0])  # noqa: F821 (the global Snakemake provides)
start = time.monotonic()
out, params = snakemake.output, snakemake.params  # noqa: F821
manifest = write_posttrain_data(out.sft, out.dpo, int(params.n_sft), int(params.n_dpo), int(params.seed),
                                manifest_path=out.manifest)
log.info("wrote %s: %d SFT examples %s", out.sft, manifest["sft"]["rows"], manifest["sft"]["tasks"])
log.info("wrote %s: %d DPO pairs %s, rejections %s", out.dpo, manifest["dpo"]["rows"], manifest["dpo"]["tasks"],
         manifest["dpo"]["rejections"])
log.info("wrote %s in %.1fs", out.manifest, time.monotonic() - start)
