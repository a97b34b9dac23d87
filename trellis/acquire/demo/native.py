"""Native file formats of the demo sources: arrow schemas and the writers.

``NATIVE_SCHEMAS`` gives each parquet source its hub dataset's column names and arrow types
(nested lists of structs for StackExchange answers and UltraChat messages, JSON strings for
structured Wikipedia's recursive trees), so ``trellis.acquire.normalize`` reads demo and real files
with the same code. The JSON-lines source (peS2o) needs no schema. Writing is byte-deterministic:
parquet from a fixed schema and row-group size, gzip with its header timestamp pinned to 0.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from trellis.core.io import atomic_path

_STR = pa.string()
NATIVE_SCHEMAS: dict[str, pa.Schema] = {
    "fineweb_edu": pa.schema(
        [
            ("text", _STR),
            ("id", _STR),
            ("dump", _STR),
            ("url", _STR),
            ("file_path", _STR),
            ("language", _STR),
            ("language_score", pa.float64()),
            ("token_count", pa.int64()),
            ("score", pa.float64()),
            ("int_score", pa.int64()),
        ]
    ),
    "starcoderdata": pa.schema(
        [
            ("max_stars_repo_path", _STR),
            ("max_stars_repo_name", _STR),
            ("max_stars_count", pa.int64()),
            ("id", _STR),
            ("content", _STR),
        ]
    ),
    "finemath": pa.schema(
        [
            ("url", _STR),
            ("fetch_time", pa.int64()),
            ("content_mime_type", _STR),
            ("warc_filename", _STR),
            ("warc_record_offset", pa.int32()),
            ("warc_record_length", pa.int32()),
            ("text", _STR),
            ("token_count", pa.int64()),
            ("char_count", pa.int64()),
            ("metadata", _STR),
            ("score", pa.float64()),
            ("int_score", pa.int64()),
            ("crawl", _STR),
            ("snapshot_type", _STR),
            ("language", _STR),
            ("language_score", pa.float64()),
        ]
    ),
    "wikipedia": pa.schema([("id", _STR), ("url", _STR), ("title", _STR), ("text", _STR)]),
    # The Parquet release of wikimedia/structured-wikipedia: nested records as structs, the
    # recursive ``sections``/``infoboxes`` trees as JSON-encoded strings.
    "structured_wikipedia": pa.schema(
        [
            ("name", _STR),
            ("identifier", pa.int64()),
            ("abstract", _STR),
            ("date_modified", _STR),
            ("version", pa.struct([("identifier", pa.int64())])),
            ("url", _STR),
            ("main_entity", pa.struct([("identifier", _STR), ("url", _STR)])),
            ("in_language", pa.struct([("identifier", _STR)])),
            ("description", _STR),
            ("sections", _STR),
            ("infoboxes", _STR),
        ]
    ),
    "stackexchange": pa.schema(
        [
            ("qid", pa.int64()),
            ("question", _STR),
            (
                "answers",
                pa.list_(
                    pa.struct(
                        [
                            ("answer_id", pa.int64()),
                            ("author", _STR),
                            ("author_id", pa.int64()),
                            ("author_profile", _STR),
                            ("pm_score", pa.int64()),
                            ("selected", pa.bool_()),
                            ("text", _STR),
                        ]
                    )
                ),
            ),
            ("date", _STR),
            ("metadata", pa.list_(_STR)),
        ]
    ),
    "ultrachat": pa.schema(
        [
            ("prompt", _STR),
            ("prompt_id", _STR),
            ("messages", pa.list_(pa.struct([("content", _STR), ("role", _STR)]))),
        ]
    ),
    "text_to_sql": pa.schema([("schema", _STR), ("question", _STR), ("query", _STR)]),
}


def _write_native(source: str, path: Path, rows: list[dict]) -> None:
    with atomic_path(path) as tmp:
        if path.name.endswith(".parquet"):
            schema = NATIVE_SCHEMAS[source]
            pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp, row_group_size=512)
        elif path.name.endswith(".json.gz"):
            buf = io.BytesIO()
            # mtime=0 and no file name in the header: the same rows give the same bytes.
            with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
                for row in rows:
                    gz.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
            tmp.write_bytes(buf.getvalue())
        elif path.name.endswith(".jsonl"):
            with open(tmp, "w", encoding="utf-8") as fh:
                for row in rows:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            raise ValueError(f"{path}: no writer for this file type")
