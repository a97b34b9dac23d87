"""The plan of a run, from the config alone: what it trains on, what it costs, what it downloads.

A researcher reads this before spending anything: the token mix per arm, the model's parameter
count and training FLOPs, GPU-hours and cost per arm (``trellis.train.compute``, whose docstring
documents the FLOPs formula), the labeling requests, every artifact the run fetches from the
Hugging Face hub, and the bytes each stage leaves on disk (``disk``; the assumptions are the
constants below and each figure's ``basis``). Nothing here touches the network or a GPU:

    python -m trellis.report.plan --configfile config/study.yaml

prints it; the workflow's ``plan`` rule writes it as ``plan/plan.md`` and ``plan/plan.json``.
"""

from __future__ import annotations

import argparse
import math
import sys
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from trellis.core.io import atomic_path, write_json
from trellis.core.tasks import DOMAIN_SOURCE, build_tasks, tasks_for_source
from trellis.evaluate import bfcl
from trellis.tokens.tkds import HEADER_SIZE, TOKEN_DTYPE
from trellis.tokens.tokenize import token_dtype
from trellis.train import compute
from trellis.train.baselines import PYTHIA_ARCHITECTURES, resolve_revision

# ----------------------------------------------------------------- disk: what the estimates assume

# UTF-8 bytes of text per GPT-NeoX token, English web prose: ~4.2 (GPT-2-family BPEs average about
# 4 characters a token on English; FineWeb-Edu's documents, mostly ASCII, a little more). Code and
# math tokenize slightly denser; one figure serves every source.
TEXT_BYTES_PER_TOKEN = 4.2
# Mean tokens per document, for the per-document costs (ids, scores, signatures, EOS): FineWeb-Edu's
# sample-10BT holds ~10B tokens in ~9.7M rows. Used for every source, and for the demo's documents.
TOKENS_PER_DOCUMENT = 1000
# Compression of English text (enwik8, lzbench/Squash figures): ~1.8x with snappy, pyarrow's default
# Parquet codec (what trellis.core.io.ParquetWriter writes, and the hub's Parquet is taken to be no
# smaller), ~2.7x with gzip -6 (peS2o's .json.gz). JSON lines are counted as their text alone.
SNAPPY_TEXT_RATIO = 1.8
GZIP_TEXT_RATIO = 2.7
NATIVE_TEXT_RATIO = {".json.gz": GZIP_TEXT_RATIO, ".parquet": SNAPPY_TEXT_RATIO, ".jsonl": 1.0, ".json": 1.0}
# A document id is "<source>-" + 20 hex digits (trellis.core.io.doc_id: blake2b, 10 bytes), plus
# the 4-byte offset of an Arrow string; token ids, floats and hex are taken as incompressible.
DOC_ID_HEX_CHARS = 20
ARROW_OFFSET_BYTES = 4
# Seeds (project summary, the topic x complexity heatmap): STEM-core topics are ~5% of FineWeb-Edu.
# Raising them to their target_topic_shares needs a pool of (their target share / 5%) x the
# curated budget, even if every STEM-core document passes the filter.
STEM_CORE_TOPICS = ("computer_science", "mathematics", "machine_learning_ai")
STEM_CORE_SHARE = 0.05
# A curated source's tokens assumed to survive filter and dedup where the config implies no larger
# pool (StarCoderData: compression, quality and structured-relevance floors; no measured yield
# before Stage 0). curation/yield.csv has the real figure after a run.
CURATED_KEEP_FRACTION = 0.25
# Bytes per weight as LitGPT's Fabric holds it (trellis.train.pretrain passes pretrain.precision
# through): "-mixed" keeps fp32 master weights; "-true" casts them. torch.optim.AdamW keeps two
# moments (exp_avg, exp_avg_sq) per weight in the weight's dtype; its per-tensor step counters and
# the checkpoint directory's configs and tokenizer copy (a few MB) are left out.
PRECISION_WEIGHT_BYTES = {"32-true": 4, "bf16-mixed": 4, "16-mixed": 4, "bf16-true": 2, "16-true": 2}
ADAMW_MOMENTS = 2
# SFT and DPO load every model in float32 (trellis.train.posttrain._load) and save it so.
POSTTRAIN_WEIGHT_BYTES = 4
# Pythia's hub weights are float16 (its config.json); fetch_baseline loads them with transformers'
# default dtype ("auto" since transformers 5) and saves them as they are.
PYTHIA_WEIGHT_BYTES = 2
# Per document (trellis.curate.signatures): num_perm uint32 MinHash values and a uint64 exact-text key.
SIGNATURE_VALUE_BYTES = 4
EXACT_KEY_BYTES = 8


def token_mix(config: dict) -> list[dict[str, Any]]:
    """One row per mix component: its source, budget, share of the mix, and what each arm reads."""
    components = config["mix"]["components"]
    total = sum(int(c["tokens"]) for c in components.values())
    rows = []
    for name, c in components.items():
        tokens = int(c["tokens"])
        rows.append(
            {
                "component": name,
                "source": c["source"],
                "tokens": tokens,
                "share": tokens / total if total else 0.0,
                "curated_arm_reads": "curated" if c.get("curated") else "raw",
                "other_arms_read": "raw",
                "upsample": bool(c.get("upsample", False)),
            }
        )
    return rows


