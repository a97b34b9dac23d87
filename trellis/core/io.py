"""File I/O shared by every stage: atomic writes, streaming parquet, stable document ids.

Every output is written to a temporary name beside its final path and renamed into place only
when complete, so a killed job never leaves a file that looks finished (Snakemake would otherwise
trust its timestamp on a rerun).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

# Rows per parquet row group: small enough to stream a part in bounded memory, large enough that
# per-group overhead stays negligible.
ROW_GROUP_ROWS = 2048

# The columns every normalized document part has; sources add their own metadata columns.
DOCUMENT_COLUMNS = ("id", "text", "source")

log = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``path``; swap it in for ``path`` on success.

    For outputs that are directories (models, tokenizers): a killed job leaves only a hidden
    ``.name.tmp-PID`` folder behind, never a half-written directory under the final name.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


class ParquetWriter:
    """Write record batches or row dicts to one parquet file, atomically, in row groups.

    Buffers at most ``row_group_rows`` rows. Usage::

        with ParquetWriter(path, schema) as w:
            w.write_rows([{"id": ..., "text": ...}])
    """

    def __init__(self, path: str | os.PathLike, schema: pa.Schema, row_group_rows: int = ROW_GROUP_ROWS):
        self.path = Path(path)
        self.schema = schema
        self.row_group_rows = row_group_rows
        self.rows_written = 0
        self._buffer: list[dict[str, Any]] = []
        self._ctx = atomic_path(self.path)
        self._writer: pq.ParquetWriter | None = None

    def __enter__(self) -> ParquetWriter:
        tmp = self._ctx.__enter__()
        self._writer = pq.ParquetWriter(tmp, self.schema)
        return self

    def write_rows(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self._buffer.append(row)
            if len(self._buffer) >= self.row_group_rows:
                self._flush()

    def write_table(self, table: pa.Table) -> None:
        self._flush()
        table = table.select(self.schema.names).cast(self.schema)
        self._writer.write_table(table, row_group_size=self.row_group_rows)
        self.rows_written += table.num_rows

    def _flush(self) -> None:
        if not self._buffer:
            return
        table = pa.Table.from_pylist(self._buffer, schema=self.schema)
        self._writer.write_table(table, row_group_size=self.row_group_rows)
        self.rows_written += table.num_rows
        self._buffer.clear()

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._flush()
            self._writer.close()
        finally:
            # On an exception the context manager removes the temporary file.
            self._ctx.__exit__(exc_type, exc, tb)


def iter_batches(
    path: str | os.PathLike, columns: list[str] | None = None, batch_size: int = ROW_GROUP_ROWS
) -> Iterator[pa.RecordBatch]:
    """Stream a parquet file batch by batch (never the whole file in memory)."""
    with pq.ParquetFile(path) as f:
        missing = [c for c in columns or [] if c not in f.schema_arrow.names]
        if missing:
            raise KeyError(f"{path}: missing column(s) {missing}; has {f.schema_arrow.names}")
        yield from f.iter_batches(batch_size=batch_size, columns=columns)


def iter_rows(
    path: str | os.PathLike, columns: list[str] | None = None, batch_size: int = ROW_GROUP_ROWS
) -> Iterator[dict[str, Any]]:
    for batch in iter_batches(path, columns, batch_size):
        yield from batch.to_pylist()


def read_column(path: str | os.PathLike, column: str) -> list:
    """One column of a parquet file (for id lists and the like, not text)."""
    return pq.read_table(path, columns=[column]).column(column).to_pylist()


def count_rows(path: str | os.PathLike) -> int:
    return pq.ParquetFile(path).metadata.num_rows


def repair_jsonl_tail(path: str | os.PathLike) -> int:
    """Make an append-only JSON Lines file end on a complete line; return the bytes dropped.

    A writer killed mid-line leaves a torn last line (no trailing newline). Unless repaired, the
    next append is glued onto it and that entry is lost too. The torn tail is truncated away
    (with a warning naming the file and the byte offset it started at), so the next append starts
    a line of its own. A last line that lacks only its newline but parses as a complete JSON
    object (the writer was killed between the two) is kept and gets its newline: it is whole.
    A missing file, an empty one or one that ends in a newline is left as it is (returns 0).
    Damage before the last line is not a torn write and is left for the reader to report.
    """
    path = Path(path)
    if str(path).endswith(".gz"):
        raise ValueError(f"{path}: a gzip file is not an append-only log; cannot repair its tail")
    if not path.exists():
        return 0
    with open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        start, pos = 0, size  # start: where the last line begins (just after the last newline)
        while pos > 0:
            step = min(1 << 16, pos)
            pos -= step
            f.seek(pos)
            cut = f.read(step).rfind(b"\n")
            if cut >= 0:
                start = pos + cut + 1
                break
        f.seek(start)
        tail = f.read()
        if _is_json_object(tail):
            f.write(b"\n")
            f.flush()
            os.fsync(f.fileno())
            log.warning("%s: the last line (byte offset %d) lacked its newline; completed it", path, start)
            return 0
        f.truncate(start)
        f.flush()
        os.fsync(f.fileno())
    log.warning(
        "%s: dropped a torn last line at byte offset %d (%d bytes, left by a killed writer); "
        "truncated the file back to its last complete line",
        path,
        start,
        size - start,
    )
    return size - start


def _is_json_object(raw: bytes) -> bool:
    try:
        return isinstance(json.loads(raw.decode("utf-8")), dict)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False


def iter_jsonl(
    path: str | os.PathLike, required: Iterable[str] = (), *, repair_tail: bool = False
) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each line of a JSON Lines file (``.gz`` too), streaming.

    Blank lines are skipped; a line that is not a JSON object raises naming file and line, and so
    does a row lacking a ``required`` key (``KeyError``). ``repair_tail``: for an append-only log
    (a cache, a journal), first drop a torn last line left by a killed writer
    (``repair_jsonl_tail``); a bad line before the last one is still an error (corruption).
    """
    if repair_tail:
        repair_jsonl_tail(path)
    required = tuple(required)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}, line {lineno}: invalid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise ValueError(
                    f"{path}, line {lineno}: expected a JSON object, got {type(record).__name__}"
                )
            missing = [k for k in required if k not in record]
            if missing:
                raise KeyError(f"{path}, line {lineno}: missing key(s) {missing}")
            yield lineno, record


