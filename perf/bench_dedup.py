"""Dedup benchmark: MinHash signature throughput against the peers, and dedup's peak memory.

    .venv/bin/python perf/bench_dedup.py           # the peers installed in the main venv only
    .venv-peers/bin/python perf/bench_dedup.py     # every peer (set-up below)
    .venv-peers/bin/python perf/bench_dedup.py --prose-mib 10 --code-mib 10 --docs 1000 --sizes 20000

The peers live in their own venv, so that they never change the main one (datatrove, for one,
declares numpy>=2 and the main venv pins 1.26.4). Set-up, from the repository root:

    python3 -m venv .venv-peers
    .venv-peers/bin/pip install -r perf/requirements-peers.txt
    .venv-peers/bin/pip install --no-deps datatrove==0.10.1   # its numpy>=2 pin would replace 1.26.4
    .venv-peers/bin/pip install --no-deps -e .

1. Signatures: documents/s and MiB/s, one run, every method on the same documents, from text to
   signature. Two corpora:
   (a) real text the benchmark gathers from this machine, no network: prose (the files of
       /usr/share/doc, gzip ones decompressed, and the .md/.rst/.txt files of the main venv's
       site-packages) and code (the .py files of that site-packages), one file per document, files
       of 256 B to 512 KiB taken in the order of a hash of their path until each budget is met, so
       the same machine gives the same corpus;
   (b) synthetic web-like documents of 50-600 words from a Zipf vocabulary.
   Every method uses 128 permutations (values) and 5-word shingles:
   - Trellis ``compute_signatures`` (parquet part in, ``.npy`` signatures and exact keys out; its
     shingle hashes go to rensa's batch entry point ``RMinHash.digest_matrix_from_flat_token_hashes``):
     the baseline;
   - rensa ``RMinHash`` and ``CMinHash``, one document at a time (``update`` with its shingles);
   - datasketch ``MinHash.bulk`` and the textbook per-document ``MinHash.update`` loop (``affine64``);
   - datatrove's ``MinhashDedupSignature.run`` (its English defaults: text simplification, spaCy
     word tokenizer, xxhash64, 16 buckets x 8 hashes, writing and sorting its bucket files).
   rensa and datasketch get Trellis's shingles (lowercased words split on whitespace, joined by a
   space); datatrove makes its own. The hash functions differ (see the README), so the values are
   not comparable, only the cost. Every method runs on one core: rensa's batch entry point would
   spread a batch over rayon's threads, and ``RAYON_NUM_THREADS`` is set to 1 (``--threads`` to
   change it), as the ``signatures`` rule sets it to its one thread. The slow per-document loops
   (datasketch's and datatrove's) run on an evenly spaced sample of ``--sample-docs`` documents. A
   peer that is not installed is listed as such.
2. Peak resident memory of ``dedup_source`` (in a fresh process per size) for a corpus of N, 2N and
   4N documents in parts of a fixed size, with 10% planted near-duplicates and a fixed
   ``partition_mb``: it should stay flat (bounded by the part and partition sizes), not double.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trellis.curate.signatures import compute_signatures, shingles  # noqa: E402

NUM_PERM, SHINGLE, SEED = 128, 5, 1
PEERS = ["numpy", "pyarrow", "datasketch", "rensa", "datatrove", "spacy", "xxhash"]
MIN_DOC_BYTES, MAX_DOC_BYTES = 256, 512 * 1024
BATCH = 1024  # compute_signatures' default batch, used for the rensa batch row too


def version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def mib(texts: list[str]) -> float:
    return sum(len(t.encode()) for t in texts) / 2**20


# --------------------------------------------------------------------------------------------
# Corpora
# --------------------------------------------------------------------------------------------


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


def site_packages() -> Path | None:
    """The main venv's site-packages (the same files whichever venv runs the benchmark)."""
    found = sorted((ROOT / ".venv/lib").glob("python3*/site-packages"))
    return found[0] if found else None


def _read_text(path: Path) -> str | None:
    """A file's text if it is a plain-text document of an accepted size, else None."""
    if path.suffix == ".gz":
        # Debian compresses changelogs and long READMEs; skip big archives before inflating them.
        if path.stat().st_size > MAX_DOC_BYTES:
            return None
        try:
            data = gzip.decompress(path.read_bytes())
        except (OSError, EOFError):
            return None
    else:
        if not MIN_DOC_BYTES <= path.stat().st_size <= MAX_DOC_BYTES:
            return None
        data = path.read_bytes()
    if not MIN_DOC_BYTES <= len(data) <= MAX_DOC_BYTES or b"\0" in data:
        return None
    return data.decode("utf-8", errors="replace")


