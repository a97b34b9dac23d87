"""Tokenize one document part into a token part: id, tokens, n_tokens per document.

The output is the mix stage's input. Token ids are stored as ``list<uint16>`` when the vocabulary
fits (it does for the demo BPE and for GPT-NeoX's 50,277 tokens), halving the size of uint32;
``n_tokens`` lets the mix plan budgets from one small column without reading token lists.

No special tokens are added: the EOS separator is the packer's job, so a document's tokens are
exactly its text. Documents with no tokens (empty text) are not written and are counted as
``skipped_empty``.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from trellis.io import ParquetWriter, iter_batches
from trellis.tally import Tally
from trellis.tokenizer import load_tokenizer

log = logging.getLogger(__name__)


def token_dtype(vocab_size: int):
    return np.uint16 if vocab_size <= 65536 else np.uint32


def token_schema(vocab_size: int) -> pa.Schema:
    value = pa.uint16() if vocab_size <= 65536 else pa.uint32()
    return pa.schema([("id", pa.string()), ("tokens", pa.list_(value)), ("n_tokens", pa.int32())])


def tokenize_part(
    tokenizer_dir: str | os.PathLike,
    part_path: str | os.PathLike,
    out_path: str | os.PathLike,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Stream ``part_path`` in batches through the Rust tokenizer and write the token part."""
    tok = load_tokenizer(tokenizer_dir)
    backend = tok.backend_tokenizer  # tokenizers.Tokenizer: encode_batch runs in parallel in Rust
    vocab_size = len(tok)
    dtype = token_dtype(vocab_size)
    schema = token_schema(vocab_size)
    part_path = Path(part_path)
    tally = Tally(f"tokenize/{part_path.parent.name}/{part_path.name}")
    tally.dropped["skipped_empty"] += 0
    tokens_total = 0
    start = time.monotonic()
    with ParquetWriter(out_path, schema) as writer:
        for batch in iter_batches(part_path, ["id", "text"], batch_size):
            ids = batch.column("id").to_pylist()
            texts = batch.column("text").to_pylist()
            for t in texts:
                tally.seen(t)
            nonempty = [i for i, t in enumerate(texts) if t]
            encodings = backend.encode_batch([texts[i] for i in nonempty], add_special_tokens=False)
            keep_ids, arrays = [], []
            for i, enc in zip(nonempty, encodings):
                if not enc.ids:
                    continue
                arr = np.asarray(enc.ids, dtype=np.int64)
                if arr.max() >= vocab_size:
                    raise ValueError(f"{part_path}: id {ids[i]!r} encoded to token {arr.max()} >= vocab {vocab_size}")
                keep_ids.append(ids[i])
                arrays.append(arr.astype(dtype))
                tally.kept(texts[i])
            tally.dropped["skipped_empty"] += len(texts) - len(keep_ids)
            if not keep_ids:
                continue
            lengths = np.array([len(a) for a in arrays], dtype=np.int32)
            # One batch holds far fewer than 2**31 tokens, so int32 list offsets suffice.
            offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
            values = pa.array(np.concatenate(arrays), type=schema.field("tokens").type.value_type)
            tokens = pa.ListArray.from_arrays(offsets, values)
            table = pa.table({"id": pa.array(keep_ids, pa.string()), "tokens": tokens, "n_tokens": pa.array(lengths)})
            writer.write_table(table)
            tokens_total += int(lengths.sum())
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
