"""Post-training data: the SFT and DPO files every arm is post-trained on, and their manifest.

Generated rows come from ``trellis.structured.examples`` (train pools only, so the evaluation
schemas and functions stay unseen by construction). Real-schema rows (``posttrain.real_schemas``)
come from ``trellis.train.real_schemas``: real schemas of the families on the train side of
``schema_sources.split_of``, made the way the JSON suite v2 makes its items. The study adds real
public sets (``posttrain.public``): xLAM function calling (Salesforce/xlam-function-calling-60k),
converted to the same prompt and answer shape.

Nothing here may show what an evaluation shows: ``trellis.structured.disjoint``'s rule (same
normal form, similar property names, the same function name, the same source file or family)
decides, against ``identities.evaluation_index``. Real-schema candidates and public examples that
break it are passed over when they are read, and then every row, whatever built it, is checked
once more by what its prompt shows; each drop is counted by source and rule in the manifest.
Every arm of the study is post-trained on the same files (same rows; trellis.train.posttrain
derives one example order from the seed), so the post-training recipe cannot explain a
difference between arms.

Files are JSON Lines, one row a line, in the row shapes of ``trellis.structured.examples``.

Given the study's tokenizer, conversations longer than ``max_length`` tokens are dropped here
(counted), once for every arm, and token counts are recorded for the compute plan. The manifest
records counts per task and source, sha256 of both files, what each public set kept and skipped
and why, the train schema names/hashes and function names used, the real-schema sources, families
and files per split, and the rows dropped by the disjointness rule, so the benchmark can prove its
eval items are disjoint from them (``disjoint.check_posttrain_files`` checks the written files).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from trellis.core.io import atomic_directory, write_json, write_jsonl
from trellis.evaluate.identities import evaluation_index
from trellis.structured import pools as sp
from trellis.structured import prompts
from trellis.structured.disjoint import JACCARD_MIN, MIN_NAMES, EvalIndex
from trellis.structured.examples import (
    build_dpo,
    build_sft,
    check_call_answer,
    derived_rng,
    dpo_row,
    sft_row,
    used_identities,
)
from trellis.tokens.tkds import sha256_file
from trellis.train import real_schemas as rs

log = logging.getLogger(__name__)


# --- public sets: xLAM function calling ------------------------------------------------------

# xLAM parameter types are Python-style strings ("str", "List[int]", "Optional[str]",
# "str, optional"); these are the ones with a JSON Schema equivalent.
_XLAM_TYPES = {
    "str": "string",
    "string": "string",
    "int": "integer",
    "integer": "integer",
    "float": "number",
    "number": "number",
    "bool": "boolean",
    "boolean": "boolean",
    "list": "array",
    "array": "array",
    "dict": "object",
    "object": "object",
}


def xlam_parameter_schema(type_text: str) -> tuple[dict | None, bool]:
    """(JSON Schema, optional?) for an xLAM parameter type; (None, _) when it has no equivalent."""
    t, optional = type_text.strip(), False
    if t.lower().endswith(", optional"):
        t, optional = t[: -len(", optional")].strip(), True
    m = re.fullmatch(r"Optional\[(.+)\]", t)
    if m:
        t, optional = m.group(1).strip(), True
    m = re.fullmatch(r"(?:List|list)\[(.+)\]", t)
    if m:
        items, _ = xlam_parameter_schema(m.group(1))
        return ({"type": "array", "items": items} if items else None), optional
    if re.fullmatch(r"(?:Dict|dict)\[.+\]", t):
        return {"type": "object"}, optional
    base = _XLAM_TYPES.get(t.lower())
    return ({"type": base} if base else None), optional


def xlam_function(tool: dict) -> dict:
    """An xLAM tool as a BFCL/OpenAI function definition (JSON Schema parameters).

    A parameter is required when it has no default and its type is not marked optional. Raises
    ValueError naming the parameter whose type has no JSON Schema equivalent.
    """
    properties, required = {}, []
    for name, spec in (tool.get("parameters") or {}).items():
        schema, optional = xlam_parameter_schema(str(spec.get("type", "")))
        if schema is None:
            raise ValueError(f"unsupported parameter type {spec.get('type')!r} ({tool['name']}.{name})")
        if spec.get("description"):
            schema["description"] = str(spec["description"])
        properties[name] = schema
        if "default" not in spec and not optional:
            required.append(name)
    return {
        "name": tool["name"],
        "description": str(tool.get("description", "")),
        "parameters": {"type": "object", "properties": properties, "required": required},
    }


def _json_field(value: Any) -> Any:
    # The published file stores tools and answers as JSON-encoded strings; a converted copy may not.
    return json.loads(value) if isinstance(value, str) else value


def xlam_examples(path: str | Path, index: EvalIndex) -> tuple[list[dict], dict]:
    """Function-calling examples from an xLAM JSON file, and counted stats of what was skipped.

    Kept: every call names a listed tool, its arguments validate against the converted schema,
    and no tool shows an evaluation item (``index.function_leak``: its name, or its parameters by
    normal form or property names; counted under "evaluation_function" and, by rule, in
    "evaluation_rules"). The file is xLAM's JSON array (60k rows, tens of MB: read whole).
    """
    path = Path(path)
    try:
        rows = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not a JSON file: {err}") from err
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a JSON array of examples, got {type(rows).__name__}")
    kept, skipped, odd_types, rules = [], Counter(), Counter(), Counter()
    for k, row in enumerate(rows):
        try:
            query, tools, answers = row["query"], _json_field(row["tools"]), _json_field(row["answers"])
        except (KeyError, TypeError, json.JSONDecodeError):
            skipped["malformed"] += 1
            continue
        if (
            not isinstance(tools, list)
            or not isinstance(answers, list)
            or not answers
            or not str(query).strip()
        ):
            skipped["malformed"] += 1
            continue
        try:
            functions = [xlam_function(t) for t in tools]
        except ValueError as err:
            skipped["unsupported_parameter_type"] += 1
            odd_types[str(err).split("'")[1] if "'" in str(err) else str(err)] += 1
            continue
        except (KeyError, TypeError, AttributeError):
            skipped["malformed"] += 1
            continue
        leak = next(filter(None, map(index.function_leak, functions)), None)
        if leak:
            skipped["evaluation_function"] += 1
            rules[leak.kind] += 1
            continue
        calls = [
            {"name": a.get("name"), "arguments": a.get("arguments", {})}
            for a in answers
            if isinstance(a, dict)
        ]
        if len(calls) != len(answers):
            skipped["malformed"] += 1
            continue
        err = check_call_answer(prompts.json_answer(calls), functions, calls)
        if err:
            skipped["unknown_function" if err.startswith("unknown function") else "arguments_invalid"] += 1
            continue
        item = f"xlam-{row.get('id', k)}"
        kept.append(
            {
                "messages": prompts.function_call_messages(str(query), functions),
                "answer": calls,
                "functions": functions,
                "item": item,
            }
        )
    stats = {
        "rows": len(rows),
        "kept": len(kept),
        "skipped": dict(sorted(skipped.items())),
        "unsupported_types": dict(odd_types.most_common(10)),
        "evaluation_rules": dict(sorted(rules.items())),
    }
    return kept, stats


PUBLIC_READERS = {"xlam": xlam_examples}


def fetch_public_file(
    repo: str, revision: str, filename: str, out_dir: str | Path, name: str = "", gated: bool = False
) -> dict:
    """Download one file of a Hugging Face dataset repo into ``out_dir`` (atomically) + fetch.json.

    Gated sets (xLAM is: ``posttrain.public.<name>.gated``) need HF_TOKEN with the terms accepted on
    the hub; a missing token, a refusal or a vanished revision is an error naming the set, the
    repo, the variable and the page where the terms are accepted.
    """
    from trellis.acquire.download import download_hub_file

    cached = download_hub_file(
        repo,
        filename,
        revision,
        name=name or repo,
        what="posttrain.public",
        revision_key=f"posttrain.public.{name}.revision",
        gated=gated,
    )
    info = {
        "repo": repo,
        "revision": revision,
        "file": filename,
        "bytes": cached.stat().st_size,
        "sha256": sha256_file(cached),
    }
    with atomic_directory(out_dir) as tmp:
        shutil.copyfile(cached, tmp / Path(filename).name)
        write_json(tmp / "fetch.json", info)
    return info


# --- public API -------------------------------------------------------------------------------


def build_public(
    name: str, spec: dict, path: str | Path, seed: int, index: EvalIndex
) -> tuple[list[dict], list[dict], dict]:
    """SFT rows and DPO pairs from one public set (``posttrain.public.<name>``), and its stats.

    The usable examples are shuffled with the seed; the first ``sft_examples`` become SFT rows,
    the next ``dpo_pairs`` DPO pairs (disjoint, as for the generated data).
    """
    if spec["kind"] not in PUBLIC_READERS:
        raise ValueError(
            f"posttrain.public.{name}.kind: {spec['kind']!r} is not one of {sorted(PUBLIC_READERS)}"
        )
    examples, stats = PUBLIC_READERS[spec["kind"]](path, index)
    n_sft, n_dpo = int(spec["sft_examples"]), int(spec["dpo_pairs"])
    if len(examples) < n_sft + n_dpo:
        raise ValueError(
            f"{path}: {len(examples)} usable examples ({stats['skipped']} skipped), but "
            f"posttrain.public.{name} asks for sft_examples + dpo_pairs = {n_sft + n_dpo}"
        )
    derived_rng(seed, f"public-{name}").shuffle(examples)
    sft = [sft_row("function_call", ex, name) for ex in examples[:n_sft]]
    rejections = derived_rng(seed, f"public-{name}-rejections")
    dpo = [dpo_row("function_call", ex, rejections, name) for ex in examples[n_sft : n_sft + n_dpo]]
    return sft, dpo, stats


def build_real_schemas(spec: dict, seed: int, index: EvalIndex) -> tuple[list[dict], list[dict], dict]:
    """SFT rows and DPO pairs from real train-side schemas (``posttrain.real_schemas``), and what
    the selection passed over (counted by reason).

    The selected examples are shuffled with the seed; the first ``sft_examples`` become SFT rows,
    the rest DPO pairs, so no schema is in both. Each row keeps its ``origin`` (source, file,
    pointer, family, split), which the disjointness check reads.
    """
    n_sft, n_dpo = int(spec["sft_examples"]), int(spec["dpo_pairs"])
    selection = rs.select(n_sft + n_dpo, seed, index, int(spec["per_family"]), spec.get("max_chars"))
    examples = selection.examples
    if len(examples) < n_sft + n_dpo:
        raise ValueError(
            f"posttrain.real_schemas asks for sft_examples + dpo_pairs = {n_sft + n_dpo}, but the train side "
            f"of {', '.join(rs.SOURCES)} gives {len(examples)} usable examples at per_family="
            f"{spec['per_family']} over {selection.families} families "
            f"(passed over: {dict(selection.dropped)})"
        )
    derived_rng(seed, "real-schemas-split").shuffle(examples)
    sft = [
        sft_row(ex["task"], ex, ex["origin"]["source"]) | {"origin": ex["origin"]} for ex in examples[:n_sft]
    ]
    rejections = derived_rng(seed, "real-schemas-rejections")
    dpo = [
        dpo_row(ex["task"], ex, rejections, ex["origin"]["source"]) | {"origin": ex["origin"]}
        for ex in examples[n_sft:]
    ]
    stats = {
        "selected": len(examples),
        "train_side_families": selection.families,
        "passed_over": dict(sorted(selection.dropped.items())),
    }
    return sft, dpo, stats


def real_schema_report(spec: dict, stats: dict, sft: list[dict], dpo: list[dict]) -> dict:
    """The manifest's ``real_schemas`` section for the rows written: per source and family, and the
    sources, families and files per split (train: these rows; eval: the JSON suite v2's)."""
    rows = [r for r in sft + dpo if "origin" in r]
    per_source: dict[str, dict] = {}
    for stage, stage_rows in (("sft", sft), ("dpo", dpo)):
        for r in stage_rows:
            if "origin" in r:
                entry = per_source.setdefault(r["origin"]["source"], {"sft_rows": 0, "dpo_rows": 0})
                entry[f"{stage}_rows"] += 1
    splits = {"train": rs.splits_used(rows), "eval": rs.eval_splits_used()}
    for source, entry in per_source.items():
        entry["families"] = len(splits["train"][source]["families"])
        entry["files"] = len(splits["train"][source]["files"])
    per_family = Counter(f"{r['origin']['source']}:{r['origin']['family']}" for r in rows)
    return {
        "config": dict(spec),
        **stats,
        "rows": len(rows),
        "sources": dict(sorted(per_source.items())),
        "per_family": dict(sorted(per_family.items())),
        "splits": splits,
    }


def drop_leaks(rows: list[dict], index: EvalIndex) -> tuple[list[dict], dict[str, dict[str, int]]]:
    """The rows that show no evaluation item by what their prompt shows and their origin
    (``EvalIndex.row_leak``), and the dropped ones counted by source and rule."""
    kept, dropped = [], {}
    for row in rows:
        leak = index.row_leak(row)
        if leak is None:
            kept.append(row)
            continue
        by_rule = dropped.setdefault(row["source"], {})
        by_rule[leak.kind] = by_rule.get(leak.kind, 0) + 1
        log.info("dropped %s row %s: shows %s", row["source"], row["item"], leak)
    return kept, {k: dict(sorted(v.items())) for k, v in sorted(dropped.items())}


def chat_tokenizer(path: str | Path):
    """The tokenizer at ``path`` with the post-training chat template (and eos as pad if it has none)."""
    # Imported here: transformers is heavy, and building the data without a tokenizer needs none.
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    # The same template for every arm, whatever the base tokenizer shipped with.
    tokenizer.chat_template = prompts.CHAT_TEMPLATE
    if tokenizer.eos_token is None:
        raise ValueError(f"{path}: tokenizer has no eos token; the chat template needs one")
    if tokenizer.pad_token is None:
        # Pythia-style tokenizers may lack a pad token; padding is masked out, so eos is safe.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def conversation_tokens(tokenizer, messages: list[dict]) -> int:
    """Tokens of a conversation rendered with the chat template (what SFT/DPO train on)."""
    return len(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])


