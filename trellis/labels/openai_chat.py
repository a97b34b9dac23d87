"""``openai-chat``: synchronous chat completions against any OpenAI-compatible server.

For vLLM, a local server or the OpenAI API itself when the batch discount is not worth a day's
wait. Requests go out on a bounded thread pool; 429 and 5xx answers (and dropped connections) are
retried with exponential backoff; every answer is appended to a cache file on disk before it is
used, so a killed or rerun job asks again only for what it never got back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from trellis.core.io import iter_jsonl, repair_jsonl_tail
from trellis.core.tasks import Task
from trellis.labels.openai_common import LLMLabeler, Outcome, Usage, make_client, message_chars

log = logging.getLogger("trellis.labeling.chat")


class RequestCache:
    """Append-only JSON Lines of answers, keyed by a hash of the request (and attempt number).

    Each answer is one line, flushed and fsynced before it is used, so a killed run loses at most
    the request in flight. A torn last line (killed mid-write) is truncated away on open, with a
    warning naming the file and byte offset (``repair_jsonl_tail``), so that request is asked
    again once and the next answer starts a line of its own. A bad line before the last one is
    corruption, not a kill: opening the cache then fails, naming the file and line.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.entries: dict[str, dict[str, Any]] = {}
        self.torn_bytes = 0
        if self.path.exists():
            self.torn_bytes = repair_jsonl_tail(self.path)
            try:
                for _, entry in iter_jsonl(self.path, required=("key", "completion")):
                    self.entries[entry["key"]] = entry
            except (ValueError, KeyError) as exc:
                raise ValueError(
                    f"{exc.args[0]}: the request cache is damaged before its last line (not a "
                    f"torn write); delete that line to ask for its request again"
                ) from None
        self._fh = open(self.path, "a", encoding="utf-8")

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            return self.entries.get(key)

    def put(self, key: str, completion: dict[str, Any]) -> None:
        entry = {"key": key, "completion": completion}
        line = json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n"
        with self._lock:
            self._fh.write(line)
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self.entries[key] = entry

    def close(self) -> None:
        self._fh.close()


def _slim(completion: dict[str, Any]) -> dict[str, Any]:
    """What parsing and accounting need from a completion (the cache stays small)."""
    choices = []
    for c in completion.get("choices") or []:
        msg = c.get("message") or {}
        choices.append(
            {
                "finish_reason": c.get("finish_reason"),
                "message": {"content": msg.get("content"), "refusal": msg.get("refusal")},
            }
        )
    return {
        "id": completion.get("id"),
        "model": completion.get("model"),
        "choices": choices,
        "usage": completion.get("usage"),
    }


