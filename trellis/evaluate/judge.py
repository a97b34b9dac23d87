"""An LLM judge of extraction answers, for where exact match is not enough.

The extraction benchmark (``trellis.evaluate.extraction``) scores a model's record field by field
with exact comparison (``field_accuracy``): ``"150"`` for ``150``, ``"New York City"`` for ``"NYC"``
or a date written another way count as wrong, and a value the text never states goes unnoticed
as long as the reference fields match. The judge reads the same per-example outputs (the
``extraction.json`` an evaluate job wrote: source text, schema, reference record, model output)
and asks a frontier model, per reference field, whether the model's answer states the same fact,
and, for the whole record, whether it is a faithful extraction.

Requests go through the labeling stage's OpenAI Batch backend (``trellis.labels.openai_batch``:
its manifest, resumption, failure handling, queue ledger and cost cap), subclassed only for the
judge's prompt and per-example answer schema. What is asked (strict JSON-schema answer):

    {"analysis": "<at most two sentences>",
     "fields": {"f01": "correct"|"incorrect"|"missing", ...},  # one key per reference leaf field
     "verdict": "correct"|"incorrect"}                          # the whole record

Per-field judgements rather than one graded verdict: they give a metric that sits beside exact
``field_accuracy`` on the same fields (``judged_field_accuracy``), so the table shows exactly what
exact match undercounts; the record verdict adds what field comparison cannot see (values the text
does not state). The keys are ``f01..fNN`` (listed with their JSON pointers in the prompt), every
one required, so strict structured outputs guarantee one judgement per reference field.

Key names sort in the order they should be written: the batch backend writes request lines with
sorted keys, and a strict answer follows its schema's key order, so "analysis" < "fields" <
"verdict" has the model reason before it judges, and zero-padded field keys keep f02 before f10.

Metrics (per example, then means with bootstrap CIs, as every result file):
- judged_field_accuracy: share of the reference's leaf fields the judge calls correct;
- judged_record_accuracy: 1 when the record verdict is correct and every field is correct.

An output with no JSON in it is not sent (nothing to judge; both scores 0, as exact scoring gives
it). An example the judge leaves without a valid verdict after its retries keeps its exact-match
scores (``field_accuracy``, and 1 for the record only when that is 1), is listed as unjudged, and
more than ``evaluate.extraction.judge.max_unjudged_fraction`` of them fails the job.
"""

from __future__ import annotations

import hashlib
import json
import logging
import string
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from trellis.core.bootstrap import metric_intervals
from trellis.evaluate import json_schema
from trellis.evaluate.results import RESULT_FORMAT
from trellis.labels.prompts import parse_json_answer
from trellis.structured.prompts import extract_json

log = logging.getLogger("trellis.evaluate.judge")

BENCHMARK = "extraction_judged"
METRICS = ("judged_field_accuracy", "judged_record_accuracy")
FIELD_VERDICTS = ("correct", "incorrect", "missing")
RECORD_VERDICTS = ("correct", "incorrect")
PROMPT_VERSION = "extraction-judge-v1"
TRUNCATION_MARK = "\n[... truncated ...]"
BACKENDS = ("openai-batch",)

SYSTEM = """\
You grade a small language model's answer to a structured-extraction task. The model read a text \
and had to write the record it describes as JSON following a JSON Schema. You get the text, the \
schema, the reference record as numbered fields (JSON pointer = correct value) and the model's \
answer.

Judge meaning, not formatting. A field is:
- correct: the answer states the same fact as the reference value, however written: equal \
numbers (150, 150.0, "150"), the same date, name, unit or choice written differently, yes/no for \
a boolean, the same list items;
- incorrect: the answer gives a different value, or puts the value under a field that means \
something else;
- missing: the answer has no value for the field (absent or null).
A reference value of null means the text gives none: the field is correct when the answer has no \
value for it either (absent or null).

Then the record verdict: correct only when every numbered field is correct and the answer adds \
no value that the text does not state; otherwise incorrect.

Write the analysis first, at most two short sentences: name the fields that differ and why, or \
say that all fields match."""

USER = """\
Text:
$content

JSON Schema:
$schema

Reference fields:
$fields

Model answer:
$answer"""


@dataclass(frozen=True)
class JudgeTask:
    """What the batch backend calls a task: the name its manifest, ledger and messages carry.

    One per (arm, stage), so judge jobs running side by side hold separate reservations in the
    shared queue ledger (its keys start with the task name)."""

    name: str


