"""Rule mix: one arm's token budgets -> packed, globally shuffled TKDS shards + manifest.json.

Inputs: ``input.tokenizer`` (the tokenizer directory: EOS id and vocab size) and ``input.parts``,
a flat list of token parts holding each component's parts in order, component after component.
``params.components`` is a list of {name, source, budget, n_parts} in the same order: component i
owns the next n_parts entries of input.parts. The shard directory is the manifest's directory.
"""

import time
from pathlib import Path

from trellis.logs import setup_logging
from trellis.mix import build_mix
from trellis.tokenizer import eos_id, load_tokenizer

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
start = time.monotonic()
p = snakemake.params  # noqa: F821
parts = [Path(x) for x in snakemake.input.parts]  # noqa: F821
specs = list(p.components)
if sum(int(c["n_parts"]) for c in specs) != len(parts):
    raise ValueError(
        f"params.components claims {sum(int(c['n_parts']) for c in specs)} token parts "
        f"but input.parts has {len(parts)}: {[str(x) for x in parts]}"
    )
components, offset = [], 0
for c in specs:
    mine = parts[offset : offset + int(c["n_parts"])]
    offset += int(c["n_parts"])
    # The layout tokens/.../<source>/part-K: a part outside its source's directory means the rule
    # wired the flat list in another order than params.components.
    wrong = [str(x) for x in mine if c["source"] not in x.parts]
    if wrong:
        raise ValueError(f"component {c['name']} (source {c['source']}) got parts of another source: {wrong}")
    components.append({"name": c["name"], "source": c["source"], "budget": int(c["budget"]), "token_paths": mine})
    log.info("component %s: source %s, budget %s tokens, %d parts %s", c["name"], c["source"], c["budget"],
             len(mine), [str(x) for x in mine])

tok = load_tokenizer(snakemake.input.tokenizer)  # noqa: F821
manifest_path = Path(snakemake.output.manifest)  # noqa: F821
if manifest_path.name != "manifest.json":
    raise ValueError(f"output.manifest must be named manifest.json, got {manifest_path}")
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