class ChatLabeler(LLMLabeler):
    backend = "openai-chat"

    def __init__(self, labels_config: dict[str, Any]):
        super().__init__(labels_config)
        self.chat = self.config_section(
            "chat",
            ("concurrency", "max_retries", "backoff_seconds", "max_backoff_seconds", "timeout_seconds"),
        )
        self._client = None
        self.base_url = self.request_cfg.get("base_url") or "https://api.openai.com/v1"

    def client(self):
        if self._client is None:
            # The SDK's own retries are off: this module retries, so it can count and log them.
            self._client = make_client(
                self.request_cfg, max_retries=0, timeout=float(self.chat["timeout_seconds"])
            )
        return self._client

    def request_key(self, body: dict[str, Any], attempt: int) -> str:
        blob = json.dumps({"base_url": self.base_url, "body": body, "attempt": attempt}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _call(self, body: dict[str, Any], stats: dict[str, int]) -> dict[str, Any]:
        import openai

        retries = int(self.chat["max_retries"])
        for k in range(retries + 1):
            try:
                return self.client().chat.completions.create(**body).model_dump()
            except (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError) as exc:
                status = getattr(exc, "status_code", None) or type(exc).__name__
                with self._lock:
                    stats[f"http_{status}"] = stats.get(f"http_{status}", 0) + 1
                if k == retries:
                    raise
                delay = min(
                    float(self.chat["max_backoff_seconds"]), float(self.chat["backoff_seconds"]) * 2**k
                )
                retry_after = _retry_after(exc)
                # Jitter keeps a pool of workers that all hit a 429 from retrying in lockstep.
                delay = min(
                    float(self.chat["max_backoff_seconds"]),
                    max(retry_after or 0.0, delay * random.uniform(0.5, 1.0)),
                )
                log.info("request failed (%s); retry %d/%d in %.2fs", status, k + 1, retries, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _label_one(
        self, task: Task, row: dict[str, Any], cache: RequestCache, usage: Usage, stats: dict[str, int]
    ) -> Outcome:
        body = self.body(task, row)
        outcome = Outcome(id=row["id"])
        for attempt in range(self.max_attempts):
            key = self.request_key(body, attempt)
            entry = cache.get(key)
            if entry is not None:
                completion = entry["completion"]
                with self._lock:
                    stats["cache_hits"] = stats.get("cache_hits", 0) + 1
            else:
                completion = _slim(self._call(body, stats))
                cache.put(key, completion)
                with self._lock:
                    usage.add(completion.get("usage"))
            outcome.attempts = attempt + 1
            label, reason, detail = self.parse_completion(task, completion)
            if reason is None:
                outcome.label, outcome.reason, outcome.detail = label, None, None
                return outcome
            outcome.reason, outcome.detail = reason, detail
            log.info(
                "%s: invalid answer (%s: %s), attempt %d/%d",
                row["id"],
                reason,
                detail,
                attempt + 1,
                self.max_attempts,
            )
        return outcome

    def run(
        self, task: Task, rows: Sequence[dict[str, Any]], work_dir: str | os.PathLike
    ) -> tuple[dict[str, Outcome], dict[str, Any]]:
        work = Path(work_dir) / "openai-chat"
        self._lock = threading.Lock()
        cache = RequestCache(work / "cache.jsonl")
        if cache.torn_bytes:
            log.info("the answer cut off by a killed run (torn cache line) is asked for again")
        usage, stats = Usage(), {}
        todo = [r for r in rows if self.request_key(self.body(task, r), 0) not in cache.entries]
        estimate = self.estimate_cost(sum(message_chars(self.body(task, r)) for r in todo), len(todo))
        log.info(
            "openai-chat %s: %d documents, %d not yet asked (cache %s); estimated cost of the new "
            "requests before retries: $%.4f (%d prompt tokens, <= %d completion tokens)",
            self.base_url,
            len(rows),
            len(todo),
            cache.path,
            estimate["usd"],
            estimate["prompt_tokens"],
            estimate["max_completion_tokens"],
        )
        outcomes: dict[str, Outcome] = {}
        failures: list[tuple[str, str]] = []
        try:
            with ThreadPoolExecutor(max_workers=int(self.chat["concurrency"])) as pool:
                futures = {pool.submit(self._label_one, task, r, cache, usage, stats): r["id"] for r in rows}
                for done, fut in enumerate(as_completed(futures), 1):
                    doc_id = futures[fut]
                    try:
                        outcomes[doc_id] = fut.result()
                    except Exception as exc:
                        failures.append((doc_id, f"{type(exc).__name__}: {exc}"[:300]))
                    if done % max(1, len(rows) // 10) == 0:
                        log.info("%d/%d documents done", done, len(rows))
        finally:
            cache.close()
        if failures:
            # No half-labeled dataset: the job fails, and a rerun asks only for these (every
            # answer so far is in the cache).
            raise RuntimeError(
                f"openai-chat: {len(failures)} of {len(rows)} documents got no answer after "
                f"{self.chat['max_retries']} retries (first: {failures[0][0]}: {failures[0][1]}); "
                f"rerun to retry them, answers already received are cached in {cache.path}"
            )
        info = {
            "usage": usage.to_dict(self.prices),
            "estimate_before_run": estimate,
            "transport_errors": {k: v for k, v in sorted(stats.items()) if k.startswith("http_")},
            "cache_hits": stats.get("cache_hits", 0),
            "cache": str(cache.path),
        }
        return outcomes, info


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    try:
        value = float(response.headers.get("retry-after", ""))
    except (TypeError, ValueError):
        return None
    return min(value, 300.0)
