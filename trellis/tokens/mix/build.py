"""One arm's mix end to end (``build_mix``): plan, pack, shuffle, then the shards, mix table, manifest.

Also the names of the shard set's files, and ``ALGORITHM``, the version of the bytes a config
gives, which the work state's fingerprint carries.
"""

from __future__ import annotations

import csv
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from trellis.core.io import atomic_path, write_json
from trellis.tokens.mix.pack import MixStream
from trellis.tokens.mix.seeds import seeded_rng
from trellis.tokens.mix.shuffle import buffer_sequences, merge_runs, write_runs
from trellis.tokens.mix.state import WorkState, fingerprint
from trellis.tokens.tkds import VERSION, write_shard

log = logging.getLogger(__name__)

SHARD_NAME = "shard-{:05d}.tkds"
MANIFEST = "manifest.json"
MIX_TABLE = "mix.csv"
# Bumped whenever a change to this package changes which bytes a given config produces; it is
# part of the work state's fingerprint, so a resumed job never mixes work state of two algorithms.
ALGORITHM = "trellis-mix/2"
MIX_TABLE_COLUMNS = [
    "component",
    "source",
    "stage",
    "upsample",
    "budget",
    "available_tokens",
    "realized_tokens",
    "share",
    "epochs",
    "documents",
    "truncated_documents",
    "shortfall",
]


def write_mix_table(path: Path, components: dict[str, dict[str, Any]]) -> None:
    """The mix table (one row per component) as CSV, for the report."""
    realized = sum(c["realized_tokens"] for c in components.values()) or 1
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=MIX_TABLE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for name, c in components.items():
            writer.writerow(
                {
                    "component": name,
                    "stage": c.get("stage", ""),
                    "share": f"{c['realized_tokens'] / realized:.6f}",
                    **{k: c[k] for k in MIX_TABLE_COLUMNS if k in c},
                }
            )


def build_mix(
    components: list[dict],
    out_dir: str | os.PathLike,
    context_length: int,
    eos_id: int,
    vocab_size: int,
    sequences_per_shard: int,
    shuffle_buffer_mb: float,
    seed: int,
    tokenizer_vocab_size: int | None = None,
) -> dict[str, Any]:
    """Select, pack and shuffle the components into TKDS shards; write and return the manifest.

    ``components``: dicts {name, source, token_paths: list of token parts, budget: tokens,
    upsample: bool (default false), stage (reported)}. ``vocab_size`` goes into each shard header
    (the padded vocabulary the model embeds); ``tokenizer_vocab_size`` (default: the same) is what
    every token read is checked against.
    """
    tokenizer_vocab_size = vocab_size if tokenizer_vocab_size is None else int(tokenizer_vocab_size)
    if sequences_per_shard < 1 or shuffle_buffer_mb <= 0:
        raise ValueError(
            f"sequences_per_shard ({sequences_per_shard}) must be >= 1 and shuffle_buffer_mb "
            f"({shuffle_buffer_mb}) > 0"
        )
    if tokenizer_vocab_size > vocab_size:
        raise ValueError(
            f"the tokenizer has {tokenizer_vocab_size} tokens, more than the shards' vocab_size {vocab_size}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    capacity = buffer_sequences(shuffle_buffer_mb, context_length)
    settings = {
        "context_length": context_length,
        "eos_id": eos_id,
        "vocab_size": vocab_size,
        "tokenizer_vocab_size": tokenizer_vocab_size,
        "sequences_per_shard": sequences_per_shard,
        "buffer_sequences": capacity,
        "seed": seed,
    }
    work = WorkState(out_dir, fingerprint(components, ALGORITHM, **settings))
    record = work.pass1()
    if record is None:
        work.clear_runs()
    # Snakemake removed the old manifest; shards that no journal vouches for are from another mix.
    journaled = {e["file"] for e in work.done.values()}
    for stale in [out_dir / MANIFEST, out_dir / MIX_TABLE, *out_dir.glob("shard-*.tkds")]:
        if stale.exists() and stale.name not in journaled:
            stale.unlink()

    if record is None:
        stream = MixStream(components, context_length, eos_id, tokenizer_vocab_size, seed)
        counts = write_runs(iter(stream), work.dir, context_length, capacity, seeded_rng(seed, 3))
        record = {
            "run_counts": counts,
            "dropped_tail_tokens": stream.dropped_tail_tokens,
            "components": {c.name: c.report() for c in stream.comps},
        }
        if not counts:
            stream_tokens = sum(c["stream_tokens"] for c in record["components"].values())
            raise ValueError(
                f"the mix's {stream_tokens} tokens (EOS included) do not fill one sequence of "
                f"context_length {context_length}: raise the mix.components budgets"
            )
        work.save_pass1(record)
        log.info(
            "pass 1: %d sequences in %d runs of at most %d (%.1fs)",
            sum(counts),
            len(counts),
            capacity,
            time.monotonic() - start,
        )
    else:
        log.info("pass 1 already complete (%d runs): resuming the merge", len(record["run_counts"]))

    shards: list[dict[str, Any]] = []
    reused: list[int] = []

    def write(index: int, rows: np.ndarray) -> None:
        name = SHARD_NAME.format(index)
        digest = write_shard(out_dir / name, rows, vocab_size)
        entry = {"file": name, "sequences": len(rows), "sha256": digest}
        work.record_shard(index, entry)
        shards.append(entry)
        if len(shards) % 100 == 0:
            log.info("pass 2: %d shards written", len(shards))

    def have(index: int) -> bool:
        entry = work.reusable(out_dir, index)
        if entry is not None:
            shards.append(entry)
            reused.append(index)
        return entry is not None

    runs = record["run_counts"]
    merge_runs(work.dir, runs, context_length, sequences_per_shard, seeded_rng(seed, 4), write, have)

    total_sequences = sum(s["sequences"] for s in shards)
    manifest = {
        "format": "TKDS",
        "version": VERSION,
        "context_length": context_length,
        "vocab_size": vocab_size,
        "tokenizer_vocab_size": tokenizer_vocab_size,
        "eos_id": eos_id,
        "seed": seed,
        "token_accounting": "budget and realized_tokens count document tokens, EOS excluded; "
        "stream_tokens = realized_tokens + eos_tokens",
        "total_sequences": total_sequences,
        "total_tokens": total_sequences * context_length,
        "dropped_tail_tokens": record["dropped_tail_tokens"],
        "sequences_per_shard": sequences_per_shard,
        "shuffle": {
            "method": "external two-pass: permuted runs, hypergeometric merge",
            "buffer_sequences": capacity,
            "runs": len(record["run_counts"]),
        },
        "components": record["components"],
        "shards": shards,
    }
    write_mix_table(out_dir / MIX_TABLE, manifest["components"])
    write_json(out_dir / MANIFEST, manifest)
    work.remove()
    log.info(
        "mix: %d sequences (%d tokens) in %d shards (%d kept from a killed run), %d tail tokens "
        "dropped (%.1fs)",
        total_sequences,
        total_sequences * context_length,
        len(shards),
        len(reused),
        record["dropped_tail_tokens"],
        time.monotonic() - start,
    )
    return manifest
