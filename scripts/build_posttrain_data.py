"""Rule build_posttrain_data: SFT examples and DPO pairs shared by all arms.

snakemake: input tokenizer (the study's; fits rows to max_length and counts tokens), public (one
fetched directory per posttrain.public set, in config order); params n_sft, n_dpo, seed,
max_length, public (posttrain.public), real_schemas (posttrain.real_schemas); output sft, dpo,
manifest; log[0].

The job ends with the disjointness check on the files it wrote (trellis.structured.disjoint):
a row showing an evaluation item fails the job, naming the row and the item.
"""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import time

from trellis.core.logs import setup_logging
from trellis.evaluate.identities import evaluation_index
from trellis.structured.disjoint import check_posttrain_files
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
    real_schemas=dict(params.real_schemas),
)
real = manifest["real_schemas"]
if real:
    log.info(
        "real schemas: %s rows from %s; passed over %s", real["rows"], real["sources"], real["passed_over"]
    )
log.info("dropped as showing an evaluation item: %s", manifest["disjoint"]["dropped"])
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
# Raises (and so fails the job) on any leak; the index is the one the build used (cached).
checked = check_posttrain_files(out.sft, out.dpo, out.manifest, evaluation_index())
log.info("disjointness check passed: %s", checked)
log.info("wrote %s in %.1fs", out.manifest, time.monotonic() - start)
