"""Tokenize one document part into a token part: id, tokens, n_tokens per document.

The output is the mix stage's input: the token ids plus a document index. Token ids are stored as
``list<uint16>`` when the vocabulary fits (it does for the demo BPE and for GPT-NeoX's 50,277
tokens), halving the size of uint32; ``id`` and ``n_tokens`` are the document index, which lets
the mix plan budgets from one small column without reading token lists.

Speed: each batch goes through ``tokenizers``' own batch encoder in one call (Rust, parallel over
the batch on ``RAYON_NUM_THREADS`` threads; ``encode_batch_fast`` where the installed version has
it, which skips character offsets we never use). What is left in Python is moving the ids out:
``Encoding.ids`` lists are chained into one numpy array per batch (``np.fromiter``, no per-document
arrays) and handed to Arrow as one list column, while the next batch is already being encoded on
a helper thread. ``perf/bench_tokenize.py`` measures this
against the bare encoder on the same text.

No special tokens are added: the EOS separator is the packer's job, so a document's tokens are
exactly its text. Documents with no tokens (empty text) are not written and are counted as
``skipped_empty``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from trellis.core.io import ParquetWriter, count_rows, iter_batches
from trellis.core.logs import progress
from trellis.core.stats import StepStats

log = logging.getLogger(__name__)


def token_dtype(vocab_size: int):
    return np.uint16 if vocab_size <= 65536 else np.uint32


def token_schema(vocab_size: int) -> pa.Schema:
    value = pa.uint16() if vocab_size <= 65536 else pa.uint32()
    return pa.schema([("id", pa.string()), ("tokens", pa.list_(value)), ("n_tokens", pa.int32())])


def load_backend(tokenizer_dir: str | os.PathLike):
    """The saved tokenizer's ``tokenizers.Tokenizer`` (what the transformers tokenizer wraps).

    Loaded from ``tokenizer.json`` directly: a tokenize job then never imports transformers,
    seconds of start-up per part (tests check the ids equal the transformers tokenizer's).
    """
    from tokenizers import Tokenizer

    path = Path(tokenizer_dir) / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(f"{tokenizer_dir}: no tokenizer.json (not a saved fast tokenizer)")
    return Tokenizer.from_file(str(path))


def batch_encoder(backend):
    """The tokenizer's fastest batch call: ``encode_batch_fast`` (no offsets) or ``encode_batch``."""
    return getattr(backend, "encode_batch_fast", None) or backend.encode_batch


def encoded_batches(
    part_path: Path, encode, batch_size: int
) -> Iterator[tuple[list[str], list[str | None], list[int], list]]:
    """(ids, texts, indices of non-empty texts, their encodings) per batch of the part.

    The next batch is read and encoded on a helper thread while the caller converts and writes
    this one: the Rust encoder releases the GIL, so on a machine with cores to spare the
    Python-side work hides behind it instead of adding to it. Two batches in memory at most.
    """

    def read_and_encode(batch) -> tuple[list[str], list[str | None], list[int], list]:
        ids = batch.column("id").to_pylist()
        texts = batch.column("text").to_pylist()
        nonempty = [i for i, t in enumerate(texts) if t]
        return ids, texts, nonempty, encode([texts[i] for i in nonempty], add_special_tokens=False)

    batches = iter_batches(part_path, ["id", "text"], batch_size)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for batch in batches:
            submitted = pool.submit(read_and_encode, batch)
            if pending is not None:
                yield pending.result()
            pending = submitted
        if pending is not None:
            yield pending.result()


def tokenize_part(
    tokenizer_dir: str | os.PathLike,
    part_path: str | os.PathLike,
    out_path: str | os.PathLike,
    batch_size: int = 1024,
) -> dict[str, Any]:
    """Stream ``part_path`` in batches through the Rust tokenizer and write the token part."""
    backend = load_backend(tokenizer_dir)
    encode = batch_encoder(backend)
    vocab_size = backend.get_vocab_size(with_added_tokens=True)
    dtype = token_dtype(vocab_size)
    schema = token_schema(vocab_size)
    part_path = Path(part_path)
    # Characters, not tokens: the part's token count is the extra ``tokens`` key below.
    tally = StepStats(
        f"tokenize/{part_path.parent.name}/{part_path.name}",
        unit="chars",
        reasons=("skipped_empty",),
        drop_sizes=False,
        timed=True,
    )
    tokens_total = 0
    start = time.monotonic()
    bar = progress(total=count_rows(part_path), desc="tokenize", unit="docs", logger=log)
    with ParquetWriter(out_path, schema) as writer:
        for ids, texts, nonempty, encodings in encoded_batches(part_path, encode, batch_size):
            bar.update(len(ids))  # the batch arrives encoded: its costly part is done
            for t in texts:
                tally.seen(t)
            token_lists = [e.ids for e in encodings]
            keep = [k for k, toks in enumerate(token_lists) if toks]
            tally.drop("skipped_empty", docs=len(texts) - len(keep))
            if not keep:
                continue
            token_lists = [token_lists[k] for k in keep]
            lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
            n = int(lengths.sum())
            # The vocabulary fits ``dtype`` (token_dtype), so no id can wrap on the way in.
            values = np.fromiter(chain.from_iterable(token_lists), dtype=dtype, count=n)
            top = int(values.max())
            if top >= vocab_size:
                first = int(np.argmax(values >= vocab_size))
                doc = ids[nonempty[keep[int(np.searchsorted(np.cumsum(lengths), first, side="right"))]]]
                raise ValueError(f"{part_path}: id {doc!r} encoded to token {top} >= vocab {vocab_size}")
            for k in keep:
                tally.kept(texts[nonempty[k]])
            # One batch holds far fewer than 2**31 tokens, so int32 list offsets suffice.
            offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
            value_type = schema.field("tokens").type.value_type
            tokens = pa.ListArray.from_arrays(offsets, pa.array(values, type=value_type))
            doc_ids = pa.array([ids[nonempty[k]] for k in keep], pa.string())
            n_tokens = pa.array(lengths.astype(np.int32))
            writer.write_table(pa.table({"id": doc_ids, "tokens": tokens, "n_tokens": n_tokens}))
            tokens_total += n
    bar.close()
    seconds = time.monotonic() - start
    stats = tally.to_dict()
    stats.update(
        tokens=tokens_total,
        vocab_size=vocab_size,
        token_dtype=np.dtype(dtype).name,
        docs_per_second=round(tally.docs_in / seconds, 1) if seconds > 0 else None,
        tokens_per_second=round(tokens_total / seconds, 1) if seconds > 0 else None,
    )
    log.info("%s: %d tokens", tally.summary(), tokens_total)
    return stats