def downloads(config: dict) -> list[dict[str, Any]]:
    """Every artifact the run fetches from the hub (none in the demo): what, where, which files."""
    rows = []
    if config["acquire"]["backend"] == "huggingface":
        for source, spec in config["sources"].items():
            hf = spec["hf"]
            rows.append(
                {
                    "what": f"source {source}",
                    "repo": hf["repo"],
                    # null: not pinned yet, and acquire refuses to download it until it is.
                    "revision": hf["revision"] or "unpinned: acquire stops until pinned",
                    "files": ", ".join(hf["allow_patterns"]),
                }
            )
    if config["tokenizer"]["kind"] == "pretrained":
        rows.append(
            {
                "what": "tokenizer",
                "repo": config["tokenizer"]["pretrained"],
                "revision": "main",
                "files": "tokenizer files",
            }
        )
    if config["classifiers"].get("base_model"):
        rows.append(
            {
                "what": "classifier base model",
                "repo": config["classifiers"]["base_model"],
                "revision": "main",
                "files": "weights, tokenizer",
            }
        )
    for arm, spec in config["arms"].items():
        if spec["kind"] == "baseline":
            revision = resolve_revision(spec["revision"], int(config["pretrain"]["max_tokens"]))
            rows.append(
                {
                    "what": f"baseline arm {arm}",
                    "repo": spec["repo"],
                    "revision": revision,
                    "files": "weights, tokenizer",
                }
            )
    for name, spec in (config["posttrain"].get("public") or {}).items():
        rows.append(
            {
                "what": f"post-training set {name}" + (" (gated: HF_TOKEN)" if spec.get("gated") else ""),
                "repo": spec["repo"],
                "revision": spec["revision"],
                "files": spec["file"],
            }
        )
    ev = config["evaluate"]
    if ev["bfcl"].get("validation"):
        rows.append(
            {
                "what": "BFCL reference model (validate_bfcl)",
                "repo": ev["bfcl"]["validation"]["repo"],
                "revision": ev["bfcl"]["validation"]["revision"],
                "files": "weights, tokenizer",
            }
        )
    if ev.get("mbpp"):
        hf = ev["mbpp"]["hf"]
        rows.append(
            {
                "what": "benchmark MBPP",
                "repo": hf["repo"],
                "revision": hf["revision"],
                "files": ", ".join(hf["allow_patterns"]),
            }
        )
    if ev["harness"]["demo_tasks"] is None:
        for task, repo in _harness_datasets(list(ev["harness"]["tasks"])).items():
            rows.append(
                {
                    "what": f"lm-eval task {task}",
                    "repo": repo,
                    "revision": "as pinned by lm-eval",
                    "files": "the task's splits",
                }
            )
    return rows


@cache
def _lm_eval_task_index() -> dict:
    """lm-eval's index of its own tasks, built once per process: it reads some 15k task YAMLs (about
    10 s on a small CPU), and the plan is read only."""
    from lm_eval.tasks import TaskManager

    return TaskManager().task_index


def _harness_datasets(tasks: list[str]) -> dict[str, str]:
    """lm-eval task -> the hub dataset(s) its YAML loads (read from lm-eval's own task index)."""
    try:
        index = _lm_eval_task_index()
    except ImportError:
        return {t: "(lm-eval not installed: unknown)" for t in tasks}

    def datasets(name: str, depth: int = 0) -> set[str]:
        entry = index.get(name)
        if entry is None or depth > 8:
            return set()
        cfg = entry.cfg or {}
        if cfg.get("dataset_path"):
            return {cfg["dataset_path"]}
        # A group lists tasks, groups or tags; a tag's members are in its entry's tags.
        members = cfg.get("task") if isinstance(cfg.get("task"), list) else sorted(entry.tags or ())
        names = [m if isinstance(m, str) else m.get("task", "") for m in members]
        return set().union(set(), *(datasets(n, depth + 1) for n in names))

    return {t: ", ".join(sorted(datasets(t))) or "(unknown to lm-eval)" for t in tasks}


def labeling(config: dict) -> dict[str, Any]:
    """How many documents the label stage asks the labeler about, per domain; with the Batch API,
    the schedule through the organisation's queue (``trellis.report.label_schedule``)."""
    labels = config["labels"]
    out = {"backend": labels["backend"], "model": labels["model"], "documents": dict(labels["sample"])}
    if labels["backend"] == "openai-batch":
        from trellis.report.label_schedule import batch_schedule

        out["schedule"] = batch_schedule(config)
    return out


# ------------------------------------------------------------------------------------ disk


def _curated_budget(config: dict, source: str) -> int:
    """The source's selection target: its curated mix components' budgets (0: none curated)."""
    if source not in DOMAIN_SOURCE.values():
        return 0
    comps = config["mix"]["components"].values()
    return sum(int(c["tokens"]) for c in comps if c["source"] == source and c.get("curated"))


def _curated_oversample(config: dict, source: str) -> tuple[float, str]:
    """How many times its curated budget a curated source must hold, and why (module constants)."""
    floor = 1.0 / CURATED_KEEP_FRACTION
    shares = (config.get("curation", {}).get(source) or {}).get("target_topic_shares") or {}
    stem = sum(float(shares.get(t, 0.0)) for t in STEM_CORE_TOPICS)
    if stem / STEM_CORE_SHARE > floor:
        return stem / STEM_CORE_SHARE, (
            f"STEM-core target shares {stem:.0%} of the curated budget vs ~{STEM_CORE_SHARE:.0%} "
            "of the crawl (seeds)"
        )
    return floor, f"an assumed {CURATED_KEEP_FRACTION:.0%} of its tokens pass filter and dedup"