def task_for(arm: str, stage: str) -> JudgeTask:
    return JudgeTask(f"extraction_judge-{arm}-{stage}")


def field_key(i: int, n_fields: int) -> str:
    """The answer key of field ``i`` of ``n_fields``: zero-padded, so keys sort in field order."""
    return f"f{i + 1:0{max(2, len(str(n_fields)))}d}"


def answer_schema(n_fields: int | None) -> dict[str, Any]:
    """The strict answer schema: ``fields`` with keys f01..f<n_fields>, all required (None: any
    f<k> keys, the shape every answer is checked against before its keys are matched to its
    example)."""
    verdict = {"type": "string", "enum": list(FIELD_VERDICTS)}
    if n_fields is None:
        fields: dict[str, Any] = {
            "type": "object",
            "patternProperties": {"^f[0-9]+$": verdict},
            "additionalProperties": False,
        }
    else:
        keys = [field_key(i, n_fields) for i in range(n_fields)]
        fields = {
            "type": "object",
            "properties": {k: verdict for k in keys},
            "required": keys,
            "additionalProperties": False,
        }
    return {
        "type": "object",
        "properties": {
            "analysis": {"type": "string"},
            "fields": fields,
            "verdict": {"type": "string", "enum": list(RECORD_VERDICTS)},
        },
        "required": ["analysis", "fields", "verdict"],
        "additionalProperties": False,
    }


def _cut(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[:max_chars] + TRUNCATION_MARK


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class JudgePrompt:
    """The judge's messages for one example, its answer schema, and the parsing of answers.

    Plays the part a ``trellis.labels.prompts.PromptBuilder`` plays for a labeling task (the batch
    backend asks its builder for ``prompt_version``, ``prompt_hash`` and ``parse``)."""

    def __init__(self, max_chars: int):
        if max_chars < 1:
            raise ValueError(f"labels.request.max_text_chars (the judge's cut) must be >= 1, got {max_chars}")
        self.max_chars = int(max_chars)
        self.schema = answer_schema(None)
        self._validator = jsonschema.Draft202012Validator(self.schema)
        fingerprint = {
            "version": PROMPT_VERSION,
            "system": SYSTEM,
            "user": USER,
            "schema": answer_schema(1),
            "max_chars": self.max_chars,
        }
        self.prompt_version = PROMPT_VERSION
        self.prompt_hash = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]

    def messages(self, row: dict[str, Any]) -> list[dict[str, str]]:
        n = len(row["fields"])
        lines = "\n".join(
            f"{field_key(i, n)} {pointer} = {_compact(value)}"
            for i, (pointer, value) in enumerate(row["fields"])
        )
        values = {
            "content": _cut(row["content"], self.max_chars),
            "schema": _cut(_compact(row["schema"]), self.max_chars),
            "fields": lines,
            "answer": _cut(_compact(row["answer"]), self.max_chars),
        }
        # string.Template: braces and dollars in a text or an answer are never interpreted.
        return [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": string.Template(USER).substitute(values)},
        ]

    def response_format(self, row: dict[str, Any], structured_outputs: bool) -> dict[str, Any]:
        if structured_outputs:
            return {
                "type": "json_schema",
                "json_schema": {
                    "name": "extraction_judgement",
                    "strict": True,
                    "schema": answer_schema(len(row["fields"])),
                },
            }
        # JSON mode (a server without structured outputs): the prompt spells out the keys; the
        # answer is checked after the fact.
        return {"type": "json_object"}

    def parse(self, content: Any) -> tuple[Any, str | None, str | None]:
        """(answer dict, None, None) for a well-formed answer, else (None, reason, detail).

        The answer's field keys are matched to its example later (``verdicts``): the backend
        parses an answer without knowing which example it belongs to."""
        return parse_json_answer(content, self._validator)


