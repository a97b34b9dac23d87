"""Versioned prompt templates, response JSON schemas and answer parsing for the five tasks.

A template lives in ``templates/<task>.v<N>.txt``: a ``version:`` line, then a ``--- system`` and a
``--- user`` section with ``$name`` placeholders (``string.Template``: a document's own ``$`` or
braces are never interpreted, only the template's). Editing a template means adding ``v<N+1>``
and pointing ``TEMPLATE_VERSIONS`` at it, so the labels of an old run stay traceable to the exact
words that produced them. ``prompt_hash`` covers everything that shapes a request besides the
document (template text, rendered taxonomy, response schema, truncation), so a taxonomy edit
changes the hash even when the version string does not.
"""

from __future__ import annotations

import hashlib
import json
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from trellis.core.tasks import Task

PROMPT_DIR = Path(__file__).resolve().parent / "templates"

# The template version each task uses now (file templates/<task>.<version>.txt).
TEMPLATE_VERSIONS = {
    "topic": "v1",
    "complexity": "v1",
    "code_quality": "v1",
    "structured_relevance": "v1",
    "content_type": "v1",
}

# The JSON key each task's answer carries its label under.
ANSWER_KEY = {
    "topic": "topics",
    "complexity": "level",
    "code_quality": "score",
    "structured_relevance": "score",
    "content_type": "content_type",
}

TRUNCATION_MARK = "\n[... truncated ...]"


@dataclass(frozen=True)
class Template:
    task: str
    version: str  # e.g. "topic-v1", from the file's version: line
    system: str
    user: str
    source_text: str


def load_template(task: str, version: str | None = None) -> Template:
    version = version or TEMPLATE_VERSIONS.get(task)
    if version is None:
        raise ValueError(f"no prompt template for task {task!r}; known: {sorted(TEMPLATE_VERSIONS)}")
    path = PROMPT_DIR / f"{task}.{version}.txt"
    if not path.exists():
        raise FileNotFoundError(f"prompt template {path} does not exist")
    text = path.read_text(encoding="utf-8")
    first, _, rest = text.partition("\n")
    if not first.startswith("version:"):
        raise ValueError(f"{path}, line 1: expected 'version: <name>', got {first!r}")
    sections: dict[str, list[str]] = {}
    current = None
    for lineno, line in enumerate(rest.splitlines(), 2):
        if line.startswith("--- "):
            current = line[4:].strip()
            if current not in ("system", "user") or current in sections:
                raise ValueError(f"{path}, line {lineno}: unexpected section header {line!r}")
            sections[current] = []
        elif current is None:
            if line.strip():
                raise ValueError(f"{path}, line {lineno}: text before the first '--- system' header")
        else:
            sections[current].append(line)
    missing = {"system", "user"} - set(sections)
    if missing:
        raise ValueError(f"{path}: missing section(s) {sorted(missing)}")
    return Template(
        task=task,
        version=first.partition(":")[2].strip(),
        system="\n".join(sections["system"]).strip(),
        user="\n".join(sections["user"]).strip(),
        source_text=text,
    )


def response_schema(task: Task) -> dict[str, Any]:
    """The JSON schema of a valid answer, in the subset OpenAI's strict structured outputs accept.

    Scales are integer enums (not minimum/maximum) and every object closes with
    additionalProperties: false and all properties required, as strict mode demands.
    """
    key = ANSWER_KEY[task.name]
    if task.kind == "multilabel":
        prop = {"type": "array", "items": {"type": "string", "enum": list(task.labels)}}
    elif task.kind == "regression":
        prop = {"type": "integer", "enum": list(range(int(task.low), int(task.high) + 1))}
    elif task.kind == "single_label":
        prop = {"type": "string", "enum": list(task.labels)}
    else:
        raise ValueError(f"task {task.name}: unknown kind {task.kind!r}")
    return {
        "type": "object",
        "properties": {key: prop},
        "required": [key],
        "additionalProperties": False,
    }


