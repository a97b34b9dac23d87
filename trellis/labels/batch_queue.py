"""The organisation's Batch API queue, shared by the label jobs of every task through one file.

OpenAI fails a new batch at validation (``token_limit_exceeded``) when the prompt tokens of the
organisation's batches in flight for the model (validating, in progress, finalizing) plus its own
would pass the enqueued-token limit. Five label jobs that each submit everything at once fail
each other. So before a job creates a batch it reserves the batch's prompt tokens in this ledger,
and only when the model's reservations plus the batch stay within ``labels.batch.
enqueued_token_limit``; it releases them when the batch ends. The API's refusal stays the truth
(other users of the organisation, a count that differs from OpenAI's): the batch backend handles
``token_limit_exceeded`` whatever the ledger says.

The ledger is a JSON file in the directory that holds every task's work directory
(``results/<run>/labels/``), read and rewritten under an exclusive ``fcntl.lockf`` lock (POSIX
record locks, which NFS carries, so jobs on several hosts of a shared filesystem see each other)
plus a thread lock (POSIX locks do not exclude threads of one process). A job killed while its
batches were in flight leaves their reservations: its rerun adopts the batches and releases them
when they end; a reservation older than the completion window (plus an hour) cannot belong to a
batch still in flight and is dropped, so an abandoned run never blocks the queue for good.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger("trellis.labeling.queue")

LEDGER_NAME = "openai-batch-queue.json"
_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _thread_lock(path: Path) -> threading.Lock:
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault(str(path.resolve()), threading.Lock())


class QueueLedger:
    """Reservations of enqueued prompt tokens per model, in ``directory / LEDGER_NAME``."""

    def __init__(self, directory: str | os.PathLike, model: str, limit: int, max_age_seconds: float):
        self.path = Path(directory) / LEDGER_NAME
        self.model, self.limit, self.max_age = model, int(limit), float(max_age_seconds)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """The ledger's entries, locked for this process and thread; written back on exit."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        with _thread_lock(self.path), open(lock_path, "a+") as lock:
            fcntl.lockf(lock, fcntl.LOCK_EX)
            try:
                entries = json.loads(self.path.read_text())["entries"] if self.path.exists() else {}
                self._drop_stale(entries)
                yield entries
                tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}")
                tmp.write_text(json.dumps({"version": 1, "entries": entries}, indent=1, sort_keys=True))
                os.replace(tmp, self.path)
            finally:
                fcntl.lockf(lock, fcntl.LOCK_UN)

    def _drop_stale(self, entries: dict[str, Any]) -> None:
        now = time.time()
        for key in [k for k, e in entries.items() if now - e["since"] > self.max_age]:
            log.warning(
                "queue ledger %s: dropping the reservation of %s (%d tokens, %.1f h old): older "
                "than any batch can stay in flight",
                self.path,
                key,
                entries[key]["tokens"],
                (now - entries[key]["since"]) / 3600,
            )
            del entries[key]

    def _others(self, entries: dict[str, Any], key: str) -> int:
        return sum(e["tokens"] for k, e in entries.items() if e["model"] == self.model and k != key)

    def reserve(self, key: str, tokens: int, task: str, force: bool = False) -> tuple[bool, int]:
        """Reserve ``tokens`` for batch ``key`` if the model's queue has room, or regardless with
        ``force`` (a batch found already in flight). Idempotent: a key already reserved, e.g. by a
        run that was killed, keeps its reservation.
        Returns (reserved, tokens reserved by the other batches of the model)."""
        with self._locked() as entries:
            others = self._others(entries, key)
            if key in entries:
                return True, others
            if others + tokens > self.limit and not force:
                return False, others
            entries[key] = {"model": self.model, "tokens": int(tokens), "task": task, "since": time.time()}
            return True, others

    def release(self, key: str) -> None:
        with self._locked() as entries:
            entries.pop(key, None)

    def holders(self) -> dict[str, int]:
        """Tokens reserved for the model per task (for the log while a job waits for room)."""
        with self._locked() as entries:
            out: dict[str, int] = {}
            for e in entries.values():
                if e["model"] == self.model:
                    out[e["task"]] = out.get(e["task"], 0) + e["tokens"]
            return out