def _take(candidates: list[tuple[Path, Path]], budget_bytes: int) -> list[str]:
    """Documents from (root, file) candidates in the order of a hash of the relative path, up to a budget.

    Hash order rather than name order, so that the budget is spread over packages and not spent
    on the first few in the alphabet; the relative path keeps it the same from any checkout.
    """

    def key(item: tuple[Path, Path]) -> bytes:
        root, path = item
        return hashlib.blake2b(str(path.relative_to(root)).encode(), digest_size=8).digest()

    texts, total = [], 0
    for _, path in sorted(candidates, key=key):
        if total >= budget_bytes:
            break
        text = _read_text(path)
        if text is not None:
            texts.append(text)
            total += len(text.encode())
    return texts


def real_texts(prose_mib: float, code_mib: float) -> tuple[list[str], str]:
    """(documents, description): prose and Python source files found on this machine."""
    doc_root, site = Path("/usr/share/doc"), site_packages()
    prose: list[tuple[Path, Path]] = []
    if doc_root.is_dir():
        # Symlinks are skipped: Debian links many packages' docs to one shared copy.
        prose += [
            (doc_root, p)
            for p in doc_root.rglob("*")
            if p.suffix in {"", ".gz", ".txt", ".md", ".rst"} and p.is_file() and not p.is_symlink()
        ]
    code: list[tuple[Path, Path]] = []
    if site is not None:
        prose += [(site, p) for ext in ("md", "rst", "txt") for p in site.rglob(f"*.{ext}") if p.is_file()]
        code = [(site, p) for p in site.rglob("*.py") if p.is_file() and not p.is_symlink()]
    prose_texts = _take(prose, int(prose_mib * 2**20))
    code_texts = _take(code, int(code_mib * 2**20))
    description = (
        f"{len(prose_texts):,} prose files ({mib(prose_texts):.1f} MiB: /usr/share/doc, gzip ones"
        f" decompressed, and the .md/.rst/.txt of {site}) and {len(code_texts):,} Python sources"
        f" ({mib(code_texts):.1f} MiB, .py of the same site-packages); files of {MIN_DOC_BYTES} B"
        f" to {MAX_DOC_BYTES // 1024} KiB in blake2b-of-path order"
    )
    # Interleave prose and code so that a sample taken every k-th document has both.
    mixed = prose_texts + code_texts
    order = sorted(range(len(mixed)), key=lambda i: hashlib.blake2b(str(i).encode(), digest_size=8).digest())
    return [mixed[i] for i in order], description


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


# --------------------------------------------------------------------------------------------
# Signature methods: each takes the documents and computes their signatures, start to finish
# --------------------------------------------------------------------------------------------


def shingle_strings(text: str) -> list[str]:
    """Trellis's shingles of a document as strings: the tokens rensa and datasketch get."""
    return [" ".join(s) for s in shingles(text, SHINGLE)]


def run_trellis(texts: list[str]) -> float:
    # The parquet part is written before the clock starts (the pipeline's raw parts exist already),
    # so this method times itself.
    with tempfile.TemporaryDirectory() as tmp:
        (part,) = write_parts(texts, Path(tmp), len(texts))
        start = time.perf_counter()
        compute_signatures(
            part, Path(tmp) / "sig.npy", NUM_PERM, SHINGLE, SEED, exact_npy=Path(tmp) / "x.npy"
        )
        return time.perf_counter() - start


def run_rensa_r(texts: list[str]) -> None:
    from rensa import RMinHash

    for text in texts:
        m = RMinHash(NUM_PERM, SEED)
        m.update(shingle_strings(text))
        m.digest()


def run_rensa_c(texts: list[str]) -> None:
    from rensa import CMinHash

    for text in texts:
        m = CMinHash(NUM_PERM, SEED)
        m.update(shingle_strings(text))
        m.digest_u64()


def run_datasketch_bulk(texts: list[str]) -> None:
    from datasketch import MinHash

    tokens = ([s.encode() for s in shingle_strings(t)] for t in texts)
    MinHash.bulk(tokens, num_perm=NUM_PERM, seed=SEED, scheme="affine64")


def run_datasketch_loop(texts: list[str]) -> None:
    from datasketch import MinHash

    for text in texts:
        m = MinHash(num_perm=NUM_PERM, seed=SEED, scheme="affine64")
        for s in shingle_strings(text):
            m.update(s.encode())


