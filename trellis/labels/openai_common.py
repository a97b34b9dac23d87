"""What the OpenAI backends share: the API key, the client, request bodies, outcomes and cost.

The API key is read from the environment or a ``.env`` file and handed only to the SDK client; it
is never stored on an object that gets logged, written to a manifest, a cache or a report.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trellis.core.tasks import Task
from trellis.labels.prompts import PromptBuilder
from trellis.labels.settings import max_invalid_fraction

log = logging.getLogger("trellis.labeling")

# Rough characters per token for English prose and code (OpenAI's rule of thumb): the fallback
# count of prompt tokens where no tokenizer for the model's encoding is installed, labelled so in
# every estimate it makes. Never used for anything that changes results.
CHARS_PER_TOKEN = 4.0
# Tokens the chat format adds per message (role markers), for the same fallback.
TOKENS_PER_MESSAGE = 4


def resolve_api_key(env_name: str, dotenv_path: str | os.PathLike = ".env") -> str:
    """The key from the environment, else from ``dotenv_path``; a clear error when neither has it."""
    value = os.environ.get(env_name)
    if value:
        return value
    path = Path(dotenv_path)
    if path.is_file():
        from dotenv import dotenv_values

        value = dotenv_values(path).get(env_name)
        if value:
            return value
    raise RuntimeError(
        f"{env_name} is not set: export it or put '{env_name}=...' in {path.resolve()} "
        f"(config key labels.request.api_key_env names the variable)"
    )


def make_client(request_cfg: dict[str, Any], max_retries: int, timeout: float):
    import openai

    key = resolve_api_key(
        request_cfg.get("api_key_env") or "OPENAI_API_KEY", request_cfg.get("dotenv_path") or ".env"
    )
    kwargs: dict[str, Any] = {"api_key": key, "max_retries": max_retries, "timeout": timeout}
    if request_cfg.get("base_url"):
        kwargs["base_url"] = request_cfg["base_url"]
    return openai.OpenAI(**kwargs)


@dataclass
class Outcome:
    """What became of one document: a label, or the reason it has none after all attempts."""

    id: str
    label: Any = None
    reason: str | None = None
    detail: str | None = None
    attempts: int = 0  # answers received (each one billed)

    @property
    def valid(self) -> bool:
        return self.reason is None


@dataclass
class Usage:
    requests: int = 0  # answered (billed) requests
    prompt_tokens: int = 0
    completion_tokens: int = 0
    max_completion: int = 0  # the longest answer seen: the next round's output estimate per request
    extra: dict[str, int] = field(default_factory=dict)

    def add(self, usage: dict[str, Any] | None) -> None:
        self.requests += 1
        if usage:
            completion = int(usage.get("completion_tokens") or 0)
            self.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.completion_tokens += completion
            self.max_completion = max(self.max_completion, completion)

    def cost(self, prices: dict[str, float]) -> float:
        return (
            self.prompt_tokens * prices["input_per_million"]
            + self.completion_tokens * prices["output_per_million"]
        ) / 1e6

    def to_dict(self, prices: dict[str, float]) -> dict[str, Any]:
        return {
            "answered_requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": round(self.cost(prices), 6),
            **self.extra,
        }


class LLMLabeler:
    """Base of the OpenAI backends: request bodies, parsing, cost estimate, provenance."""

    backend = "llm"

    def __init__(self, labels_config: dict[str, Any]):
        self.config = labels_config
        self.model = str(labels_config["model"])
        self.max_invalid_fraction = max_invalid_fraction(labels_config)
        self.request_cfg = self.config_section(
            "request",
            (
                "max_text_chars",
                "max_completion_tokens",
                "temperature",
                "structured_outputs",
                "invalid_retries",
            ),
        )
        prices = self.config_section("prices", ("input_per_million", "output_per_million"))
        self.prices = {k: float(prices[k]) for k in ("input_per_million", "output_per_million")}
        # Every answer after the first for the same document is a retry of an invalid answer.
        self.max_attempts = int(self.request_cfg["invalid_retries"]) + 1
        self.builders: dict[str, PromptBuilder] = {}

    def config_section(self, name: str, required: tuple[str, ...]) -> dict[str, Any]:
        """``labels.<name>`` as a dict; a missing required key stops with its full config path."""
        section = dict(self.config.get(name) or {})
        for key in required:
            if key not in section:
                raise ValueError(f"config key labels.{name}.{key} is required for backend {self.backend}")
        return section

    def builder(self, task: Task) -> PromptBuilder:
        if task.name not in self.builders:
            self.builders[task.name] = PromptBuilder(
                task, self.config, int(self.request_cfg["max_text_chars"])
            )
        return self.builders[task.name]

    def provenance(self, task: Task) -> tuple[str, str]:
        b = self.builder(task)
        return b.prompt_version, b.prompt_hash

    def body(self, task: Task, row: dict[str, Any]) -> dict[str, Any]:
        b = self.builder(task)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": b.messages(row),
            "temperature": float(self.request_cfg["temperature"]),
            "max_completion_tokens": int(self.request_cfg["max_completion_tokens"]),
            "response_format": b.response_format(bool(self.request_cfg["structured_outputs"])),
        }
        if self.request_cfg.get("seed") is not None:
            body["seed"] = int(self.request_cfg["seed"])
        return body

    def fingerprint(self, task: Task) -> str:
        """Identifies everything but the document that shapes a request (model, prompt, settings)."""
        b = self.builder(task)
        settings = {
            k: self.request_cfg.get(k)
            for k in ("temperature", "max_completion_tokens", "structured_outputs", "seed")
        }
        blob = json.dumps(
            {"model": self.model, "prompt": b.prompt_hash, "settings": settings}, sort_keys=True
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def parse_completion(self, task: Task, completion: dict[str, Any]) -> tuple[Any, str | None, str | None]:
        """Label or (reason, detail) from a chat-completion body (a dict, as the API returns it)."""
        choices = completion.get("choices") or []
        if not choices:
            return None, "empty_response", "no choices"
        choice = choices[0]
        message = choice.get("message") or {}
        if message.get("refusal"):
            return None, "refusal", str(message["refusal"])[:300]
        if choice.get("finish_reason") == "length":
            return None, "truncated", "the answer hit max_completion_tokens"
        return self.builder(task).parse(message.get("content"))

    def estimate_cost(
        self, prompt_tokens: int, n_requests: int, seen: Usage, prices: dict[str, float] | None = None
    ) -> dict[str, Any]:
        """What ``n_requests`` requests of ``prompt_tokens`` in all will cost: each answer priced at
        the longest answer seen so far (``seen``), or at max_completion_tokens before any answer."""
        prices = prices or self.prices
        cap = int(self.request_cfg["max_completion_tokens"])
        per_answer = min(seen.max_completion, cap) if seen.requests else cap
        completion_tokens = n_requests * per_answer
        usd = (
            prompt_tokens * prices["input_per_million"] + completion_tokens * prices["output_per_million"]
        ) / 1e6
        return {
            "requests": n_requests,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "completion_tokens_per_answer": per_answer,
            "completion_basis": "longest answer so far" if seen.requests else "max_completion_tokens",
            "usd": round(usd, 6),
        }


class PromptCounter:
    """Prompt tokens of a request: tiktoken's o200k_base (gpt-4o's encoding) where it is installed,
    else characters / CHARS_PER_TOKEN, and ``name`` says which, for every log and report."""

    def __init__(self):
        from trellis.labels.prompt_tokens import ENCODING, o200k_encoding

        self.encoding = o200k_encoding()
        if self.encoding is not None:
            self.name = ENCODING
        else:
            self.name = f"chars/{CHARS_PER_TOKEN:g} fallback (no {ENCODING} tokenizer installed)"
            log.warning("prompt tokens are estimated as %s", self.name)

    def __call__(self, body: dict[str, Any]) -> int:
        if self.encoding is not None:
            from trellis.labels.prompt_tokens import request_tokens

            return request_tokens(body, self.encoding)
        chars = sum(len(m["content"]) for m in body["messages"])
        return round(chars / CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE * len(body["messages"])


class LabelingStopped(RuntimeError):
    """A labeling job stopped on purpose (cost cap, refused request, quota, hand cancel): the
    message says why and what to change; a rerun resumes from the manifest or cache."""