def _class_lines(items: list[dict[str, Any]]) -> str:
    return "\n".join(f"- {c['name']}: {c.get('description', '').strip()}" for c in items)


class PromptBuilder:
    """Renders one task's chat messages for a document, and parses and validates answers."""

    def __init__(self, task: Task, labels_config: dict[str, Any], max_text_chars: int):
        if max_text_chars < 1:
            raise ValueError(f"labels.request.max_text_chars must be >= 1, got {max_text_chars}")
        self.task = task
        self.template = load_template(task.name)
        self.max_text_chars = max_text_chars
        taxonomy = {"topic": labels_config.get("topics"), "content_type": labels_config.get("content_types")}
        items = taxonomy.get(task.name) or []
        names = [c["name"] for c in items]
        if task.kind != "regression" and names != list(task.labels):
            raise ValueError(
                f"task {task.name}: taxonomy in labels config {names} != task classes {task.labels}"
            )
        self.classes = _class_lines(items)
        self.schema = response_schema(task)
        self._validator = jsonschema.Draft202012Validator(self.schema)
        fingerprint = {
            "template": self.template.source_text,
            "classes": self.classes,
            "schema": self.schema,
            "max_text_chars": max_text_chars,
        }
        self.prompt_hash = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]
        self.prompt_version = self.template.version

    def messages(self, row: dict[str, Any]) -> list[dict[str, str]]:
        text = row["text"]
        if len(text) > self.max_text_chars:
            # Long files are cut, not skipped: the head carries the most signal for every task,
            # and the mark tells the model it sees a prefix.
            text = text[: self.max_text_chars] + TRUNCATION_MARK
        values = {
            "document": text,
            "classes": self.classes,
            "path": row.get("path") or "(unknown)",
            "language": row.get("language") or "(unknown)",
        }
        return [
            {"role": "system", "content": string.Template(self.template.system).substitute(values)},
            {"role": "user", "content": string.Template(self.template.user).substitute(values)},
        ]

    def response_format(self, structured_outputs: bool) -> dict[str, Any]:
        if structured_outputs:
            return {
                "type": "json_schema",
                "json_schema": {"name": f"{self.task.name}_label", "strict": True, "schema": self.schema},
            }
        # Servers without structured outputs still get JSON mode; the schema is then only checked
        # after the fact (the prompt spells out the shape).
        return {"type": "json_object"}

    def parse(self, content: Any) -> tuple[Any, str | None, str | None]:
        """(label, None, None) for a valid answer, else (None, reason, detail).

        Reasons: empty_response, malformed_json, schema_invalid. The label is the task's value
        type: a taxonomy-ordered list of topics, a float level/score, or a class name.
        """
        answer, reason, detail = parse_json_answer(content, self._validator)
        if reason:
            return None, reason, detail
        value = answer[ANSWER_KEY[self.task.name]]
        if self.task.kind == "multilabel":
            chosen = set(value)
            return [name for name in self.task.labels if name in chosen], None, None
        if self.task.kind == "regression":
            return float(value), None, None
        return value, None, None


def parse_json_answer(content: Any, validator) -> tuple[Any, str | None, str | None]:
    """(answer, None, None) for a JSON answer that ``validator`` (a jsonschema validator) accepts,
    else (None, reason, detail): empty_response, malformed_json, or schema_invalid naming the first
    failing path. Shared by the labeling prompts and the LLM judge (trellis.evaluate.judge)."""
    if not isinstance(content, str) or not content.strip():
        return None, "empty_response", None
    try:
        answer = json.loads(content)
    except json.JSONDecodeError as exc:
        return None, "malformed_json", f"{exc.msg} at char {exc.pos}"
    errors = sorted(validator.iter_errors(answer), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.path) or "(root)"
        return None, "schema_invalid", f"{where}: {e.message}"[:300]
    return answer, None, None
