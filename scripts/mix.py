"""Rule mix: one arm's token budgets -> packed, globally shuffled TKDS shards + manifest.json.

How the inputs arrive: ``params.components`` is a list of {name, source, budget, stage,
token_paths} (rules/common.smk: mix_components), each naming its own token parts in part order;
``input.tokens`` is the de-duplicated union of all those parts (two components may read the same
source's parts), declared so Snakemake builds and tracks them. The script checks the two agree,
so a component can never read a file the rule does not depend on. ``input.tokenizer`` gives the
EOS id and the tokenizer's vocabulary, which must fit ``params.vocab_size`` (tokenizer.vocab_size:
the padded vocabulary written into every shard header). The shard directory is the directory of
``output.manifest``; ``output.table`` (the mix table) is written beside it.
"""

from trellis.core.gc_tuning import tune_gc

tune_gc()

import time
from pathlib import Path

from trellis.core.logs import setup_logging
from trellis.tokens.mix import MANIFEST, MIX_TABLE, build_mix
from trellis.tokens.tokenizer import eos_id, load_tokenizer

log = setup_logging(snakemake.log[0])
start = time.monotonic()
p = snakemake.params
declared = {str(Path(x)) for x in snakemake.input.tokens}
components, used = [], set()
for c in p.components:
    paths = [Path(x) for x in c["token_paths"]]
    undeclared = [str(x) for x in paths if str(x) not in declared]
    if undeclared:
        raise ValueError(f"component {c['name']}: token parts not declared in input.tokens: {undeclared}")
    used.update(str(x) for x in paths)
    components.append(
        {k: c[k] for k in ("name", "source", "budget", "upsample", "stage") if k in c}
        | {"token_paths": paths}
    )
    log.info(
        "component %s: source %s (%s), budget %s tokens%s, %d parts %s",
        c["name"],
        c["source"],
        c.get("stage", "?"),
        c["budget"],
        " (upsample)" if c.get("upsample") else "",
        len(paths),
        [str(x) for x in paths],
    )
unused = sorted(declared - used)
if unused:
    raise ValueError(f"input.tokens lists parts no component reads: {unused}")

tok = load_tokenizer(snakemake.input.tokenizer)
manifest_path = Path(snakemake.output.manifest)
table_path = Path(snakemake.output.table)
if manifest_path.name != MANIFEST or table_path != manifest_path.with_name(MIX_TABLE):
    raise ValueError(
        f"output.manifest and output.table must be {MANIFEST} and {MIX_TABLE} in one directory, "
        f"got {manifest_path} and {table_path}"
    )
if len(tok) > int(p.vocab_size):
    raise ValueError(
        f"tokenizer {snakemake.input.tokenizer} has {len(tok)} tokens; config key tokenizer.vocab_size "
        f"({p.vocab_size}, the padded vocabulary of the shards) must be at least that"
    )
log.info(
    "tokenizer %s: %d tokens (padded to %s), eos %d",
    snakemake.input.tokenizer,
    len(tok),
    p.vocab_size,
    eos_id(tok),
)
manifest = build_mix(
    components,
    out_dir=manifest_path.parent,
    context_length=int(p.context_length),
    eos_id=eos_id(tok),
    vocab_size=int(p.vocab_size),
    tokenizer_vocab_size=len(tok),
    sequences_per_shard=int(p.sequences_per_shard),
    shuffle_buffer_mb=float(p.shuffle_buffer_mb),
    seed=int(p.seed),
)
for name, c in manifest["components"].items():
    log.info(
        "  %s: %d/%d tokens (%d epochs + %d sampled), %d docs, shortfall %d",
        name,
        c["realized_tokens"],
        c["budget"],
        c["epochs"],
        c["sampled_tokens"],
        c["documents"],
        c["shortfall"],
    )
log.info(
    "wrote %d shards (%d sequences, %d tokens) and %s in %.1fs",
    len(manifest["shards"]),
    manifest["total_sequences"],
    manifest["total_tokens"],
    manifest_path,
    time.monotonic() - start,
)