def read_jsonl(path: str | os.PathLike, required: Iterable[str] = ()) -> list[dict]:
    """All rows of a small JSON Lines file; a row lacking a required key raises naming the line."""
    rows = [row for _, row in iter_jsonl(path, required)]
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> str:
    """Write rows atomically as JSON Lines (sorted keys, UTF-8); returns the file's sha256."""
    h = hashlib.sha256()
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            line = json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n"
            f.write(line)
            h.update(line.encode("utf-8"))
    return h.hexdigest()


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def _json_default(value: Any) -> Any:
    # numpy scalars and paths show up in stats dicts; everything else is a bug worth a loud error.
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serializable: {type(value).__name__}")


def doc_id(source: str, native_key: str, text: str) -> str:
    """Stable content id: the same document from the same place always gets the same id.

    The native key (the dataset's own id, or file + row when it has none) is part of the hash so
    that two copies of one text stay two documents: exact duplicates are dedup's job to remove,
    not an id collision's.
    """
    h = hashlib.blake2b(digest_size=10)
    for piece in (source, native_key, text):
        h.update(piece.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return f"{source}-{h.hexdigest()}"


def part_index(path: str | os.PathLike) -> int:
    """``.../part-3.parquet`` -> 3."""
    stem = Path(path).name.split(".")[0]
    prefix, _, number = stem.rpartition("-")
    if prefix != "part" or not number.isdigit():
        raise ValueError(f"{path}: expected a name like part-<k>.parquet")
    return int(number)
