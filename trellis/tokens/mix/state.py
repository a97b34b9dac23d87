"""Resumable work state: ``<out_dir>/.mix-work``, the fingerprint it is valid for, and the shard journal.

A killed mix job leaves its pass-1 runs, ``pass1.json`` and a journal line per finished shard
here (a line torn by the kill is dropped on open); a rerun whose fingerprint (every setting, and
each token part's size and mtime) matches reuses them, any other discards them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from trellis.core.io import iter_jsonl, repair_jsonl_tail, write_json
from trellis.tokens.mix.shuffle import run_path
from trellis.tokens.tkds import TOKEN_DTYPE, sha256_file

log = logging.getLogger(__name__)

WORK_DIR = ".mix-work"
# What each line of the shard journal (shards.jsonl) holds.
JOURNAL_KEYS = ("index", "file", "sequences", "sha256")


class WorkState:
    """``<out_dir>/.mix-work``: fingerprint, run files, pass-1 record and the shard journal."""

    def __init__(self, out_dir: Path, fingerprint: dict[str, Any]):
        self.dir = out_dir / WORK_DIR
        self.fingerprint = fingerprint
        state = self.dir / "state.json"
        if not (state.is_file() and _read_json_or_none(state) == fingerprint):
            if self.dir.exists():
                log.info("mix work state in %s is for other inputs; starting over", self.dir)
                shutil.rmtree(self.dir)
            self.dir.mkdir(parents=True)
            write_json(state, fingerprint)
        self.journal_path = self.dir / "shards.jsonl"
        self.done: dict[int, dict[str, Any]] = {}
        if self.journal_path.exists():
            # A line torn by a kill is truncated away (its shard is simply redone), so the next
            # entry starts a line of its own; damage before the last line is an error.
            repair_jsonl_tail(self.journal_path)
            try:
                for _, entry in iter_jsonl(self.journal_path, required=JOURNAL_KEYS):
                    self.done[int(entry["index"])] = entry
            except (ValueError, KeyError) as exc:
                raise ValueError(
                    f"{exc.args[0]}: the mix's shard journal is damaged before its last line (not "
                    f"a torn write); delete {self.dir} to start this mix over"
                ) from None

    def pass1(self) -> dict[str, Any] | None:
        record = _read_json_or_none(self.dir / "pass1.json")
        if record is None:
            return None
        row_bytes = self.fingerprint["context_length"] * TOKEN_DTYPE.itemsize
        for r, n in enumerate(record["run_counts"]):
            path = run_path(self.dir, r)
            if not path.is_file() or path.stat().st_size != n * row_bytes:
                return None
        return record

    def save_pass1(self, record: dict[str, Any]) -> None:
        write_json(self.dir / "pass1.json", record)

    def clear_runs(self) -> None:
        for path in self.dir.glob("run-*.bin"):
            path.unlink()
        (self.dir / "pass1.json").unlink(missing_ok=True)
        self.journal_path.unlink(missing_ok=True)
        self.done = {}

    def record_shard(self, index: int, entry: dict[str, Any]) -> None:
        with open(self.journal_path, "a") as f:
            f.write(json.dumps({"index": index, **entry}, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.done[index] = {"index": index, **entry}

    def reusable(self, out_dir: Path, index: int) -> dict[str, Any] | None:
        entry = self.done.get(index)
        if entry is None:
            return None
        path = out_dir / entry["file"]
        if path.is_file() and sha256_file(path) == entry["sha256"]:
            return {k: entry[k] for k in ("file", "sequences", "sha256")}
        return None

    def remove(self) -> None:
        shutil.rmtree(self.dir)


def _read_json_or_none(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def fingerprint(components: list[dict], algorithm: str, **settings: Any) -> dict[str, Any]:
    """Everything the shard bytes depend on, plus each token part's size and mtime.

    ``algorithm`` names the version of the code that turns these into bytes (``build.ALGORITHM``).
    """
    comps = []
    for c in components:
        files = []
        for p in c["token_paths"]:
            st = Path(p).stat()
            files.append([str(p), st.st_size, st.st_mtime_ns])
        comps.append(
            {
                "name": c["name"],
                "source": c["source"],
                "budget": int(c["budget"]),
                "upsample": bool(c.get("upsample", False)),
                "files": files,
            }
        )
    return {"algorithm": algorithm, "components": comps, **settings}