def _batch_labeler_class():
    # The OpenAI SDK (through the batch backend) is imported only when a judge runs.
    from trellis.labels.openai_batch import BatchLabeler

    class ExtractionJudge(BatchLabeler):
        """The Batch API labeler with the judge's prompt and a per-example answer schema."""

        backend = "openai-batch"

        def __init__(self, settings: dict[str, Any]):
            super().__init__(settings)
            self.prompt = JudgePrompt(int(self.request_cfg["max_text_chars"]))

        def builder(self, task):
            return self.prompt

        def body(self, task, row: dict[str, Any]) -> dict[str, Any]:
            body: dict[str, Any] = {
                "model": self.model,
                "messages": self.prompt.messages(row),
                "temperature": float(self.request_cfg["temperature"]),
                "max_completion_tokens": int(self.request_cfg["max_completion_tokens"]),
                "response_format": self.prompt.response_format(
                    row, bool(self.request_cfg["structured_outputs"])
                ),
            }
            if self.request_cfg.get("seed") is not None:
                body["seed"] = int(self.request_cfg["seed"])
            return body

    return ExtractionJudge


def make_judge(settings: dict[str, Any]):
    """The judge backend for ``settings`` (``judge_settings``)."""
    if settings.get("backend") not in BACKENDS:
        raise ValueError(
            f"config key evaluate.extraction.judge.backend = {settings.get('backend')!r}; "
            f"supported: {list(BACKENDS)}"
        )
    return _batch_labeler_class()(settings)


# ---- config --------------------------------------------------------------------------------

# What decides the verdicts (the judge rule's params, so a change reruns the judge): the judge's
# backend, model and max_completion_tokens, and these labels.request keys; the rest (prices, cost
# cap, ceiling, batch tuning) only steer or accept the judging. Not api_key_env nor dotenv_path:
# they name where the secret is, not what is asked.
DECIDING_REQUEST_KEYS = (
    "base_url",
    "temperature",
    "structured_outputs",
    "max_text_chars",
    "invalid_retries",
    "seed",
)


def _require(section: dict[str, Any], key: str, where: str) -> Any:
    if key not in section or section[key] is None:
        raise ValueError(f"config key {where}.{key} is required when evaluate.extraction.judge is set")
    return section[key]


def judge_params(judge_cfg: dict[str, Any], labels_cfg: dict[str, Any]) -> dict[str, Any]:
    """What decides the verdicts: the judge's backend, model and answer length, and the request
    settings it takes from labels.request (overridden by judge.request)."""
    request = {**dict(labels_cfg.get("request") or {}), **dict(judge_cfg.get("request") or {})}
    return {
        **{k: judge_cfg[k] for k in ("backend", "model", "max_completion_tokens") if k in judge_cfg},
        "request": {k: request.get(k) for k in DECIDING_REQUEST_KEYS},
    }


def judge_settings(judge_cfg: dict[str, Any], labels_cfg: dict[str, Any], n_jobs: int) -> dict[str, Any]:
    """The labels-shaped config the batch backend reads, for one judge job of ``n_jobs``.

    Reused from ``labels``: ``request`` (server, key variable, temperature, seed, structured
    outputs, invalid_retries, max_text_chars as the cut of each text, schema and answer) and
    ``batch`` (completion window, limits, polling, rounds, queue ledger settings), each overridable
    key by key under ``judge.request`` / ``judge.batch``. The judge's own: ``model``, ``prices`` (the
    judge's model through the Batch API, never ``labels.prices``: another model may cost another
    price), ``max_completion_tokens`` (a judgement is longer than a label), ``max_cost_usd`` (all
    judge jobs together; each gets an equal share as its ``max_estimated_cost_usd``) and
    ``max_unjudged_fraction``.
    """
    where = "evaluate.extraction.judge"
    backend = _require(judge_cfg, "backend", where)
    if backend not in BACKENDS:
        raise ValueError(f"config key {where}.backend = {backend!r}; supported: {list(BACKENDS)}")
    prices = dict(_require(judge_cfg, "prices", where))
    for key in ("input_per_million", "output_per_million"):
        _require(prices, key, f"{where}.prices")
    cap = judge_cfg.get("max_cost_usd")
    if n_jobs < 1:
        raise ValueError(f"{where}: no (arm, stage) to judge (n_jobs = {n_jobs})")
    request = {
        **dict(labels_cfg.get("request") or {}),
        **dict(judge_cfg.get("request") or {}),
        "max_completion_tokens": int(_require(judge_cfg, "max_completion_tokens", where)),
    }
    for key in ("temperature", "structured_outputs", "max_text_chars", "invalid_retries"):
        if key not in request:
            raise ValueError(
                f"config key labels.request.{key} (or {where}.request.{key}) is required for the judge"
            )
    batch = {
        **dict(labels_cfg.get("batch") or {}),
        **dict(judge_cfg.get("batch") or {}),
        "max_estimated_cost_usd": None if cap is None else float(cap) / n_jobs,
    }
    return {
        "backend": backend,
        "model": str(_require(judge_cfg, "model", where)),
        "request": request,
        "batch": batch,
        "prices": {k: float(prices[k]) for k in ("input_per_million", "output_per_million")},
        "max_unjudged_fraction": float(judge_cfg.get("max_unjudged_fraction", 0.02)),
    }