def source_sizes(config: dict) -> list[dict[str, Any]]:
    """Tokens and documents each source's normalized parts are assumed to hold, and why.

    The config gives no source's size for the hub; the estimate is the least the mix needs: the
    budgets of the source's components, or for a curated source its curated budget times the
    pool selection needs (``_curated_oversample``), whichever is larger. The demo's generator
    writes ``demo_docs`` documents, taken at ``TOKENS_PER_DOCUMENT`` each.
    """
    rows = []
    for source, spec in config["sources"].items():
        comps = [c for c in config["mix"]["components"].values() if c["source"] == source]
        tokens = sum(int(c["tokens"]) for c in comps)
        basis = "its mix budgets (the least it must hold)"
        if config["acquire"]["backend"] == "demo":
            tokens = int(spec["demo_docs"]) * TOKENS_PER_DOCUMENT
            basis = f"demo_docs × ~{TOKENS_PER_DOCUMENT:,} tokens"
        elif _curated_budget(config, source):
            factor, why = _curated_oversample(config, source)
            pool = round(_curated_budget(config, source) * factor)
            if pool > tokens:
                tokens, basis = pool, f"{factor:.3g}× its curated budget: {why}"
        if config["acquire"]["backend"] != "demo" and any(c.get("upsample") for c in comps):
            basis = "its mix budget, an upper bound: upsample: true (the source may hold less)"
        rows.append(
            {
                "source": source,
                "tokens": tokens,
                "documents": -(-tokens // TOKENS_PER_DOCUMENT),
                "basis": basis,
            }
        )
    return rows


def _text_bytes(tokens: int, ratio: float = SNAPPY_TEXT_RATIO) -> int:
    return round(tokens * TEXT_BYTES_PER_TOKEN / ratio)


def _id_bytes(source: str) -> int:
    """One document id in a Parquet string column (``trellis.core.io.doc_id``)."""
    return len(source) + 1 + DOC_ID_HEX_CHARS + ARROW_OFFSET_BYTES


def _native_ratio(spec: dict) -> float:
    """Text compression of a source's native files, by the extension its allow_patterns name."""
    pattern = str(spec["hf"]["allow_patterns"][0])
    return next((r for ext, r in NATIVE_TEXT_RATIO.items() if pattern.endswith(ext)), 1.0)


def disk_downloads(config: dict, sizes: list[dict]) -> dict[str, Any]:
    """downloads/<source>/: each source's text in its native files (the least the budgets need)."""
    total = sum(_text_bytes(r["tokens"], _native_ratio(config["sources"][r["source"]])) for r in sizes)
    basis = (
        f"each source's tokens (below) × {TEXT_BYTES_PER_TOKEN} bytes of text ÷ its format's compression "
        f"(Parquet {SNAPPY_TEXT_RATIO}, .json.gz {GZIP_TEXT_RATIO}, JSON lines 1)"
    )
    if config["acquire"]["backend"] == "demo":
        return {
            "stage": "downloads",
            "what": f"downloads/<source>/ ({len(sizes)} sources, generated)",
            "bytes": total,
            "basis": basis,
        }
    return {
        "stage": "downloads",
        "what": f"downloads/<source>/ ({len(sizes)} sources, hub files)",
        "bytes": total,
        "basis": basis + "; the least the budgets need: the download is every file allow_patterns "
        "match (MANIFEST.json total_bytes), and what normalize drops (peS2o's subject filter, "
        "unanswered StackExchange questions) comes on top",
    }


def disk_baseline_snapshots(config: dict) -> dict[str, Any] | None:
    """The hub snapshots fetch_baseline reads: Pythia's float16 weights in the Hugging Face cache."""
    arms = [spec for spec in config["arms"].values() if spec["kind"] == "baseline"]
    if not arms:
        return None
    total = sum(PYTHIA_ARCHITECTURES[spec["repo"]]["parameters"] * PYTHIA_WEIGHT_BYTES for spec in arms)
    return {
        "stage": "downloads",
        "what": f"Pythia snapshots ({len(arms)} baseline arms, Hugging Face cache, outside results/)",
        "bytes": total,
        "basis": f"parameters × {PYTHIA_WEIGHT_BYTES} bytes (float16 on the hub)",
    }


def disk_raw(config: dict, sizes: list[dict]) -> dict[str, Any]:
    """raw/<source>/part-K.parquet: normalized documents (snappy Parquet)."""
    total = sum(_text_bytes(r["tokens"]) + r["documents"] * _id_bytes(r["source"]) for r in sizes)
    return {
        "stage": "raw",
        "what": "raw/<source>/part-K.parquet (normalized)",
        "bytes": total,
        "basis": f"text at {TEXT_BYTES_PER_TOKEN} bytes/token ÷ {SNAPPY_TEXT_RATIO} (snappy) plus the id "
        "column; metadata columns (URLs, titles, ~100 bytes a document) not counted",
    }


def score_row_bytes(config: dict, source: str) -> int:
    """One document's row in scores/<source>/ (``trellis.classifiers.score.scores_schema``).

    Floats and list offsets uncompressed; a single-label class name dictionary-encoded (~1 byte).
    """
    tasks = build_tasks(config)
    size = _id_bytes(source)
    if source == DOMAIN_SOURCE["code"] and config["scoring"].get("skip_below_compression_ratio") is not None:
        size += 8  # compression_ratio, float64
    for name in tasks_for_source(source):
        task = tasks[name]
        if task.kind == "regression":
            size += 4
        else:  # list<float32> of class scores; single-label adds the class name
            size += 4 * len(task.labels) + ARROW_OFFSET_BYTES + (1 if task.kind == "single_label" else 0)
    return size


def _scored(sizes: list[dict]) -> list[dict]:
    return [r for r in sizes if r["source"] in DOMAIN_SOURCE.values()]


def disk_scores(config: dict, sizes: list[dict]) -> dict[str, Any]:
    """scores/<source>/part-K.parquet: one row of classifier outputs per raw document, no text."""
    scored = _scored(sizes)
    per_doc = {r["source"]: score_row_bytes(config, r["source"]) for r in scored}
    return {
        "stage": "scores",
        "what": f"scores/<source>/ ({', '.join(per_doc) or 'none'})",
        "bytes": sum(r["documents"] * per_doc[r["source"]] for r in scored),
        "basis": "per raw document: "
        + ", ".join(f"{s} {b} bytes" for s, b in per_doc.items())
        + " (id, float32 scores and class probabilities, uncompressed)",
    }


def disk_minhash(config: dict, sizes: list[dict]) -> dict[str, Any]:
    """minhash/<source>/part-K.npy and .exact.npy: MinHash signature and exact key per raw document."""
    num_perm = int(config["curation"]["dedup"]["num_perm"])
    scored = _scored(sizes)
    return {
        "stage": "minhash",
        "what": "minhash/<source>/ (curated sources)",
        "bytes": sum(r["documents"] * (num_perm * SIGNATURE_VALUE_BYTES + EXACT_KEY_BYTES) for r in scored),
        "basis": f"per raw document: {num_perm} uint32 MinHash values + one uint64 exact key",
    }


def disk_curation(config: dict, sizes: list[dict]) -> dict[str, Any]:
    """filtered/ and curated/: text Parquet of what passes the filter, then what selection keeps."""
    scored = _scored(sizes)
    filtered = sum(_text_bytes(r["tokens"]) + r["documents"] * _id_bytes(r["source"]) for r in scored)
    curated = sum(_text_bytes(_curated_budget(config, r["source"])) for r in scored)
    return {
        "stage": "curation",
        "what": "filtered/<source>/ + curated/<source>/",
        "bytes": filtered + curated,
        "basis": "filtered: at most the curated sources' raw parts (every document passing); curated: "
        "the curated budgets' text (snappy)",
    }


def disk_tokens(config: dict, sizes: list[dict]) -> dict[str, Any]:
    """tokens/raw/ and tokens/curated/: list<uint16> token ids plus the document index."""
    width = np.dtype(token_dtype(int(config["tokenizer"]["vocab_size"]))).itemsize
    per_doc = ARROW_OFFSET_BYTES + 4  # the list offset and n_tokens (int32), beside the id
    parts = [(r["source"], r["tokens"]) for r in sizes]  # raw parts of every source
    parts += [(r["source"], _curated_budget(config, r["source"])) for r in _scored(sizes)]
    total = sum(t * width + -(-t // TOKENS_PER_DOCUMENT) * (_id_bytes(s) + per_doc) for s, t in parts)
    return {
        "stage": "tokens",
        "what": "tokens/raw/<source>/ + tokens/curated/<source>/",
        "bytes": total,
        "basis": f"{width} bytes a token (a list of uint{8 * width}, token ids incompressible) plus id, "
        "offset and n_tokens per document; raw parts of every source, curated parts of the curated budgets",
    }


def shard_layout(config: dict) -> dict[str, int]:
    """One arm's TKDS shard set: sequences, shards and token slots (``trellis.tokens.tkds``).

    The stream is every budget plus one EOS per document (``TOKENS_PER_DOCUMENT``), cut into
    ``context_length`` sequences (the tail is dropped), ``sequences_per_shard`` to a shard.
    """
    mix = config["mix"]
    context, per_shard = int(mix["context_length"]), int(mix["sequences_per_shard"])
    budgets = [int(c["tokens"]) for c in mix["components"].values()]
    stream = sum(budgets) + sum(-(-b // TOKENS_PER_DOCUMENT) for b in budgets)
    sequences = stream // context
    shards = -(-sequences // per_shard)
    return {"sequences": sequences, "shards": shards, "tokens": sequences * context}


def _pretrain_arms(config: dict) -> list[str]:
    return [arm for arm, spec in config["arms"].items() if spec["kind"] == "pretrain"]


def disk_shards(config: dict) -> dict[str, Any]:
    """shards/<arm>/: the TKDS shard set of each pretrained arm (same budgets for every arm)."""
    layout, arms = shard_layout(config), _pretrain_arms(config)
    one = layout["tokens"] * TOKEN_DTYPE.itemsize + layout["shards"] * HEADER_SIZE
    return {
        "stage": "shards",
        "what": f"shards/<arm>/*.tkds ({len(arms)} pretrained arms)",
        "bytes": len(arms) * one,
        "basis": f"per arm {layout['sequences']:,} sequences × {config['mix']['context_length']:,} tokens "
        f"× {TOKEN_DTYPE.itemsize} bytes + a {HEADER_SIZE}-byte header on each of {layout['shards']:,} "
        "shards (budgets + one EOS a document); while the mix runs, its shuffle runs take as much again",
    }


def checkpoints_kept(config: dict) -> int:
    """Checkpoint directories one pretrained arm keeps: the last K step-* (all when K is null) + final/.

    LitGPT saves a step checkpoint every ``save_interval`` optimizer steps
    (``compute.pretrain_schedule`` counts them as LitGPT does).
    """
    pretrain = config["pretrain"]
    steps = compute.pretrain_schedule(pretrain, int(config["mix"]["context_length"]))["optimizer_steps"]
    saved = steps // int(pretrain["save_interval"])
    keep = pretrain.get("keep_checkpoints")
    return (saved if keep is None else min(int(keep), saved)) + 1


def checkpoint_bytes(config: dict) -> int:
    """One LitGPT Fabric checkpoint (lit_model.pth): the weights plus AdamW's two moments, in the
    weights' dtype under ``pretrain.precision`` (PRECISION_WEIGHT_BYTES)."""
    precision = str(config["pretrain"]["precision"])
    if precision not in PRECISION_WEIGHT_BYTES:
        raise KeyError(
            f"pretrain.precision {precision!r}: bytes per weight unknown ({sorted(PRECISION_WEIGHT_BYTES)})"
        )
    return compute.parameter_count(config["model"]) * PRECISION_WEIGHT_BYTES[precision] * (1 + ADAMW_MOMENTS)


def disk_checkpoints(config: dict) -> dict[str, Any]:
    """checkpoints/<arm>/: the step checkpoints kept and final/, per pretrained arm."""
    arms, kept, one = _pretrain_arms(config), checkpoints_kept(config), checkpoint_bytes(config)
    keep = config["pretrain"].get("keep_checkpoints")
    keep_text = "null: all" if keep is None else keep
    weight = PRECISION_WEIGHT_BYTES[str(config["pretrain"]["precision"])]
    return {
        "stage": "checkpoints",
        "what": f"checkpoints/<arm>/ ({len(arms)} pretrained arms)",
        "bytes": len(arms) * kept * one,
        "basis": f"per arm at rest {kept - 1} step checkpoints (keep_checkpoints: {keep_text}) "
        f"+ final/, each {compute.parameter_count(config['model']):,} weights × {weight} bytes "
        f"({config['pretrain']['precision']}) × {1 + ADAMW_MOMENTS} (the weights and AdamW's "
        f"{ADAMW_MOMENTS} moments) = {human_bytes(one)}; one more while the next is written",
    }


def _stages_built(config: dict) -> list[str]:
    """Model stages written per arm: base always, sft before dpo, as far as evaluate.stages reaches."""
    wanted = set(config["evaluate"]["stages"])
    order = ["base", "sft", "dpo"]
    last = max(order.index(s) for s in wanted | {"base"})
    return order[: last + 1]


def model_bytes(config: dict, arm: str, stage: str) -> int:
    """One HF model directory's safetensors: every parameter at the dtype its writer saves."""
    spec = config["arms"][arm]
    if spec["kind"] == "pretrain":
        params = compute.parameter_count(config["model"])
        base_width = PRECISION_WEIGHT_BYTES[str(config["pretrain"]["precision"])]  # convert keeps it
    else:
        params, base_width = PYTHIA_ARCHITECTURES[spec["repo"]]["parameters"], PYTHIA_WEIGHT_BYTES
    return params * (base_width if stage == "base" else POSTTRAIN_WEIGHT_BYTES)


def disk_models(config: dict) -> dict[str, Any]:
    """models/<arm>/<stage>/: Hugging Face directories of every arm and stage."""
    stages = _stages_built(config)
    total = sum(model_bytes(config, arm, stage) for arm in config["arms"] for stage in stages)
    return {
        "stage": "models",
        "what": f"models/<arm>/{{{','.join(stages)}}}/ ({len(config['arms'])} arms)",
        "bytes": total,
        "basis": "safetensors of every parameter: a pretrained arm's base in its training weights' dtype "
        f"(convert keeps it), Pythia's base in float16, SFT and DPO in float32 ({POSTTRAIN_WEIGHT_BYTES} "
        "bytes); tokenizer files (a few MB) not counted",
    }


def disk(config: dict) -> dict[str, Any]:
    """Estimated bytes each stage leaves on disk for the configured run, and their total.

    Every figure follows from the config and the constants at the top of this module; each row's
    ``basis`` says what it assumes:

    - source sizes (``source_sizes``): the least the mix needs of each source (its budgets; a
      curated source's curated budget × the pool selection needs), ``TOKENS_PER_DOCUMENT`` a
      document; the demo's ``demo_docs``.
    - downloads: that text (``TEXT_BYTES_PER_TOKEN``) compressed as its native files are
      (``NATIVE_TEXT_RATIO``); Pythia's float16 snapshots in the hub cache.
    - raw: the text in snappy Parquet (``SNAPPY_TEXT_RATIO``) plus the id column.
    - scores: one uncompressed row of classifier outputs per raw document of a curated source.
    - minhash: ``num_perm`` uint32 and one uint64 per raw document of a curated source.
    - curation: filtered/ at most the curated sources' raw parts, curated/ their budgets' text.
    - tokens: 2 bytes a token (uint16 lists) plus the document index, raw and curated parts.
    - shards: the TKDS bytes exactly, given the stream (budgets + one EOS a document).
    - checkpoints: K step checkpoints (``pretrain.keep_checkpoints``; null: every one) + final/
      per pretrained arm, each the weights plus AdamW's two moments at ``pretrain.precision``.
    - models: HF safetensors per arm and stage at the dtype their writers save.

    What exists only while a job runs (the mix's shuffle runs, a checkpoint being written, the
    SFT/DPO trainer's scratch) is not counted; the total is the sum of the rows.
    """
    sizes = source_sizes(config)
    rows = [
        disk_downloads(config, sizes),
        disk_baseline_snapshots(config),
        disk_raw(config, sizes),
        disk_scores(config, sizes),
        disk_minhash(config, sizes),
        disk_curation(config, sizes),
        disk_tokens(config, sizes),
        disk_shards(config),
        disk_checkpoints(config),
        disk_models(config),
    ]
    rows = [r for r in rows if r is not None]
    return {"sources": sizes, "stages": rows, "total_bytes": sum(r["bytes"] for r in rows)}


# ------------------------------------------------------------------ costs beside the seeds' table

# Classification: ModernBERT-base inference throughput per GPU, 512-token inputs. The ModernBERT
# paper (Warner et al. 2024, inference-efficiency table) reports ~120-150k tokens/s for the base
# model at 512 tokens on an RTX 4090; an A100 has ~1.9x the 4090's bf16 peak, so this is likely
# conservative there. One pass per classifier task (trellis.classifiers.score runs each model).
SCORING_TOKENS_PER_SECOND = 150_000
# Evaluation: generation with transformers' generate on a ~0.5B model is launch-overhead-bound, not
# FLOP-bound: ~30 ms a decoding step for a whole batch. Every batch is taken to run to
# max_new_tokens (an upper bound: stop sequences end most answers earlier).
DECODE_STEP_SECONDS = 0.03
GENERATION_BATCH_SIZE = 8  # trellis.evaluate.dispatch's default batch_size
# BFCL category sizes (the installed bfcl-eval's v4 data files) and the code benchmarks' sizes.
BFCL_SIZES = {
    "simple": 400,
    "multiple": 200,
    "parallel": 200,
    "parallel_multiple": 200,
    "irrelevance": 240,
    "live_simple": 258,
    "live_multiple": 1053,
    "live_parallel": 16,
    "live_parallel_multiple": 24,
    "live_irrelevance": 884,
    "live_relevance": 16,
    "simple_java": 100,
    "simple_javascript": 50,
}
# BFCL's multi-turn categories are not one prompt an example: every model step of the agent loop
# (trellis.evaluate.bfcl_multi_turn) is a generation, the entries advancing together, a batch per
# step. Per category, the steps of a model that makes the ground truth's calls one a step and
# then answers without a call: each turn's calls + 1 (the installed bfcl-eval's data, 200 entries
# each, 3.7-4.7 turns an entry; tests/evaluate/test_bfcl_multi_turn.py recounts them). A model
# that calls several functions in one step takes fewer, one that retries more, up to
# evaluate.bfcl.multi_turn_step_limit + 1 a turn (bfcl-eval's 20 + 1 by default).
BFCL_MULTI_TURN_STEPS = {
    "multi_turn_base": 1876,
    "multi_turn_miss_func": 2074,
    "multi_turn_miss_param": 2074,
    "multi_turn_long_context": 1937,
}
HUMANEVAL_PROBLEMS = 164
MBPP_TEST_PROBLEMS = 500
# lm-eval log-likelihood tasks: (test examples, scored continuations each, tokens of a request,
# few-shot context included), rough; gsm8k generates instead (GSM8K_* below).
HARNESS_LOGLIKELIHOOD = {
    "mmlu": (14_042, 4, 600),  # 5-shot
    "hellaswag": (10_042, 4, 110),
    "arc_easy": (2_376, 4, 50),
    "arc_challenge": (1_172, 4, 60),
    "piqa": (1_838, 2, 60),
    "winogrande": (1_267, 2, 40),
    "lambada_openai": (5_153, 1, 100),
    "sciq": (1_000, 4, 350),
}
GSM8K_EXAMPLES, GSM8K_MAX_NEW_TOKENS = 1_319, 256
# Log-likelihood scoring in batches of harness.batch_size runs far below training MFU.
HARNESS_MFU = 0.2

# The seeds' own figures (project summary, "Estimated Total Cost", on-demand column, RunPod A100).
SEEDS_COSTS = {
    "labeling": "$20-50 (LLM API costs: labeling, LLM judge)",
    "LLM judge": "within labeling's $20-50 (LLM API costs: labeling, LLM judge)",
    "classification": "$35-60: FineWeb-Edu curation 12-16 A100-h $20-35 + StarCoderData 8-12 A100-h "
    "$15-25 (Session 5: a '6-hour classification run')",
    "pretraining": "~$700, ~430 A100-h (one 500M model, 20B tokens)",
    "post-training": "$20-40 (SFT + DPO, both arms)",
    "evaluation": "$30-60 (both arms, all tiers)",
}


def _labeled_document_tokens(config: dict) -> float:
    """Tokens of one labeled document: TOKENS_PER_DOCUMENT, or fewer where max_text_chars cuts it."""
    cap = int(config["labels"]["request"]["max_text_chars"]) / TEXT_BYTES_PER_TOKEN
    return min(float(TOKENS_PER_DOCUMENT), cap)


def labeling_cost(config: dict, encoding=None) -> list[dict[str, Any]]:
    """One row per labeling task: requests × (template overhead + document) at the batch prices.

    The overhead (messages, chat framing, response schema) and the answer are counted exactly with
    o200k_base (``trellis.labels.prompt_tokens``; ``encoding`` overrides it, for tests); a document
    is ``_labeled_document_tokens``: GPT-NeoX tokens taken 1:1 as o200k tokens.
    """
    from trellis.labels.prompt_tokens import task_tokens
    from trellis.labels.prompts import PromptBuilder

    labels = config["labels"]
    prices = labels["prices"]
    tasks = build_tasks(config)
    doc = _labeled_document_tokens(config)
    requests = [
        (name, name, int(documents))
        for domain, documents in labels["sample"].items()
        for name in tasks_for_source(DOMAIN_SOURCE[domain])
    ]
    # The subject check labels its own sample of each subject-filtered source (peS2o) for topics.
    requests += [
        ("topic", f"topic ({source} subject check)", int(config["curation"]["subject_check"]["sample_docs"]))
        for source, spec in config["sources"].items()
        if spec.get("subject_filter")
    ]
    rows = []
    for name, what, n in requests:
        builder = PromptBuilder(tasks[name], labels, int(labels["request"]["max_text_chars"]))
        counted = task_tokens(builder, encoding)
        input_tokens = n * (counted["overhead"] + doc)
        output_tokens = n * counted["answer"]
        usd = (
            input_tokens * float(prices["input_per_million"])
            + output_tokens * float(prices["output_per_million"])
        ) / 1e6
        rows.append(
            {
                "task": what,
                "documents": n,
                "overhead_tokens": counted["overhead"],
                "document_tokens": doc,
                "answer_tokens": counted["answer"],
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "usd": usd,
                "tokenizer": counted["tokenizer"],
            }
        )
    return rows


def scoring_hours(config: dict, sizes: list[dict]) -> dict[str, float]:
    """GPU-hours to score each curated source: documents × min(document, max_length) × tasks."""
    length = min(TOKENS_PER_DOCUMENT, int(config["classifiers"]["max_length"]))
    return {
        r["source"]: r["documents"]
        * length
        * len(tasks_for_source(r["source"]))
        / SCORING_TOKENS_PER_SECOND
        / 3600.0
        for r in _scored(sizes)
    }


def evaluation_hours(config: dict, arm: str) -> float:
    """GPU-hours of one arm's evaluation at one stage: generation steps plus lm-eval scoring."""
    ev = config["evaluate"]
    steps = 0
    for bench in ("json_schema", "extraction", "classification"):
        if ev.get(bench):
            steps += math.ceil(int(ev[bench]["examples"]) / GENERATION_BATCH_SIZE) * int(
                ev[bench]["max_new_tokens"]
            )
    if ev.get("bfcl"):
        # Every configured mode asks its categories again (prompt mode adds Java, JavaScript and
        # multi-turn, whose entries cost a generation a step).
        for categories in bfcl.mode_categories(ev["bfcl"]).values():
            n = sum(BFCL_SIZES.get(c, 0) + BFCL_MULTI_TURN_STEPS.get(c, 0) for c in categories)
            steps += math.ceil(n / GENERATION_BATCH_SIZE) * int(ev["bfcl"]["max_new_tokens"])
    for bench, n in (("humaneval", HUMANEVAL_PROBLEMS), ("mbpp", MBPP_TEST_PROBLEMS)):
        if ev.get(bench):
            steps += math.ceil(n / GENERATION_BATCH_SIZE) * int(ev[bench]["max_new_tokens"])
    harness = ev["harness"]
    tasks = list(harness["tasks"]) if harness.get("demo_tasks") is None else []
    if "gsm8k" in tasks:
        steps += math.ceil(GSM8K_EXAMPLES / int(harness["batch_size"])) * GSM8K_MAX_NEW_TOKENS
    tokens = sum(n * k * t for task, (n, k, t) in HARNESS_LOGLIKELIHOOD.items() if task in tasks)
    accelerator = config["resources"]["accelerator"]
    forward = 2.0 * _arm_matmul_parameters(config, arm) * tokens
    return (
        steps * DECODE_STEP_SECONDS + forward / (compute.accelerator_peak(accelerator) * HARNESS_MFU)
    ) / 3600.0


def _arm_matmul_parameters(config: dict, arm: str) -> int:
    spec = config["arms"][arm]
    if spec["kind"] == "pretrain":
        return compute.matmul_parameters(config["model"])
    a = PYTHIA_ARCHITECTURES[spec["repo"]]
    return a["parameters"] - a["vocab_size"] * a["n_embd"] - a["norm_parameters"]


def costs(config: dict, encoding=None) -> dict[str, Any]:
    """Every row the seeds price, per arm where it applies, beside the seeds' own estimate.

    labeling: Batch API prices (``labels.prices``) × tokens counted on the real prompts
    (``labeling_cost``); classification: GPU-hours at ``SCORING_TOKENS_PER_SECOND``; pretraining,
    post-training: FLOPs / (peak × MFU) from ``compute.compute_plan``; evaluation:
    ``evaluation_hours`` per arm and stage. GPU rows cost ``resources.accelerator.usd_per_gpu_hour``.
    """
    accelerator = config["resources"]["accelerator"]
    price = float(accelerator["usd_per_gpu_hour"])
    throughput = compute.accelerator_peak(accelerator) * float(accelerator["mfu"])
    rows: list[dict[str, Any]] = []

    def row(what, scope, hours, usd, note):
        rows.append(
            {
                "what": what,
                "scope": scope,
                "gpu_hours": hours,
                "usd": usd,
                "seeds": SEEDS_COSTS[what],
                "note": note,
            }
        )

    if config["labels"]["backend"] in ("openai-batch", "openai-chat"):
        label_rows = labeling_cost(config, encoding)
        tokens = sum(r["input_tokens"] for r in label_rows)
        row(
            "labeling",
            "total (" + ", ".join(f"{r['task']} {r['documents']:,}" for r in label_rows) + ")",
            None,
            sum(r["usd"] for r in label_rows),
            f"{tokens / 1e6:,.0f}M input tokens: templates "
            + "/".join(str(r["overhead_tokens"]) for r in label_rows)
            + f" tokens a request, {label_rows[0]['tokenizer']}, + ~{label_rows[0]['document_tokens']:,.0f} "
            "a document; every task labels its own sample (the seeds' figure fits ~5k documents a task); "
            "the LLM judge is a row of its own",
        )
    # The LLM judge of extraction answers (evaluate.extraction.judge), when on: its own API row.
    from trellis.evaluate.judge import judge_cost

    judge = judge_cost(config, encoding)
    if judge is not None:
        cap, per_job = judge["max_cost_usd"], judge["max_cost_usd_per_job"]
        if cap is None:
            capped = "no cost cap"
        else:
            first = judge["first_round_estimate_usd_per_job"]
            capped = (
                f"cap ${float(cap):,.2f} (evaluate.extraction.judge.max_cost_usd), ${per_job:,.2f} a job; "
                f"a job's first round is estimated at ${first:,.2f} (answers at max_completion_tokens)"
                + (
                    " — OVER its share: the judge jobs would stop before submitting"
                    if first > per_job
                    else ""
                )
            )
        row(
            "LLM judge",
            f"extraction, {judge['jobs']} arm × stage results "
            f"({judge['requests']:,} requests, {judge['model']})",
            None,
            judge["usd"],
            f"{judge['input_tokens'] / 1e6:,.1f}M input tokens (~{judge['prompt_tokens_per_request']:,.0f} a "
            f"request, {judge['tokenizer']}) at ${judge['prices']['input_per_million']:g}/M + "
            f"~{judge['answer_tokens_per_request']:,.0f} answer tokens a request at "
            f"${judge['prices']['output_per_million']:g}/M (evaluate.extraction.judge.prices); {capped}",
        )
    hours = scoring_hours(config, source_sizes(config))
    for source, h in hours.items():
        row(
            "classification",
            source,
            h,
            h * price,
            f"{len(tasks_for_source(source))} classifier passes over the whole assumed pool at "
            f"{SCORING_TOKENS_PER_SECOND:,} tokens/s; filter and dedup run on CPUs, not priced",
        )
    for r in compute.compute_plan(config):
        if r["pretrain_flops"]:
            h = r["pretrain_flops"] / throughput / 3600.0
            row(
                "pretraining",
                r["arm"],
                h,
                h * price,
                f"6·N·D + attention at {float(accelerator['mfu']):.0%} MFU; the seeds' ~430 h "
                "implies ~14% MFU",
            )
    for r in compute.compute_plan(config):
        h = (r["sft_flops"] + r["dpo_flops"]) / throughput / 3600.0
        row(
            "post-training",
            r["arm"],
            h,
            h * price,
            "SFT + DPO, every example max_length tokens (upper bound)",
        )
    for arm in config["arms"]:
        h = evaluation_hours(config, arm)
        stages = list(config["evaluate"]["stages"])
        row(
            "evaluation",
            f"{arm} × {len(stages)} stages",
            h * len(stages),
            h * len(stages) * price,
            f"{h:.1f} h a stage: generation at {DECODE_STEP_SECONDS * 1000:.0f} ms a step of "
            f"{GENERATION_BATCH_SIZE}, lm-eval at {HARNESS_MFU:.0%} MFU",
        )
    gpu = sum(r["gpu_hours"] or 0.0 for r in rows)
    return {"rows": rows, "total_gpu_hours": gpu, "total_usd": sum(r["usd"] for r in rows)}


def human_bytes(n: float) -> str:
    """Bytes in binary units, three significant digits: 5.66 GiB, 112 GiB, 1.23 TiB."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    k = 0
    while abs(n) >= 1000 and k < len(units) - 1:
        n, k = n / 1024, k + 1
    if k == 0:
        return f"{int(n)} B"
    return f"{n:.{max(0, 2 - int(math.log10(max(abs(n), 1))))}f} {units[k]}"


def build_plan(config: dict) -> dict[str, Any]:
    model = config["model"]
    context = int(config["mix"]["context_length"])
    schedule = compute.pretrain_schedule(config["pretrain"], context)
    mix = token_mix(config)
    return {
        "run": config["run"],
        "model": {
            "parameters": compute.parameter_count(model),
            "matmul_parameters": compute.matmul_parameters(model),
            "training_flops_per_token": compute.model_flops_per_token(model, schedule["seq_len"]),
            "flops_formula": "6·N + 12·L·H·Q·T per trained token (trellis.train.compute)",
            "context_length": context,
            "schedule": schedule,
        },
        "mix": {"components": mix, "total_tokens": sum(r["tokens"] for r in mix)},
        "compute": compute.compute_plan(config),
        "accelerator": dict(config["resources"]["accelerator"]),
        "labeling": labeling(config),
        "costs": costs(config),
        "downloads": downloads(config),
        "disk": disk(config),
    }


def _table(rows: list[dict], columns: list[str], formats: dict[str, str] | None = None) -> str:
    formats = formats or {}
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        cells = []
        for c in columns:
            value = row.get(c, "")
            cells.append(format(value, formats[c]) if c in formats and value != "" else str(value))
        lines.append("| " + " | ".join(cells).replace("\n", " ") + " |")
    return "\n".join(lines)


def _code_path(what: str) -> str:
    """``what`` with its results paths in backticks (so their <placeholders> are not read as HTML)."""
    paths, paren, note = what.partition(" (")
    words = [f"`{w}`" if "/" in w else w for w in paths.split(" ")]
    return " ".join(words) + paren + note


def _schedule_lines(schedule: dict | None) -> list[str]:
    """The Batch API schedule as a table and a sentence (nothing for other backends)."""
    if not schedule:
        return []
    limit = schedule["enqueued_token_limit"]
    rows = [
        r
        | {
            "requests": f"{r['requests']:,}",
            "enqueued_prompt_tokens": f"{r['enqueued_prompt_tokens'] / 1e6:,.2f}M",
            "estimated_usd": f"${r['estimated_usd']:,.2f}",
            "cap_usd": "—" if r["cap_usd"] is None else f"${r['cap_usd']:,.0f}",
        }
        for r in schedule["tasks"]
    ]
    queue = (
        f"under the enqueued-token limit of {limit / 1e6:,.0f}M (labels.batch.enqueued_token_limit) "
        f"they go through the queue in {schedule['queue_waves']} wave(s)"
        if limit
        else "with no enqueued-token limit configured they are all submitted at once"
    )
    return [
        _table(rows, ["task", "requests", "enqueued_prompt_tokens", "batches", "estimated_usd", "cap_usd"]),
        "",
        f"{schedule['total_enqueued_prompt_tokens'] / 1e6:,.1f}M prompt tokens in all; {queue}: about "
        f"{schedule['expected_hours']:,.0f} h at {schedule['typical_batch_hours']:g} h a batch (an "
        f"assumption; OpenAI promises only the window), at most {schedule['max_hours_first_round']:,} h "
        "for the first round. Resubmission rounds for expired answers come on top.",
        "",
    ]


def to_markdown(plan: dict) -> str:
    m = plan["model"]
    s = m["schedule"]
    parts = [
        f"# Plan of run `{plan['run']}`",
        "",
        "## Model",
        "",
        f"- parameters: **{m['parameters']:,}** ({m['matmul_parameters']:,} in matrix multiplications)",
        f"- training FLOPs per token: {m['training_flops_per_token']:.4g}, by {m['flops_formula']}",
        f"- schedule: {s['tokens']:,} tokens = {s['optimizer_steps']:,} optimizer steps of "
        f"{s['tokens_per_step']:,} tokens ({s['iterations']:,} micro-batches, gradient accumulation "
        f"{s['gradient_accumulation']}, {s['world_size']} device(s)), context {m['context_length']:,}",
        "",
        "## Token mix (per pretrained arm)",
        "",
        _table(
            plan["mix"]["components"],
            ["component", "source", "tokens", "share", "curated_arm_reads", "other_arms_read", "upsample"],
            {"tokens": ",", "share": ".1%"},
        ),
        "",
        f"Total: {plan['mix']['total_tokens']:,} tokens.",
        "",
        f"## Compute per arm ({plan['accelerator']['name']}, {float(plan['accelerator']['mfu']):.0%} MFU, "
        f"${float(plan['accelerator']['usd_per_gpu_hour']):.2f} per GPU-hour)",
        "",
        _table(
            plan["compute"],
            [
                "arm",
                "kind",
                "parameters",
                "pretrain_tokens",
                "pretrain_flops",
                "sft_flops",
                "dpo_flops",
                "total_flops",
                "gpu_hours",
                "cost_usd",
            ],
            {
                "parameters": ",",
                "pretrain_tokens": ",",
                "pretrain_flops": ".3g",
                "sft_flops": ".3g",
                "dpo_flops": ".3g",
                "total_flops": ".3g",
                "gpu_hours": ",.1f",
                "cost_usd": ",.0f",
            },
        ),
        "",
        f"Total: {sum(r['gpu_hours'] for r in plan['compute']):,.1f} GPU-hours, "
        f"${sum(r['cost_usd'] for r in plan['compute']):,.0f}.",
        "",
        "## Labeling",
        "",
        f"{plan['labeling']['backend']} ({plan['labeling']['model']}): "
        + ", ".join(f"{n:,} {d} documents" for d, n in plan["labeling"]["documents"].items())
        + " (each labeled for every task of its domain).",
        "",
        *_schedule_lines(plan["labeling"].get("schedule")),
        "## Costs beside the seeds' estimates",
        "",
        _table(
            [
                r | {"gpu_hours": "—" if r["gpu_hours"] is None else f"{r['gpu_hours']:,.1f}"}
                for r in plan["costs"]["rows"]
            ],
            ["what", "scope", "gpu_hours", "usd", "seeds", "note"],
            {"usd": ",.0f"},
        ),
        "",
        f"Total: {plan['costs']['total_gpu_hours']:,.1f} GPU-hours, ${plan['costs']['total_usd']:,.0f} "
        "(the seeds' on-demand total: ~$805-910, for two arms and no Pythia post-training).",
        "",
        "## Downloads",
        "",
        _table(plan["downloads"], ["what", "repo", "revision", "files"])
        if plan["downloads"]
        else "Nothing: every input is generated or ships in an installed package.",
        "",
        "## Disk (estimated, under results/ unless said)",
        "",
        _table(
            [
                r | {"what": _code_path(r["what"]), "size": human_bytes(r["bytes"])}
                for r in plan["disk"]["stages"]
            ],
            ["stage", "what", "size", "basis"],
        ),
        "",
        f"Total: {human_bytes(plan['disk']['total_bytes'])} ({plan['disk']['total_bytes']:,} bytes).",
        "",
        "The source sizes these assume:",
        "",
        _table(
            plan["disk"]["sources"],
            ["source", "tokens", "documents", "basis"],
            {"tokens": ",", "documents": ","},
        ),
        "",
    ]
    return "\n".join(parts)


def write_plan(config: dict, md_path: str | Path, json_path: str | Path) -> dict:
    plan = build_plan(config)
    write_json(json_path, plan)
    with atomic_path(md_path) as tmp:
        Path(tmp).write_text(to_markdown(plan))
    return plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trellis.report.plan", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--configfile", default="config/config.yaml")
    args = parser.parse_args(argv)
    config = yaml.safe_load(Path(args.configfile).read_text())
    print(to_markdown(build_plan(config)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
