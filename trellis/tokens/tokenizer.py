"""The pretraining tokenizer: a byte-level BPE trained on the corpus, or a pretrained one.

The study uses the GPT-NeoX tokenizer of EleutherAI/pythia-410m-deduped (session 9: shared
token counts with the Pythia baseline); the offline demo trains a small byte-level BPE of the
same kind on the demo corpus. Either way the result is a directory that
``transformers.PreTrainedTokenizerFast.from_pretrained`` loads, with an EOS token (the document
separator in packing) and a pad token (SFT/DPO batches).

Special tokens of a trained tokenizer, ids in this order: ``<|endoftext|>`` (0; EOS and BOS, as in
GPT-NeoX), ``<|padding|>`` (pad), ``[CLS]``, ``[SEP]``, ``[MASK]`` (the classifiers' ModernBERT
heads use these).
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from trellis.core.io import atomic_directory, iter_batches

log = logging.getLogger(__name__)

EOS = "<|endoftext|>"
PAD = "<|padding|>"
CLS, SEP, MASK = "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = [EOS, PAD, CLS, SEP, MASK]


def _source_of(path: Path) -> str:
    # raw/<source>/part-K.parquet: the directory names the source (cheaper than reading a column).
    return path.parent.name


def sample_plan(
    part_paths: Sequence[str | os.PathLike], docs_per_source: int, seed: int
) -> dict[Path, np.ndarray]:
    """Which rows of which part to train on: ``docs_per_source`` per source, evenly over its parts.

    Deterministic in (part list, row counts, seed). Returns part -> sorted row indices. A part
    with fewer rows than its share gives all it has (its source is then under-sampled, logged).
    """
    by_source: dict[str, list[Path]] = defaultdict(list)
    for p in part_paths:
        by_source[_source_of(Path(p))].append(Path(p))
    plan: dict[Path, np.ndarray] = {}
    for source in sorted(by_source):
        parts = sorted(by_source[source], key=lambda p: p.name)
        base, extra = divmod(docs_per_source, len(parts))
        taken = 0
        for i, part in enumerate(parts):
            want = base + (1 if i < extra else 0)
            rows = pq.ParquetFile(part).metadata.num_rows
            # Seeded per (seed, source, part) so adding a source does not reshuffle the others.
            rng = np.random.default_rng([seed, *source.encode(), i])
            chosen = (
                np.sort(rng.choice(rows, size=min(want, rows), replace=False)) if rows else np.array([], int)
            )
            plan[part] = chosen
            taken += len(chosen)
        if taken < docs_per_source:
            log.warning(
                "tokenizer sample: %s has only %d of %d requested documents", source, taken, docs_per_source
            )
    return plan


def iter_sample_texts(plan: dict[Path, np.ndarray]) -> Iterator[str]:
    """Stream the planned rows' texts, one part at a time (never a whole part in memory)."""
    for part, rows in plan.items():
        if len(rows) == 0:
            continue
        offset = 0
        cursor = 0
        for batch in iter_batches(part, ["text"]):
            end = offset + batch.num_rows
            texts = None
            while cursor < len(rows) and rows[cursor] < end:
                if texts is None:
                    texts = batch.column("text").to_pylist()
                text = texts[rows[cursor] - offset]
                if text:
                    yield text
                cursor += 1
            offset = end
            if cursor == len(rows):
                break


def train_bpe(
    part_paths: Sequence[str | os.PathLike],
    vocab_size: int,
    docs_per_source: int,
    out_dir: str | os.PathLike,
    seed: int,
    model_max_length: int = 2048,
) -> dict:
    """Train a byte-level BPE on a deterministic document sample and save it for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size <= len(SPECIAL_TOKENS) + 256:
        raise ValueError(
            f"vocab_size {vocab_size} leaves no room for merges (256 bytes + {len(SPECIAL_TOKENS)} specials)"
        )
    plan = sample_plan(part_paths, docs_per_source, seed)
    tok = Tokenizer(models.BPE(unk_token=None))
    # add_prefix_space=False: a document's first word is not rewritten (GPT-2/NeoX behaviour).
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,  # ids 0..4 in this order
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte is encodable: no UNK
        show_progress=False,
    )
    counted = {"documents": 0, "chars": 0}

    def texts() -> Iterator[str]:
        for text in iter_sample_texts(plan):
            counted["documents"] += 1
            counted["chars"] += len(text)
            yield text

    tok.train_from_iterator(texts(), trainer=trainer)
    if tok.token_to_id(EOS) != 0:
        raise RuntimeError(f"{EOS} did not get id 0 (got {tok.token_to_id(EOS)})")
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS,
        bos_token=EOS,
        pad_token=PAD,
        cls_token=CLS,
        sep_token=SEP,
        mask_token=MASK,
        model_max_length=model_max_length,
    )
    _save(fast, out_dir)
    stats = {
        "kind": "train",
        "vocab_size": len(fast),
        "requested_vocab_size": vocab_size,
        "parts": len(plan),
        "documents": counted["documents"],
        "chars": counted["chars"],
        "seed": seed,
    }
    log.info("trained byte-level BPE: %s", stats)
    return stats


def fetch_pretrained(repo: str, out_dir: str | os.PathLike, revision: str | None = None) -> dict:
    """Download (or load from a local path) a pretrained tokenizer; ensure it has a pad token.

    GPT-NeoX ships ``<|padding|>`` in its vocabulary but does not declare it as the pad token;
    we use it when present, else fall back to EOS (pad positions are masked anyway).
    """
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(repo, revision=revision)
    if not getattr(tok, "is_fast", False):
        raise TypeError(f"{repo}: tokenizer is not a fast (tokenizers-backed) tokenizer")
    if tok.eos_token_id is None:
        raise ValueError(f"{repo}: tokenizer has no EOS token; packing needs one as the document separator")
    if tok.pad_token is None:
        tok.pad_token = PAD if PAD in tok.get_vocab() else tok.eos_token
    _save(tok, out_dir)
    stats = {
        "kind": "pretrained",
        "repo": repo,
        "revision": revision,
        "vocab_size": len(tok),
        "eos_id": tok.eos_token_id,
        "pad_token": tok.pad_token,
    }
    log.info("fetched pretrained tokenizer: %s", stats)
    return stats


def _save(tok, out_dir: str | os.PathLike) -> None:
    # save_pretrained writes several files: never leave a half-written tokenizer directory.
    with atomic_directory(out_dir) as tmp:
        tok.save_pretrained(str(tmp))


def load_tokenizer(directory: str | os.PathLike):
    """The saved tokenizer as a ``PreTrainedTokenizerFast`` (local files only)."""
    from transformers import PreTrainedTokenizerFast

    directory = Path(directory)
    if not (directory / "tokenizer.json").exists():
        raise FileNotFoundError(f"{directory}: no tokenizer.json (not a saved fast tokenizer)")
    return PreTrainedTokenizerFast.from_pretrained(str(directory))


def eos_id(tok) -> int:
    if tok.eos_token_id is None:
        raise ValueError("tokenizer has no EOS token")
    return int(tok.eos_token_id)
