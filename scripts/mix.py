"""Rule mix: one arm's token budgets -> packed, globally shuffled TKDS shards + manifest.json.

How the inputs arrive: ``params.components`` is a list of {name, source, budget, stage,
token_paths} (rules/common.smk: mix_components), each naming its own token parts in part order;
``input.tokens`` is the de-duplicated union of all those parts (two components may read the same
source's parts), declared so Snakemake builds and tracks them. The script checks the two agree,
so a component can never read a file the rule does not depend on. ``input.tokenizer`` gives the
EOS id and vocab size. The shard directory is the directory of ``output.manifest``.
"""

import time
from pathlib import Path

from trellis.logs import setup_logging
from trellis.mix import build_mix
from trellis.tokenizer import eos_id, load_tokenizer

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
start = time.monotonic()
p = snakemake.params  # noqa: F821
declared = {str(Path(x)) for x in snakemake.input.tokens}  # noqa: F821
components, used = [], set()
for c in p.components:
    paths = [Path(x) for x in c["token_paths"]]
    undeclared = [str(x) for x in paths if str(x) not in declared]
    if undeclared:
        raise ValueError(f"component {c['name']}: token parts not declared in input.tokens: {undeclared}")
    used.update(str(x) for x in paths)
    components.append({k: c[k] for k in ("name", "source", "budget", "stage") if k in c} | {"token_paths": paths})
    log.info("component %s: source %s (%s), budget %s tokens, %d parts %s", c["name"], c["source"],
             c.get("stage", "?"), c["budget"], len(paths), [str(x) for x in paths])
unused = sorted(declared - used)
if unused:
    raise ValueError(f"input.tokens lists parts no component reads: {unused}")

tok = load_tokenizer(snakemake.input.tokenizer)  # noqa: F821
manifest_path = Path(snakemake.output.manifest)  # noqa: F821
if manifest_path.name != "manifest.json":
    raise ValueError(f"output.manifest must be named manifest.json, got {manifest_path}")
log.info("tokenizer %s: vocab %d, eos %d", snakemake.input.tokenizer, len(tok), eos_id(tok))  # noqa: F821
manifest = build_mix(
    components,
    out_dir=manifest_path.parent,
    context_length=int(p.context_length),
    eos_id=eos_id(tok),
    vocab_size=len(tok),
    sequences_per_shard=int(p.sequences_per_shard),
    shuffle_buckets=int(p.shuffle_buckets),
    seed=int(p.seed),
)
for name, c in manifest["components"].items():
    log.info("  %s: %d/%d tokens, %d docs, shortfall %d", name, c["realized_tokens"], c["budget"],
             c["documents"], c["shortfall"])
log.info("wrote %d shards (%d sequences, %d tokens) and %s in %.1fs", len(manifest["shards"]),
         manifest["total_sequences"], manifest["total_tokens"], manifest_path, time.monotonic() - start)