# ---- rows, verdicts, the result --------------------------------------------------------------

JUDGE_INPUT_KEYS = ("content", "schema", "reference")


def judge_rows(extraction_result: dict[str, Any], path: str = "extraction result") -> tuple[list, list]:
    """(rows to ask about, ids of examples with no JSON to judge) from an extraction result.

    A row's id is the example id and a hash of what is asked, so a re-evaluated arm (other
    outputs, same example ids) asks again rather than reusing the manifest's old verdicts."""
    if extraction_result.get("benchmark") != "extraction":
        raise ValueError(f"{path}: benchmark is {extraction_result.get('benchmark')!r}, not 'extraction'")
    rows, skipped = [], []
    for i, ex in enumerate(extraction_result["examples"]):
        missing = [k for k in JUDGE_INPUT_KEYS + ("id", "output") if k not in ex]
        if missing:
            raise KeyError(
                f"{path}: examples[{i}] lacks {missing}: written before the judge existed? rerun the "
                f"evaluate job (trellis.evaluate.extraction.score_example writes them)"
            )
        answer, error = extract_json(ex["output"])
        if error is not None:
            skipped.append(ex["id"])
            continue
        row = {
            "example_id": ex["id"],
            "content": ex["content"],
            "schema": ex["schema"],
            "fields": list(json_schema.leaf_fields(ex["reference"]).items()),
            "answer": answer,
        }
        digest = hashlib.sha256(
            json.dumps([row["content"], row["schema"], row["fields"], answer], sort_keys=True).encode()
        ).hexdigest()[:12]
        rows.append({"id": f"{ex['id']}@{digest}", **row})
    return rows, skipped


def verdicts(row: dict[str, Any], answer: dict[str, Any]) -> tuple[dict | None, str | None]:
    """({pointer: verdict}, None) when the answer judges exactly this row's fields, else (None, why)."""
    n = len(row["fields"])
    expected = [field_key(i, n) for i in range(n)]
    got = answer["fields"]
    if set(got) != set(expected):
        extra, lacking = sorted(set(got) - set(expected)), sorted(set(expected) - set(got))
        return None, f"field keys: {len(lacking)} not judged {lacking[:5]}, {len(extra)} unknown {extra[:5]}"
    return {pointer: got[field_key(i, n)] for i, (pointer, _) in enumerate(row["fields"])}, None


def _exact_field_matches(row: dict[str, Any]) -> dict[str, bool]:
    # The exact scorer's own comparison, so agreement is measured on what field_accuracy counts.
    return {p: json_schema._same(json_schema._resolve(row["answer"], p), ref) for p, ref in row["fields"]}


class UnjudgedCeilingError(RuntimeError):
    """More examples than evaluate.extraction.judge.max_unjudged_fraction ended without a verdict."""


