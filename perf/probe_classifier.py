"""Scoring probe: tokens/s of a classifier as the study scores documents, eager and compiled.

Runs the scoring code itself: ``trellis.classifiers.model.predict_logits`` (documents sorted by
length, padded per batch, bf16 autocast on CUDA, fp32 weights as a saved classifier loads) on
windows of ``trellis.classifiers.score.WINDOW_ROWS`` documents, one call per window as
``score_part`` makes it, at the config's ``scoring.batch_size`` and ``classifiers.max_length``.
tokens/s counts real tokens (the documents' own, after truncation), not padding; the padded rate
and the padding share are printed beside it.

No download: the model is built from a config with random weights. With ``classifiers.base_model``
set (study: answerdotai/ModernBERT-base) it has the base model's shape, from its published
config.json (BASE_SHAPES); with none (the demo) the config's ``classifiers.tiny`` shape, as
training builds it. The head is the topic task's (17 sigmoid outputs in the study), the widest
head; its cost next to the encoder is nil. The attention implementation is transformers' default,
which is what ``load_classifier`` gets (``from_pretrained`` without ``attn_implementation``); it is
printed. Scoring does not compile; the compiled row shows what ``torch.compile`` would give.

Document lengths: a log-normal in tokens, median 600 and sigma 1.0 by default (mean ~990 tokens:
FineWeb-Edu's and StarCoderData's documents run to about a thousand tokens on average, with a long
tail), cut at max_length as ``encode_texts`` truncates. At the study's 512 about 60% of documents
are truncated, so most batches are full width. Token ids are random.

  # here (CPU): the demo's tiny classifier, a few windows
  .venv/bin/python perf/probe_classifier.py
  # one GPU, the study's ModernBERT-base shape at max_length 512, batch 256
  python perf/probe_classifier.py --configfile config/study.yaml --compile off on --out classifier.json

A setting that runs out of GPU memory is reported as OOM and the probe goes on.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from perf.probe_common import optional, save_rows, switch
from trellis.classifiers.model import predict_logits
from trellis.classifiers.score import WINDOW_ROWS
from trellis.classifiers.train import tiny_config
from trellis.core.tasks import build_tasks

# Shape of each base model the probe can stand in for, from the repository's config.json on the
# hub (nothing is downloaded here). ModernBERT-base: 149M parameters, local attention (128
# tokens) in two of every three layers, mean pooling in its sequence classifier.
BASE_SHAPES = {
    "answerdotai/ModernBERT-base": dict(
        vocab_size=50368,
        hidden_size=768,
        num_hidden_layers=22,
        num_attention_heads=12,
        intermediate_size=1152,
        max_position_embeddings=8192,
        global_attn_every_n_layers=3,
        local_attention=128,
        pad_token_id=50283,
        cls_token_id=50281,
        sep_token_id=50282,
        bos_token_id=50281,
        eos_token_id=50282,
        classifier_pooling="mean",
    ),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--configfile",
        type=Path,
        default=ROOT / "config" / "config.yaml",
        help="workflow config whose classifiers and scoring sections are probed",
    )
    parser.add_argument(
        "--windows",
        type=int,
        default=None,
        help=f"timed windows of {WINDOW_ROWS} documents per setting (default: 8 on a GPU, 1 on CPU)",
    )
    parser.add_argument(
        "--warmup", type=int, default=None, help="untimed windows first (default: 2 on a GPU, 1 on CPU)"
    )
    parser.add_argument(
        "--window-rows",
        type=int,
        default=WINDOW_ROWS,
        help="documents per window (default: scoring's own; smaller only for a quick check)",
    )
    parser.add_argument(
        "--batch-size", type=int, nargs="+", default=None, help="batch sizes (default: scoring.batch_size)"
    )
    parser.add_argument(
        "--max-length", type=int, default=None, help="tokens per document at most (default: the config's)"
    )
    parser.add_argument(
        "--compile", type=switch, nargs="+", default=None, help="torch.compile (default: off on; CPU: off)"
    )
    parser.add_argument("--median-tokens", type=float, default=600.0, help="median document length")
    parser.add_argument("--sigma", type=float, default=1.0, help="sigma of log(document length)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")
    return parser.parse_args(argv)


def classifier_config(config: dict, max_length: int):
    """The ModernBertConfig scoring's model has: the base model's shape, or the demo's tiny one."""
    from transformers import ModernBertConfig

    section = config["classifiers"]
    topic = build_tasks(config)["topic"]
    head = dict(num_labels=topic.num_outputs, problem_type="multi_label_classification")
    base = section.get("base_model")
    if base:
        if base not in BASE_SHAPES:
            raise KeyError(
                f"classifiers.base_model {base!r}: its shape is not known here "
                f"(known: {sorted(BASE_SHAPES)}); add it to BASE_SHAPES from the model's config.json"
            )
        return ModernBertConfig(**BASE_SHAPES[base], **head)
    # As trellis.classifiers.train builds a classifier from scratch: the project's tokenizer's
    # vocabulary (ids 0-2 stand in for its pad, [CLS] and [SEP]), positions up to max_length.
    vocab_size = int(config["tokenizer"]["vocab_size"])
    return tiny_config(section["tiny"], vocab_size, max_length, special_ids=(0, 1, 2), **head)


def document_lengths(n: int, max_length: int, median: float, sigma: float, rng) -> np.ndarray:
    """Token counts of ``n`` documents: log-normal, truncated to max_length as encode_texts does."""
    lengths = np.round(rng.lognormal(np.log(median), sigma, size=n)).astype(int)
    return np.clip(lengths, 3, max_length)  # at least [CLS], one token, [SEP]