def run_datatrove(texts: list[str]) -> None:
    from datatrove.data import Document
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
    from loguru import logger

    logger.disable("datatrove")  # one INFO line per bucket otherwise
    config = MinhashConfig(n_grams=SHINGLE, num_buckets=16, hashes_per_bucket=NUM_PERM // 16, seed=SEED)
    with tempfile.TemporaryDirectory() as tmp:
        step = MinhashDedupSignature(tmp, config=config)
        step.run((Document(text=t, id=str(i)) for i, t in enumerate(texts)), rank=0)


# (label, package that must be installed, function, True: runs on the sample only). A function
# that returns its own seconds is timed by itself; the others are timed around the call.
METHODS: list[tuple[str, str, Callable[[list[str]], float | None], bool]] = [
    ("Trellis compute_signatures (with exact keys)", "numpy", run_trellis, False),
    ("rensa RMinHash, one document at a time", "rensa", run_rensa_r, False),
    ("rensa CMinHash, one document at a time", "rensa", run_rensa_c, False),
    ("datasketch MinHash.bulk", "datasketch", run_datasketch_bulk, False),
    ("datasketch per-document MinHash.update loop", "datasketch", run_datasketch_loop, True),
    ("datatrove MinhashDedupSignature (xxhash64, spaCy words)", "datatrove", run_datatrove, True),
]


def available(package: str, function: Callable) -> str | None:
    """None if the method can run here, else why not."""
    if version(package) is None:
        return "not installed"
    if function is run_datatrove and version("xxhash") is None:
        return "xxhash not installed"
    return None


def bench_signatures(title: str, texts: list[str], sample_docs: int) -> None:
    step = max(1, len(texts) // sample_docs)
    sample = texts[::step][:sample_docs]
    words = sum(len(t.split()) for t in texts) / len(texts)
    print(f"\n{title}")
    print(
        f"  {len(texts):,} docs, {mib(texts):.1f} MiB, {words:.0f} words/doc on average;"
        f" sample for the slow loops: one doc in {step}, {len(sample):,} docs, {mib(sample):.1f} MiB"
    )
    print(f"  {NUM_PERM} permutations, {SHINGLE}-word shingles")
    print(f"  {'method':<70} {'docs':>6} {'seconds':>8} {'docs/s':>8} {'MiB/s':>7} {'vs Trellis':>10}")
    trellis_rate = None
    for label, package, function, on_sample in METHODS:
        why_not = available(package, function)
        if why_not:
            print(f"  {label:<70} {why_not:>42}")
            continue
        docs = sample if on_sample else texts
        function(texts[:8])  # warm-up, untimed: imports, spaCy's tokenizer, permutation tables
        start = time.perf_counter()
        own_seconds = function(docs)
        seconds = own_seconds if own_seconds is not None else time.perf_counter() - start
        rate = len(docs) / seconds
        if function is run_trellis:
            trellis_rate = rate
        ratio = f"{rate / trellis_rate:.2f}x" if trellis_rate else "-"
        print(
            f"  {label:<70} {len(docs):>6} {seconds:>8.1f} {rate:>8.0f}"
            f" {mib(docs) / seconds:>7.2f} {ratio:>10}"
        )


# --------------------------------------------------------------------------------------------
# Dedup peak memory
# --------------------------------------------------------------------------------------------

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
    parser.add_argument("--prose-mib", type=float, default=40, help="real-text corpus: prose budget")
    parser.add_argument("--code-mib", type=float, default=40, help="real-text corpus: Python source budget")
    parser.add_argument("--docs", type=int, default=20000, help="synthetic corpus: documents")
    parser.add_argument("--sample-docs", type=int, default=1000, help="documents for the slow loops")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[20000, 40000, 80000], help="corpus sizes for memory"
    )
    parser.add_argument("--part-docs", type=int, default=5000)
    parser.add_argument("--partition-mb", type=float, default=4.0)
    parser.add_argument("--skip-memory", action="store_true", help="signatures only")
    parser.add_argument("--threads", type=int, default=1, help="rayon threads for Trellis's rensa step")
    args = parser.parse_args()
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)  # rayon reads it on first use, which is later
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} CPUs"
        f" ({platform.processor() or platform.machine()}), python {platform.python_version()}, {sys.prefix}"
    )
    print("versions: " + ", ".join(f"{p} {version(p) or 'not installed'}" for p in PEERS))
    print(f"rayon threads (Trellis's rensa step): {os.environ['RAYON_NUM_THREADS']}")
    texts, description = real_texts(args.prose_mib, args.code_mib)
    bench_signatures(f"Signatures, real text: {description}", texts, args.sample_docs)
    del texts
    bench_signatures(
        "Signatures, synthetic text (web-like, 50-600 words from a 30k-word Zipf vocabulary)",
        synthetic_texts(args.docs, 0, dup_fraction=0.0),
        args.sample_docs,
    )
    if not args.skip_memory:
        bench_memory(args.sizes, args.part_docs, args.partition_mb)


if __name__ == "__main__":
    main()