def judged_result(
    extraction_result: dict[str, Any],
    rows: list[dict[str, Any]],
    skipped: list[str],
    outcomes: dict[str, Any],
    info: dict[str, Any],
    settings: dict[str, Any],
    prompt: JudgePrompt,
    bootstrap: dict[str, Any],
    seed: int,
    source: dict[str, Any],
) -> dict[str, Any]:
    """The judged result record (``eval/<arm>/<stage>/extraction_judged.json``).

    outcomes: row id -> ``trellis.labels.openai_common.Outcome`` (label: the parsed answer)."""
    by_example = {r["example_id"]: r for r in rows}
    examples, unjudged = [], []
    agree = exact_fields = 0
    for ex in extraction_result["examples"]:
        record: dict[str, Any] = {"id": ex["id"], "exact_field_accuracy": float(ex["field_accuracy"])}
        if "category" in ex:
            record["category"] = ex["category"]
        row = by_example.get(ex["id"])
        if row is None:  # no JSON in the output: nothing to judge, as exact scoring gives it
            record["scores"] = {"judged_field_accuracy": 0.0, "judged_record_accuracy": 0.0}
            record["judge"] = {"skipped": "no JSON in the output"}
            examples.append(record)
            continue
        outcome = outcomes.get(row["id"])
        fields, why = (None, "no outcome")
        if outcome is not None and outcome.valid:
            fields, why = verdicts(row, outcome.label)
        elif outcome is not None:
            why = f"{outcome.reason}: {outcome.detail}" if outcome.detail else str(outcome.reason)
        if fields is None:
            unjudged.append((ex["id"], why))
            exact = float(ex["field_accuracy"])
            record["scores"] = {"judged_field_accuracy": exact, "judged_record_accuracy": float(exact == 1.0)}
            record["judge"] = {"unjudged": why, "attempts": getattr(outcome, "attempts", 0)}
            examples.append(record)
            continue
        answer = outcome.label
        correct = [v == "correct" for v in fields.values()]
        record["scores"] = {
            "judged_field_accuracy": sum(correct) / len(correct),
            "judged_record_accuracy": float(answer["verdict"] == "correct" and all(correct)),
        }
        record["judge"] = {
            "fields": fields,
            "verdict": answer["verdict"],
            "analysis": answer["analysis"],
            "attempts": outcome.attempts,
        }
        for pointer, same in _exact_field_matches(row).items():
            if same:
                exact_fields += 1
                agree += fields[pointer] == "correct"
        examples.append(record)

    ceiling = float(settings["max_unjudged_fraction"])
    if rows and len(unjudged) / len(rows) > ceiling:
        listed = "; ".join(f"{i}: {w}" for i, w in unjudged[:5])
        raise UnjudgedCeilingError(
            f"{source.get('judged', 'extraction result')}: {len(unjudged)} of {len(rows)} judged examples "
            f"have no valid verdict ({len(unjudged) / len(rows):.1%} > "
            f"evaluate.extraction.judge.max_unjudged_fraction = {ceiling}); first: {listed}"
        )
    resamples, confidence = int(bootstrap["resamples"]), float(bootstrap["confidence"])
    return {
        "format": RESULT_FORMAT,
        "arm": extraction_result["arm"],
        "stage": extraction_result["stage"],
        "benchmark": BENCHMARK,
        "model": extraction_result["model"],
        "data": source,
        "n": len(examples),
        "metrics": metric_intervals(examples, METRICS, resamples, confidence, seed),
        "bootstrap": {"resamples": resamples, "confidence": confidence, "seed": seed},
        "judge": {
            "backend": settings["backend"],
            "model": settings["model"],
            "prompt_version": prompt.prompt_version,
            "prompt_hash": prompt.prompt_hash,
            "requests": len(rows),
            "skipped_no_json": len(skipped),
            "unjudged": len(unjudged),
            "unjudged_examples": [{"id": i, "why": w} for i, w in unjudged],
            # How often the judge accepts a field exact match accepts: a judge that rejects exact
            # matches is not measuring equivalence (it should be ~1).
            "agreement_on_exact_matches": agree / exact_fields if exact_fields else None,
            "backend_info": info,
        },
        "examples": examples,
    }


def judge_extraction(
    extraction_path: str,
    settings: dict[str, Any],
    work_dir: str,
    bootstrap: dict[str, Any],
    seed: int,
) -> dict[str, Any]:
    """Judge one arm/stage's extraction result; return the judged result record."""
    t_start = time.monotonic()
    path = Path(extraction_path)
    raw = path.read_bytes()
    try:
        extraction_result = json.loads(raw)
    except ValueError as e:
        raise ValueError(f"{path}: not valid JSON: {e}") from None
    rows, skipped = judge_rows(extraction_result, str(path))
    judge = make_judge(settings)
    task = task_for(extraction_result["arm"], extraction_result["stage"])
    log.info(
        "judging %s: %d example(s) to ask %s about, %d with no JSON (not sent)",
        path,
        len(rows),
        judge.model,
        len(skipped),
    )
    if rows:
        outcomes, info = judge.run(task, rows, work_dir)
    else:
        outcomes, info = {}, {"requests_submitted": 0}
    source = {
        "judged": str(path),
        "judged_sha256": hashlib.sha256(raw).hexdigest(),
        "extraction_data": extraction_result.get("data"),
    }
    result = judged_result(
        extraction_result, rows, skipped, outcomes, info, settings, judge.prompt, bootstrap, seed, source
    )
    result["timing"] = {"total_s": round(time.monotonic() - t_start, 3)}
    return result