def make_window(lengths: np.ndarray, model_config, rng) -> list[list[int]]:
    """Encoded documents as encode_texts returns them: [CLS] ids... [SEP], random ids between."""
    low = 3 if model_config.vocab_size < 1000 else 100  # clear of the special ids
    return [
        [model_config.cls_token_id, *rng.integers(low, model_config.vocab_size, n - 2).tolist()]
        + [model_config.sep_token_id]
        for n in lengths
    ]


def padded_tokens(lengths: np.ndarray, batch_size: int) -> int:
    """Positions predict_logits runs: each length-sorted batch padded to its longest document."""
    ordered = np.sort(lengths)
    return int(sum(len(b) * b.max() for b in np.split(ordered, range(batch_size, len(ordered), batch_size))))


def probe_one(
    model_config,
    device: torch.device,
    compiled: bool,
    batch_size: int,
    windows: list[list[list[int]]],
    warmup: int,
    max_length: int,
) -> dict:
    """Score ``warmup`` untimed windows, then the rest timed; returns tokens/s and peak memory."""
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    with device:
        model = AutoModelForSequenceClassification.from_config(model_config)
    model.eval()
    attention = model.config._attn_implementation
    if compiled:
        # Widths change from batch to batch: mark them dynamic at once instead of recompiling.
        model = torch.compile(model, dynamic=True)
    cuda = device.type == "cuda"
    pad_id = model_config.pad_token_id

    t0 = time.perf_counter()
    for window in windows[:warmup]:
        predict_logits(model, window, pad_id, batch_size, device)
    warmup_s = time.perf_counter() - t0
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    timed = windows[warmup:]
    t0 = time.perf_counter()
    for window in timed:
        # Returns numpy logits, so each call ends synchronized with the device.
        predict_logits(model, window, pad_id, batch_size, device)
    seconds = time.perf_counter() - t0
    lengths = np.array([len(doc) for window in timed for doc in window])
    tokens = int(lengths.sum())
    padded = sum(padded_tokens(np.array([len(d) for d in w]), batch_size) for w in timed)
    return {
        "attn_implementation": attention,
        "documents": len(lengths),
        "tokens": tokens,
        "mean_tokens": tokens / len(lengths),
        "truncated_share": float((lengths >= max_length).mean()),
        "seconds": seconds,
        "warmup_seconds": warmup_s,
        "tokens_per_sec": tokens / seconds,
        "padded_tokens_per_sec": padded / seconds,
        "padding_share": 1 - tokens / padded,
        "documents_per_sec": len(lengths) / seconds,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    config = yaml.safe_load(args.configfile.read_text())
    gpu = torch.cuda.is_available()
    device = torch.device("cuda" if gpu else "cpu")
    max_length = args.max_length or int(config["classifiers"]["max_length"])
    batch_sizes = args.batch_size or [int(config["scoring"]["batch_size"])]
    compiles = args.compile or ([False, True] if gpu else [False])
    n_windows = args.windows or (8 if gpu else 1)
    warmup = args.warmup if args.warmup is not None else (2 if gpu else 1)
    model_config = classifier_config(config, max_length)
    name = "cuda: " + torch.cuda.get_device_name() if gpu else "CPU"

    rng = np.random.default_rng(args.seed)
    windows = []
    for _ in range(warmup + n_windows):
        lengths = document_lengths(args.window_rows, max_length, args.median_tokens, args.sigma, rng)
        windows.append(make_window(lengths, model_config, rng))
    print(
        f"device: {name}; {config['classifiers'].get('base_model') or 'tiny'} shape "
        f"({model_config.num_hidden_layers} layers, hidden {model_config.hidden_size}, "
        f"{model_config.num_labels} outputs); max_length {max_length}; documents log-normal "
        f"(median {args.median_tokens:g}, sigma {args.sigma:g}); "
        f"{n_windows} timed windows of {args.window_rows} documents; "
        f"{'bf16 autocast' if gpu else 'fp32'}"
    )
    print(
        f"{'batch':>5} {'compile':>7} {'tokens/s':>12} {'padded/s':>12} {'pad':>5} {'docs/s':>9} "
        f"{'mem GiB':>8} {'warmup s':>9}"
    )
    rows = []
    for batch_size in batch_sizes:
        for compiled in compiles:
            row = {
                "probe": "classifier",
                "device": name,
                "base_model": config["classifiers"].get("base_model"),
                "precision": "bf16-autocast" if gpu else "32-true",
                "max_length": max_length,
                "batch_size": batch_size,
                "compile": compiled,
                "window_rows": args.window_rows,
                "median_tokens": args.median_tokens,
                "sigma": args.sigma,
            }
            try:
                row |= probe_one(model_config, device, compiled, batch_size, windows, warmup, max_length)
            except torch.cuda.OutOfMemoryError:
                row |= {"tokens_per_sec": None, "peak_memory_gib": None, "error": "OOM"}
            finally:
                torch._dynamo.reset()
                if gpu:
                    torch.cuda.empty_cache()
            rows.append(row)
            if row["tokens_per_sec"]:
                mem = optional(row["peak_memory_gib"], "8.1f", 8)
                print(
                    f"{batch_size:>5} {'on' if compiled else 'off':>7} {row['tokens_per_sec']:12,.0f} "
                    f"{row['padded_tokens_per_sec']:12,.0f} {row['padding_share']:5.0%} "
                    f"{row['documents_per_sec']:9,.0f} {mem} {row['warmup_seconds']:9.1f}",
                    flush=True,
                )
            else:
                print(f"{batch_size:>5} {'on' if compiled else 'off':>7} {'OOM':>12}", flush=True)
            save_rows(args.out, rows)  # a run cut short keeps the rows it finished
    return rows


if __name__ == "__main__":
    main()
