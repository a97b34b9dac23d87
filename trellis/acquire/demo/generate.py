"""Entry points of the demo corpus: ``generate_source`` writes one source, ``generate_rows`` returns it.

``GENERATORS`` maps each source key of config ``sources:`` to its generator, one module per
source. A generator is ``(rng, n_docs, n_files, seed, topics) -> {relative file path: rows}`` and
gets its own stream from ``source_rng(seed, source)``, so changing one source never shifts
another's output.

A generator builds one source's rows in memory before anything is written: it has to, to place a
near-duplicate in a different file than its original, and a demo source is a few megabytes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from trellis.acquire.demo.common import source_rng
from trellis.acquire.demo.finemath import gen_finemath
from trellis.acquire.demo.fineweb_edu import gen_fineweb_edu
from trellis.acquire.demo.native import _write_native
from trellis.acquire.demo.pes2o import gen_pes2o
from trellis.acquire.demo.stackexchange import gen_stackexchange
from trellis.acquire.demo.starcoderdata import gen_starcoderdata
from trellis.acquire.demo.structured_wikipedia import gen_structured_wikipedia
from trellis.acquire.demo.text_to_sql import gen_text_to_sql
from trellis.acquire.demo.ultrachat import gen_ultrachat
from trellis.acquire.demo.wikipedia import gen_wikipedia

SOURCES = (
    "fineweb_edu",
    "starcoderdata",
    "finemath",
    "pes2o",
    "structured_wikipedia",
    "wikipedia",
    "stackexchange",
    "ultrachat",
    "text_to_sql",
)

GENERATORS: dict[str, Callable] = {
    "fineweb_edu": gen_fineweb_edu,
    "starcoderdata": gen_starcoderdata,
    "finemath": gen_finemath,
    "pes2o": gen_pes2o,
    "structured_wikipedia": gen_structured_wikipedia,
    "wikipedia": gen_wikipedia,
    "stackexchange": gen_stackexchange,
    "ultrachat": gen_ultrachat,
    "text_to_sql": gen_text_to_sql,
}


def generate_rows(
    source: str, n_docs: int, n_files: int, seed: int, topics: list[dict] | None = None
) -> dict[str, list[dict]]:
    """The source's native rows per relative file path, before writing.

    Rows carry private ``_``-prefixed keys (``_planted``: original / near_duplicate /
    exact_duplicate / code / boilerplate..., ``_of``: the original's index) that the writers drop;
    tests use them to find what was planted.
    """
    if source not in GENERATORS:
        raise ValueError(f"no demo generator for source {source!r}; known: {sorted(GENERATORS)}")
    if n_docs < 1 or n_files < 1:
        raise ValueError(f"{source}: demo needs n_docs >= 1 and n_files >= 1 (got {n_docs}, {n_files})")
    if n_files > n_docs:
        raise ValueError(f"{source}: {n_files} files for {n_docs} documents would leave files empty")
    rng = source_rng(seed, source)
    return GENERATORS[source](rng, n_docs, n_files, seed, list(topics or []))


def generate_source(
    source: str, n_docs: int, n_files: int, seed: int, topics: list[dict] | None, out_dir: str | Path
) -> list[str]:
    """Write one demo source's native files under ``out_dir``; return their relative paths, sorted.

    ``n_files`` is the file count for flat layouts; sources laid out one directory per language
    (starcoderdata) or per site (stackexchange) get at least one file per directory, so they may
    have more files than ``n_files`` (never fewer, so ``parts <= n_files`` always has work).
    """
    out_dir = Path(out_dir)
    files = generate_rows(source, n_docs, n_files, seed, topics)
    for rel, rows in files.items():
        rows = [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows]
        _write_native(source, out_dir / rel, rows)
    return sorted(files)