# ---- cost, for the plan --------------------------------------------------------------------

# A realistic judgement (strict JSON, a one-sentence reason) for the plan's output-token count.
EXAMPLE_ANALYSIS = "All fields match the reference; the length is given as a string but equals 149.94."


def example_answer(n_fields: int) -> str:
    return _compact(
        {
            "analysis": EXAMPLE_ANALYSIS,
            "fields": {field_key(i, n_fields): "correct" for i in range(n_fields)},
            "verdict": "correct",
        }
    )


def judge_cost(config: dict[str, Any], encoding=None) -> dict[str, Any] | None:
    """The judge's requests, tokens and price for the whole run; None when the judge is off.

    Requests: every example of every arm at every stage (an upper bound: an output with no JSON is
    not sent). Tokens: the judge's real requests built on the run's own extraction examples with
    the reference record as the model's answer (an answer about as long as a right one), counted
    like the labeling requests (``trellis.labels.prompt_tokens``: o200k_base with chat framing and
    the response schema; chars/4 where no o200k_base file is installed, said so in ``tokenizer``);
    each answer a realistic judgement of the example's fields.
    """
    from trellis.evaluate import extraction
    from trellis.labels.openai_common import CHARS_PER_TOKEN, TOKENS_PER_MESSAGE
    from trellis.labels.prompt_tokens import ENCODING, o200k_encoding, request_tokens

    ext = config["evaluate"]["extraction"]
    judge_cfg = ext.get("judge")
    if not judge_cfg:
        return None
    n_jobs = len(config["arms"]) * len(config["evaluate"]["stages"])
    settings = judge_settings(judge_cfg, config["labels"], n_jobs)
    prompt = JudgePrompt(int(settings["request"]["max_text_chars"]))
    examples = extraction.build(int(ext["examples"]), int(config["seed"]))
    encoding = encoding if encoding is not None else o200k_encoding()
    if encoding is not None:
        tokenizer = f"{ENCODING} (tiktoken)" if type(encoding).__module__.startswith("tiktoken") else "given"

        def count(text: str) -> int:
            return len(getattr(encoding, "encode_ordinary", encoding.encode)(text))
    else:
        tokenizer = f"chars/{CHARS_PER_TOKEN:g} (no {ENCODING} file installed)"

        def count(text: str) -> int:
            return round(len(text) / CHARS_PER_TOKEN)

    prompt_tokens = answer_tokens = 0
    for ex in examples:
        row = {
            "content": ex["content"],
            "schema": ex["schema"],
            "fields": list(json_schema.leaf_fields(ex["instance"]).items()),
            "answer": ex["instance"],
        }
        body = {
            "messages": prompt.messages(row),
            "response_format": prompt.response_format(row, bool(settings["request"]["structured_outputs"])),
        }
        if encoding is not None:
            prompt_tokens += request_tokens(body, encoding)
        else:
            chars = sum(len(m["content"]) for m in body["messages"])
            prompt_tokens += round(chars / CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE * len(body["messages"])
        answer_tokens += count(example_answer(len(row["fields"])))
    per_job_requests = len(examples)
    requests = per_job_requests * n_jobs
    input_tokens = prompt_tokens * n_jobs
    output_tokens = answer_tokens * n_jobs
    prices = settings["prices"]
    usd = (input_tokens * prices["input_per_million"] + output_tokens * prices["output_per_million"]) / 1e6
    # The backend's check before a job's first round prices every answer at max_completion_tokens
    # (no answer seen yet): a per-job cap below this stops every judge job before it submits.
    first_round = (
        prompt_tokens * prices["input_per_million"]
        + per_job_requests * int(settings["request"]["max_completion_tokens"]) * prices["output_per_million"]
    ) / 1e6
    return {
        "model": settings["model"],
        "jobs": n_jobs,
        "requests": requests,
        "prompt_tokens_per_request": prompt_tokens / per_job_requests,
        "answer_tokens_per_request": answer_tokens / per_job_requests,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "usd": usd,
        "max_cost_usd": judge_cfg.get("max_cost_usd"),
        "max_cost_usd_per_job": settings["batch"]["max_estimated_cost_usd"],
        "first_round_estimate_usd_per_job": first_round,
        "prices": prices,
        "tokenizer": tokenizer,
    }
