"""``openai-chat``: synchronous chat completions against any OpenAI-compatible server.

For vLLM, a local server or the OpenAI API itself when the batch discount is not worth a day's
wait. Requests go out on a bounded thread pool; 429 and 5xx answers (and dropped connections) are
retried with exponential backoff; every answer is appended to a cache file on disk before it is
used, so a killed or rerun job asks again only for what it never got back.

Some answers stop the whole task at once instead of being retried per document: a 429 whose code
is ``insufficient_quota`` (no credit left: waiting does not help, and at study scale retrying every
document would take days) and an authentication or permission error (401, 403). So does the cost
cap, ``labels.chat.max_cost_usd``: every answer in the cache was billed, at ``labels.chat.prices``
(the chat endpoint's own prices, not the Batch API's); a run whose billed total plus the estimate
of what it still has to ask would pass the cap does not start, and a request that would take the
billed total past it is not sent.
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
from trellis.labels.openai_common import (
    LabelingStopped,
    LLMLabeler,
    Outcome,
    PromptCounter,
    Usage,
    make_client,
)

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
        prices = self.chat.get("prices") or {}
        if not all(k in prices for k in ("input_per_million", "output_per_million")):
            raise ValueError(
                "config key labels.chat.prices (input_per_million, output_per_million) is required "
                "for backend openai-chat: the chat endpoint's prices, not the Batch API's labels.prices"
            )
        self.prices = {k: float(prices[k]) for k in ("input_per_million", "output_per_million")}
        cap = self.chat.get("max_cost_usd")
        self.max_cost = float(cap) if cap is not None else None
        self._client = None
        self._counter: PromptCounter | None = None
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
            held = self._hold_budget(body)
            try:
                return self.client().chat.completions.create(**body).model_dump()
            except (openai.APIStatusError, openai.APIConnectionError) as exc:
                status = getattr(exc, "status_code", None) or type(exc).__name__
                with self._lock:
                    stats[f"http_{status}"] = stats.get(f"http_{status}", 0) + 1
                self._stop_if_fatal(exc)
                retryable = not isinstance(exc, openai.APIStatusError) or status == 429 or status >= 500
                if not retryable or k == retries:
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
            finally:
                with self._lock:
                    self._in_flight_usd -= held
        raise AssertionError("unreachable")

    def _stop(self, reason: str) -> None:
        """Stop the task: no worker sends another request once this is set."""
        with self._lock:
            if self._stopped is None:
                self._stopped = reason
                log.error("%s", reason)
        raise LabelingStopped(self._stopped)

    def _stop_if_fatal(self, exc: Exception) -> None:
        import openai

        code = getattr(exc, "code", None)
        if isinstance(exc, openai.RateLimitError) and code == "insufficient_quota":
            why = f"no credit left (HTTP 429 insufficient_quota): {exc.message}"
        elif isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
            # Not the API's message: for a wrong key it quotes the key's first and last characters.
            why = f"the API refused the key (HTTP {exc.status_code}{f' {code}' if code else ''})"
        else:
            return
        self._stop(
            f"task {self._task}: stopped at the first answer saying {why}; no further request is "
            f"sent (retrying cannot help). Fix the account or key and rerun: answers received so far "
            f"are cached"
        )

    def _hold_budget(self, body: dict[str, Any]) -> float:
        """The next request's estimated cost, held while it is in flight, so that concurrent
        workers together never send more than the cap allows; stops the task when it would not fit."""
        tokens = self._counter(body) if self.max_cost is not None else 0
        with self._lock:
            if self._stopped is not None:
                raise LabelingStopped(self._stopped)
            if self.max_cost is None:
                return 0.0
            one = self.estimate_cost(tokens, 1, self._billed)["usd"]
            billed = self._billed.cost(self.prices)
            if one == 0 or billed + self._in_flight_usd + one <= self.max_cost:
                self._in_flight_usd += one
                return one
        self._stop(
            f"task {self._task}: stopped at the cost cap: ${billed:.4f} billed ({self._billed.requests} "
            f"answers at labels.chat.prices) + ${one:.4f} for the next request would pass "
            f"labels.chat.max_cost_usd = ${self.max_cost:.4f}"
        )
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
                    self._billed.add(completion.get("usage"))
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
        self._task, self._stopped, self._in_flight_usd = task.name, None, 0.0
        self._counter = self._counter or PromptCounter()
        cache = RequestCache(work / "cache.jsonl")
        if cache.torn_bytes:
            log.info("the answer cut off by a killed run (torn cache line) is asked for again")
        # Every answer in the cache was billed, by this run or an earlier one.
        self._billed = Usage()
        for entry in cache.entries.values():
            self._billed.add(entry["completion"].get("usage"))
        usage, stats = Usage(), {}
        estimate = self._estimate(task, rows, cache)
        outcomes: dict[str, Outcome] = {}
        failures: list[tuple[str, str]] = []
        try:
            self._check_cap_before_run(estimate)
            with ThreadPoolExecutor(max_workers=int(self.chat["concurrency"])) as pool:
                futures = {pool.submit(self._label_one, task, r, cache, usage, stats): r["id"] for r in rows}
                for done, fut in enumerate(as_completed(futures), 1):
                    doc_id = futures[fut]
                    try:
                        outcomes[doc_id] = fut.result()
                    except LabelingStopped:
                        pool.shutdown(wait=True, cancel_futures=True)
                        raise LabelingStopped(f"{self._stopped} (cache: {cache.path})") from None
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
            "billed_usd": round(self._billed.cost(self.prices), 6),
            "estimate_before_run": estimate,
            "prompt_tokenizer": self._counter.name,
            "transport_errors": {k: v for k, v in sorted(stats.items()) if k.startswith("http_")},
            "cache_hits": stats.get("cache_hits", 0),
            "cache": str(cache.path),
        }
        return outcomes, info

    def _estimate(self, task: Task, rows: Sequence[dict[str, Any]], cache: RequestCache) -> dict[str, Any]:
        todo = [self.body(task, r) for r in rows]
        todo = [b for b in todo if self.request_key(b, 0) not in cache.entries]
        estimate = self.estimate_cost(sum(self._counter(b) for b in todo), len(todo), self._billed)
        log.info(
            "openai-chat %s: %d documents, %d not yet asked (cache %s); billed so far $%.4f; "
            "estimated cost of the new requests before retries: $%.4f (%d prompt tokens by %s, "
            "%d completion tokens (%s))",
            self.base_url,
            len(rows),
            len(todo),
            cache.path,
            self._billed.cost(self.prices),
            estimate["usd"],
            estimate["prompt_tokens"],
            self._counter.name,
            estimate["completion_tokens"],
            estimate["completion_basis"],
        )
        return estimate

    def _check_cap_before_run(self, estimate: dict[str, Any]) -> None:
        billed = self._billed.cost(self.prices)
        if self.max_cost is None or estimate["usd"] == 0 or billed + estimate["usd"] <= self.max_cost:
            return
        raise LabelingStopped(
            f"task {self._task}: ${billed:.4f} billed so far ({self._billed.requests} cached answers) "
            f"+ ${estimate['usd']:.4f} estimated for {estimate['requests']} new request(s) would pass "
            f"labels.chat.max_cost_usd = ${self.max_cost:.4f}; nothing was sent. Raise the cap to go on"
        )


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    try:
        value = float(response.headers.get("retry-after", ""))
    except (TypeError, ValueError):
        return None
    return min(value, 300.0)
