"""Dedup benchmark: signature throughput against datasketch, and dedup's peak memory as the corpus grows.

    .venv/bin/python perf/bench_dedup.py       # defaults: 2,000 docs for speed; 20k/40k/80k for memory
    .venv/bin/python perf/bench_dedup.py --docs 5000 --sizes 20000 40000 80000

1. Signatures/s on one synthetic corpus (web-like documents of 50-600 words), computed three ways:
   trellis.curate.signatures.compute_signatures (vectorized over a batch), datasketch's plain per-document
   loop (``MinHash().update`` per shingle, the textbook use) and datasketch's batch API
   (``MinHash.generator``, which calls ``update_batch`` per document). Signatures of the trellis path
   equal datasketch's with the same shingle hash (tests/curate/test_signatures.py), so this is like for like.
2. Peak resident memory of ``dedup_source`` (in a fresh process per size) for a corpus of N, 2N and
   4N documents in parts of a fixed size, with 10% planted near-duplicates and a fixed
   ``partition_mb``: it should stay flat (bounded by the part and partition sizes), not double.
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
sys.path.insert(0, str(ROOT))

from datasketch import MinHash  # noqa: E402

from trellis.curate.signatures import compute_signatures, normalized_words  # noqa: E402

NUM_PERM, SHINGLE, SEED = 128, 5, 1


def synthetic_texts(n: int, seed: int, dup_fraction: float = 0.1) -> list[str]:
    """Documents from a 30k-word Zipf vocabulary; ``dup_fraction`` of them are near-copies of others."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(30000)])
    weights = 1.0 / np.arange(1, len(vocab) + 1)
    weights /= weights.sum()
    texts = [" ".join(rng.choice(vocab, size=int(rng.integers(50, 600)), p=weights)) for _ in range(n)]
    for i in rng.choice(n, size=int(n * dup_fraction), replace=False):
        words = texts[int(rng.integers(0, n))].split()
        for j in rng.choice(len(words), size=max(1, len(words) // 50), replace=False):
            words[j] = "edited"
        texts[i] = " ".join(words)
    return texts


def write_parts(texts: list[str], root: Path, part_docs: int) -> list[Path]:
    paths = []
    for k, start in enumerate(range(0, len(texts), part_docs)):
        chunk = texts[start : start + part_docs]
        path = root / f"raw/part-{k}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        ids = [f"doc-{start + i}" for i in range(len(chunk))]
        pq.write_table(
            pa.table(
                {
                    "id": ids,
                    "text": chunk,
                    "n_tokens": [len(t.split()) for t in chunk],
                    "priority": np.ones(len(chunk), np.float32),
                }
            ),
            path,
            row_group_size=2048,
        )
        paths.append(path)
    return paths


def bench_signatures(n: int, loop_docs: int) -> None:
    texts = synthetic_texts(n, 0, dup_fraction=0.0)
    with tempfile.TemporaryDirectory() as tmp:
        (part,) = write_parts(texts, Path(tmp), n)
        t = time.perf_counter()
        compute_signatures(
            part, Path(tmp) / "sig.npy", NUM_PERM, SHINGLE, SEED, exact_npy=Path(tmp) / "exact.npy"
        )
        ours = n / (time.perf_counter() - t)

    def shingle_bytes(text):
        words = normalized_words(text)
        return {" ".join(words[i : i + SHINGLE]).encode() for i in range(max(len(words) - SHINGLE + 1, 1))}

    sample = texts[:loop_docs]
    t = time.perf_counter()
    for text in sample:
        m = MinHash(num_perm=NUM_PERM, seed=SEED, scheme="affine64")
        for s in shingle_bytes(text):
            m.update(s)
    loop = len(sample) / (time.perf_counter() - t)
    t = time.perf_counter()
    for _ in MinHash.generator(
        [shingle_bytes(x) for x in sample], num_perm=NUM_PERM, seed=SEED, scheme="affine64"
    ):
        pass
    batch = len(sample) / (time.perf_counter() - t)
    words = sum(len(x.split()) for x in texts) / n
    print(
        f"\nSignatures ({NUM_PERM} permutations, {SHINGLE}-word shingles, {words:.0f} words/doc on average)"
    )
    print(f"  {'method':<58} {'docs/s':>9} {'vs loop':>8}")
    for name, rate in [
        (f"datasketch MinHash.update per shingle ({len(sample)} docs)", loop),
        (f"datasketch MinHash.generator batch API ({len(sample)} docs)", batch),
        (f"trellis compute_signatures ({n} docs, incl. exact keys)", ours),
    ]:
        print(f"  {name:<58} {rate:>9.0f} {rate / loop:>7.1f}x")


# The child reads its peak from VmHWM (the high-water mark of its own address space): ru_maxrss
# would also count the parent's memory at fork, which Linux carries across exec.
CHILD = """
import json, sys
sys.path.insert(0, {root!r})
from trellis.curate.dedup import dedup_source
import scipy.sparse.csgraph  # imported by the clustering step; counted in the baseline

def hwm_kb():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))

args = json.loads(sys.argv[1])
base = hwm_kb()
stats = dedup_source(**args)
print(json.dumps({{"base_kb": base, "peak_kb": hwm_kb(), "stats": stats}}))
"""


def bench_memory(sizes: list[int], part_docs: int, partition_mb: float) -> None:
    print(
        f"\nDedup peak memory (parts of {part_docs} docs, partition_mb={partition_mb}, 10% near-duplicates;"
        " one fresh process per size)"
    )
    print(
        f"  {'docs':>8} {'parts':>6} {'partitions':>10} {'dropped':>8} {'seconds':>8} {'peak RSS MiB':>13}"
        f" {'above imports':>14}"
    )
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            raws = write_parts(synthetic_texts(n, 1), root, part_docs)  # the texts are freed here
            sigs, exacts, outs = [], [], []
            for k, raw in enumerate(raws):
                sigs.append(root / f"minhash/part-{k}.npy")
                exacts.append(root / f"minhash/part-{k}.exact.npy")
                outs.append(root / f"dedup/part-{k}.parquet")
                compute_signatures(raw, sigs[-1], NUM_PERM, SHINGLE, SEED, exact_npy=exacts[-1])
            args = {
                "filtered_paths": list(map(str, raws)),
                "raw_paths": list(map(str, raws)),
                "signature_paths": list(map(str, sigs)),
                "exact_paths": list(map(str, exacts)),
                "out_paths": list(map(str, outs)),
                "num_perm": NUM_PERM,
                "threshold": 0.8,
                "partition_mb": partition_mb,
                "work_dir": tmp,
            }
            t = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-c", CHILD.format(root=str(ROOT)), json.dumps(args)],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )
            seconds = time.perf_counter() - t
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            st = result["stats"]
            dropped = sum(st["dropped"].values())
            print(
                f"  {n:>8} {len(raws):>6} {st['partitions']:>10} {dropped:>8} {seconds:>8.1f}"
                f" {result['peak_kb'] / 1024:>13.0f} {(result['peak_kb'] - result['base_kb']) / 1024:>14.0f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=2000, help="documents for the signature benchmark")
    parser.add_argument("--loop-docs", type=int, default=300, help="documents for datasketch's (slow) loops")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[20000, 40000, 80000], help="corpus sizes for memory"
    )
    parser.add_argument("--part-docs", type=int, default=5000)
    parser.add_argument("--partition-mb", type=float, default=4.0)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}, numpy {np.__version__}")
    bench_signatures(args.docs, args.loop_docs)
    bench_memory(args.sizes, args.part_docs, args.partition_mb)


if __name__ == "__main__":
    main()
