"""Rule build_posttrain_data: SFT examples and DPO pairs shared by all arms.

snakemake: input tokenizer (the study's; fits rows to max_length and counts tokens), public (one
fetched directory per posttrain.public set, in config order); params n_sft, n_dpo, seed,
max_length, public (posttrain.public); output sft, dpo, manifest; log[0].
"""

import time

from trellis.core.logs import setup_logging
from trellis.train.posttrain_data import write_posttrain_data

log = setup_logging(snakemake.log[0])
start = time.monotonic()
inp, out, params = snakemake.input, snakemake.output, snakemake.params
public = {
    name: dict(spec, dir=folder)
    for (name, spec), folder in zip(dict(params.public).items(), inp.public, strict=True)
}
manifest = write_posttrain_data(
    out.sft,
    out.dpo,
    int(params.n_sft),
    int(params.n_dpo),
    int(params.seed),
    manifest_path=out.manifest,
    public=public,
    tokenizer_dir=inp.tokenizer,
    max_length=int(params.max_length),
)
for name, report in manifest["public"].items():
    log.info("%s (%s@%s): %s", name, report["repo"], report["revision"], report["stats"])
for stage in ("sft", "dpo"):
    m = manifest[stage]
    log.info(
        "wrote %s: %d rows %s from %s; dropped as longer than %d tokens: %s; %s tokens (mean %.1f)",
        m["path"],
        m["rows"],
        m["tasks"],
        m["sources"],
        manifest["max_length"],
        m["dropped_too_long"],
        f"{m['tokens']:,}",
        m["mean_tokens"],
    )
log.info("DPO rejections %s", manifest["dpo"]["rejections"])
log.info("wrote %s in %.1fs", out.manifest, time.monotonic() - start)
