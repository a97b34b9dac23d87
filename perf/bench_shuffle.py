"""Peak memory of the mix's external shuffle for 1x, 2x and 4x the corpus, at a fixed buffer.

    .venv/bin/python perf/bench_shuffle.py [--base-mtokens 40] [--buffer-mb 32]

For each size, synthetic token parts (random uint16 tokens, document lengths drawn like web text:
log-normal around ~700 tokens, four parts per source, two sources of which one is sampled and
one upsampled) are written, then ``trellis.tokens.mix.build_mix`` runs in a fresh child process: plan,
select, pack into 2048-token sequences, shuffle in two passes over disk (runs of at most the
buffer, hypergeometric merge) and write 8192-sequence TKDS shards, as the study does. The child's
peak resident memory (``ru_maxrss`` from ``wait4``) is printed beside the corpus size: it should
stay flat as the corpus grows, set by the buffer and one shard, not by the corpus. A last row
repeats the largest corpus with four times the buffer, to show what the memory does follow.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
CONTEXT = 2048
SHARD = 8192
VOCAB = 50304
SCHEMA = pa.schema([("id", pa.string()), ("tokens", pa.list_(pa.uint16())), ("n_tokens", pa.int32())])

CHILD = """
import json, sys
from trellis.tokens.mix import build_mix
args = json.loads(sys.argv[1])
m = build_mix(args["components"], args["out"], context_length=args["ctx"], eos_id=0, vocab_size=args["vocab"],
              sequences_per_shard=args["shard"], shuffle_buffer_mb=args["buffer_mb"], seed=1)
summary = {"sequences": m["total_sequences"], "shards": len(m["shards"]), "runs": m["shuffle"]["runs"]}
print(json.dumps(summary))
"""


def write_parts(root: Path, source: str, tokens: int, parts: int, seed: int) -> list[str]:
    """Token parts of ~``tokens`` tokens, written a row group at a time (bounded memory here too)."""
    rng = np.random.default_rng(seed)
    paths = []
    for k in range(parts):
        path = root / "tokens" / source / f"part-{k}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        left, doc = tokens // parts, 0
        with pq.ParquetWriter(path, SCHEMA) as writer:
            while left > 0:
                lengths = np.clip(rng.lognormal(6.3, 0.9, size=1024).astype(np.int64), 20, 60000)
                lengths = lengths[np.cumsum(lengths) <= left] if lengths.sum() > left else lengths
                if not len(lengths):
                    lengths = np.array([left])
                values = rng.integers(1, VOCAB, size=int(lengths.sum()), dtype=np.uint16)
                offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
                table = pa.table(
                    {
                        "id": pa.array([f"{source}-{k}-{doc + i}" for i in range(len(lengths))]),
                        "tokens": pa.ListArray.from_arrays(offsets, pa.array(values)),
                        "n_tokens": pa.array(lengths.astype(np.int32)),
                    }
                )
                writer.write_table(table)
                doc += len(lengths)
                left -= int(lengths.sum())
        paths.append(str(path))
    return paths


def run(root: Path, scale: int, base_tokens: int, buffer_mb: float) -> dict:
    corpus = root / f"corpus-{scale}x"
    web_tokens, code_tokens = int(base_tokens * scale * 0.75), int(base_tokens * scale * 0.25)
    if not corpus.exists():
        web = write_parts(corpus, "web", web_tokens, 4, seed=scale)
        code = write_parts(corpus, "code", code_tokens, 4, seed=100 + scale)
    else:
        web = sorted(str(p) for p in (corpus / "tokens" / "web").glob("*.parquet"))
        code = sorted(str(p) for p in (corpus / "tokens" / "code").glob("*.parquet"))
    components = [
        {"name": "web", "source": "web", "token_paths": web, "budget": int(web_tokens * 0.9)},  # sampled
        {
            "name": "code",
            "source": "code",
            "token_paths": code,
            "budget": int(code_tokens * 1.5),
            "upsample": True,
        },  # one epoch plus a half
    ]
    args = {
        "components": components,
        "out": str(corpus / f"shards-{buffer_mb}"),
        "ctx": CONTEXT,
        "vocab": VOCAB,
        "shard": SHARD,
        "buffer_mb": buffer_mb,
    }
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"build_mix failed for {scale}x (status {status})")
    result = json.loads(out)
    mix_tokens = components[0]["budget"] + components[1]["budget"]
    return {
        "scale": scale,
        "corpus_mb": (web_tokens + code_tokens) * 2 / 2**20,
        "mix_tokens": mix_tokens,
        "buffer_mb": buffer_mb,
        "peak_mb": usage.ru_maxrss / 1024,
        "seconds": seconds,
        **result,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-mtokens", type=float, default=40, help="corpus tokens at 1x, in millions")
    ap.add_argument("--buffer-mb", type=float, default=32)
    args = ap.parse_args()
    base = int(args.base_mtokens * 1e6)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-shuffle-") as tmp:
        for scale in (1, 2, 4):
            rows.append(run(Path(tmp), scale, base, args.buffer_mb))
        rows.append(run(Path(tmp), 4, base, args.buffer_mb * 4))
    print(
        f"context {CONTEXT}, {SHARD} sequences per shard ({SHARD * CONTEXT * 2 / 2**20:.0f} MiB), "
        f"child process peak RSS (ru_maxrss)"
    )
    print(
        f"{'corpus':>7}{'corpus MiB':>12}{'mix tokens':>13}{'sequences':>11}{'runs':>6}{'shards':>8}"
        f"{'buffer MiB':>12}{'peak MiB':>10}{'seconds':>9}{'Mtok/s':>8}"
    )
    for r in rows:
        print(
            f"{r['scale']:>6}x{r['corpus_mb']:>12.0f}{r['mix_tokens']:>13,}{r['sequences']:>11,}"
            f"{r['runs']:>6}"
            f"{r['shards']:>8}{r['buffer_mb']:>12.0f}{r['peak_mb']:>10.0f}{r['seconds']:>9.1f}"
            f"{r['mix_tokens'] / r['seconds'] / 1e6:>8.1f}"
        )
    flat = rows[:3]
    print(
        f"peak memory from 1x to 4x the corpus: {flat[0]['peak_mb']:.0f} -> {flat[2]['peak_mb']:.0f} MiB "
        f"({flat[2]['peak_mb'] / flat[0]['peak_mb']:.2f}x for 4x the data)"
    )


if __name__ == "__main__":
    main()