def fit_to_length(rows: list[dict], tokenizer, max_length: int, answer_keys: tuple[str, ...]):
    """Rows whose every conversation fits ``max_length`` tokens, dropped counts by source, token stats.

    Dropped rather than truncated: truncation cuts the answer, which would teach the model to
    stop mid-JSON without eos (SFT) or compare unfinished answers (DPO).
    """
    kept, dropped, tokens, sequences = [], Counter(), 0, 0
    for row in rows:
        lengths = [conversation_tokens(tokenizer, row["prompt"] + row[k]) for k in answer_keys]
        if max(lengths) > max_length:
            dropped[row.get("source", "generated")] += 1
            continue
        kept.append(row)
        tokens += sum(lengths)
        sequences += len(lengths)
    return kept, dict(sorted(dropped.items())), {"tokens": tokens, "mean_tokens": tokens / max(1, sequences)}


def write_posttrain_data(
    sft_path,
    dpo_path,
    n_sft: int,
    n_dpo: int,
    seed: int,
    manifest_path=None,
    public: dict | None = None,
    tokenizer_dir=None,
    max_length: int | None = None,
    real_schemas: dict | None = None,
    index: EvalIndex | None = None,
) -> dict:
    """Build and write SFT and DPO data plus a manifest (beside the SFT file unless given).

    ``public``: ``posttrain.public`` with each set's fetched directory under ``"dir"`` (the
    fetch_posttrain_data output). ``tokenizer_dir``/``max_length``: drop what does not fit and
    count tokens (skipped when no tokenizer is given). ``real_schemas``: ``posttrain.real_schemas``
    (None or zero counts: none). ``index``: the evaluation side of the disjointness rule
    (default ``identities.evaluation_index()``).
    """
    index = index if index is not None else evaluation_index()
    sft, dpo = build_sft(n_sft, seed), build_dpo(n_dpo, seed)
    real_stats = None
    if real_schemas and int(real_schemas.get("sft_examples", 0)) + int(real_schemas.get("dpo_pairs", 0)):
        rows_sft, rows_dpo, real_stats = build_real_schemas(real_schemas, seed, index)
        sft, dpo = sft + rows_sft, dpo + rows_dpo
        log.info("real schemas: %d SFT rows, %d DPO pairs; %s", len(rows_sft), len(rows_dpo), real_stats)
    public_report: dict[str, dict] = {}
    if public:
        for name, spec in public.items():
            folder = Path(spec["dir"])
            fetched = json.loads((folder / "fetch.json").read_text())
            path = folder / Path(spec["file"]).name
            rows_sft, rows_dpo, stats = build_public(name, spec, path, seed, index)
            sft, dpo = sft + rows_sft, dpo + rows_dpo
            public_report[name] = fetched | {
                "stats": stats,
                "sft_rows": len(rows_sft),
                "dpo_rows": len(rows_dpo),
            }
            log.info("%s: %s", name, stats)
    # The rule once more over every row, by what its prompt shows (generated rows included: their
    # pools are disjoint by entity, but property names can still coincide with an evaluation's).
    sft, leaks_sft = drop_leaks(sft, index)
    dpo, leaks_dpo = drop_leaks(dpo, index)
    # One file order mixing the sources (generated rows are already interleaved by task).
    derived_rng(seed, "sft-file-order").shuffle(sft)
    derived_rng(seed, "dpo-file-order").shuffle(dpo)

    dropped = {"sft": {}, "dpo": {}}
    tokens = {"sft": {"tokens": None, "mean_tokens": None}, "dpo": {"tokens": None, "mean_tokens": None}}
    if tokenizer_dir is not None:
        if max_length is None:
            raise ValueError("max_length is needed with tokenizer_dir (posttrain.max_length)")
        tokenizer = chat_tokenizer(tokenizer_dir)
        sft, dropped["sft"], tokens["sft"] = fit_to_length(sft, tokenizer, max_length, ("completion",))
        dpo, dropped["dpo"], tokens["dpo"] = fit_to_length(dpo, tokenizer, max_length, ("chosen", "rejected"))
        for stage, rows in (("sft", sft), ("dpo", dpo)):
            if not rows:
                raise ValueError(f"no {stage} example fits posttrain.max_length={max_length} tokens")

    def section(stage: str, path, rows: list[dict]) -> dict:
        return {
            "path": str(path),
            "rows": len(rows),
            "sha256": write_jsonl(path, rows),
            "tasks": dict(sorted(Counter(r["task"] for r in rows).items())),
            "sources": dict(sorted(Counter(r["source"] for r in rows).items())),
            "dropped_too_long": dropped[stage],
            **tokens[stage],
        }

    manifest = {
        "seed": seed,
        "format": "jsonl",
        "tokenizer": str(tokenizer_dir) if tokenizer_dir is not None else None,
        "max_length": max_length,
        "sft": section("sft", sft_path, sft),
        "dpo": section("dpo", dpo_path, dpo)
        | {"rejections": dict(sorted(Counter(r["rejection"] for r in dpo).items()))},
        "public": public_report,
        "real_schemas": real_schema_report(real_schemas, real_stats, sft, dpo) if real_stats else None,
        "disjoint": {
            "rule": "trellis.structured.disjoint",
            "jaccard_min": JACCARD_MIN,
            "min_names": MIN_NAMES,
            "eval_items": len(index.items),
            "dropped": {"sft": leaks_sft, "dpo": leaks_dpo},
        },
        "train_pool": used_identities(seed, n_sft, n_dpo),
        "train_pool_all_function_names": sp.all_function_names("train"),
    }
    manifest_path = manifest_path or Path(sft_path).with_name("manifest.json")
    write_json(manifest_path, manifest)
    return manifest
