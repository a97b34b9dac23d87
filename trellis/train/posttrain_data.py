"""Post-training data: the SFT and DPO files every arm is post-trained on, and their manifest.

Generated rows come from ``trellis.structured.examples`` (train pools only, so the evaluation
schemas and functions stay unseen by construction). The study adds real public sets
(``posttrain.public``): xLAM function calling (Salesforce/xlam-function-calling-60k), converted
to the same prompt and answer shape, with every example that shows an evaluation function
(``trellis.evaluate.identities``; the rule is ``trellis.structured.disjoint``) dropped and counted.
Every arm of the study is post-trained on the same files (same rows; trellis.train.posttrain
derives one example order from the seed), so the post-training recipe cannot explain a
difference between arms.

Files are JSON Lines, one row a line, in the row shapes of ``trellis.structured.examples``.

Given the study's tokenizer, conversations longer than ``max_length`` tokens are dropped here
(counted), once for every arm, and token counts are recorded for the compute plan. The manifest
records counts per task and source, sha256 of both files, what each public set kept and skipped
and why, and the train schema names/hashes and function names used, so the benchmark can prove
its eval items are disjoint from them.
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
from trellis.evaluate.identities import eval_function_identities
from trellis.structured import pools as sp
from trellis.structured import prompts
from trellis.structured.disjoint import shows_identity
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


def xlam_examples(path: str | Path, eval_names: set[str], eval_hashes: set[str]) -> tuple[list[dict], dict]:
    """Function-calling examples from an xLAM JSON file, and counted stats of what was skipped.

    Kept: every call names a listed tool, its arguments validate against the converted schema,
    and no tool's name or parameter schema is one an evaluation shows (``eval_names``,
    ``eval_hashes``). The file is xLAM's JSON array (60k rows, tens of MB: read whole).
    """
    path = Path(path)
    try:
        rows = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not a JSON file: {err}") from err
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a JSON array of examples, got {type(rows).__name__}")
    kept, skipped, odd_types = [], Counter(), Counter()
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
        if any(shows_identity(f, eval_names, eval_hashes) for f in functions):
            skipped["evaluation_function"] += 1
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
    }
    return kept, stats


PUBLIC_READERS = {"xlam": xlam_examples}


def fetch_public_file(repo: str, revision: str, filename: str, out_dir: str | Path) -> dict:
    """Download one file of a Hugging Face dataset repo into ``out_dir`` (atomically) + fetch.json.

    Gated sets (xLAM is) need HF_TOKEN with the terms accepted on the hub.
    """
    # Imported at call time: only the fetch rule needs the hub client (and the offline test
    # replaces huggingface_hub.hf_hub_download, which a module-level name would not see).
    from huggingface_hub import hf_hub_download

    cached = Path(hf_hub_download(repo_id=repo, filename=filename, revision=revision, repo_type="dataset"))
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
    name: str, spec: dict, path: str | Path, seed: int, eval_identities: tuple[set[str], set[str]]
) -> tuple[list[dict], list[dict], dict]:
    """SFT rows and DPO pairs from one public set (``posttrain.public.<name>``), and its stats.

    The usable examples are shuffled with the seed; the first ``sft_examples`` become SFT rows,
    the next ``dpo_pairs`` DPO pairs (disjoint, as for the generated data).
    """
    if spec["kind"] not in PUBLIC_READERS:
        raise ValueError(
            f"posttrain.public.{name}.kind: {spec['kind']!r} is not one of {sorted(PUBLIC_READERS)}"
        )
    examples, stats = PUBLIC_READERS[spec["kind"]](path, *eval_identities)
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
) -> dict:
    """Build and write SFT and DPO data plus a manifest (beside the SFT file unless given).

    ``public``: ``posttrain.public`` with each set's fetched directory under ``"dir"`` (the
    fetch_posttrain_data output). ``tokenizer_dir``/``max_length``: drop what does not fit and
    count tokens (skipped when no tokenizer is given).
    """
    sft, dpo = build_sft(n_sft, seed), build_dpo(n_dpo, seed)
    public_report: dict[str, dict] = {}
    if public:
        eval_ids = eval_function_identities()
        for name, spec in public.items():
            folder = Path(spec["dir"])
            fetched = json.loads((folder / "fetch.json").read_text())
            path = folder / Path(spec["file"]).name
            rows_sft, rows_dpo, stats = build_public(name, spec, path, seed, eval_ids)
            sft, dpo = sft + rows_sft, dpo + rows_dpo
            public_report[name] = fetched | {
                "stats": stats,
                "sft_rows": len(rows_sft),
                "dpo_rows": len(rows_dpo),
            }
            log.info("%s: %s", name, stats)
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
        "train_pool": used_identities(seed, n_sft, n_dpo),
        "train_pool_all_function_names": sp.all_function_names("train"),
    }
    manifest_path = manifest_path or Path(sft_path).with_name("manifest.json")
    write_json(manifest_path, manifest)
    return manifest
