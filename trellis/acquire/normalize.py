"""Native dataset rows -> normalized documents (``id``, ``text``, ``source`` + metadata).

One part is written per call of :func:`normalize_part`; it streams its native files (parquet by
record batches, ``.jsonl`` / ``.json.gz`` line by line), so memory is bounded by one batch.

How each source becomes text, and the metadata columns it keeps (after id, text, source):

Each source's real layout on the hub is written once: its repo, revision and files in the config
(``sources.<name>.hf``), the columns it reads here (``SPECS``); README's Curation section tables
both with where each fact comes from, and the demo generator writes exactly that layout.

=====================  ==================================================  =========================
source                 text                                                metadata columns
=====================  ==================================================  =========================
fineweb_edu            ``text`` as is                                      url, dump, score, int_score
starcoderdata          ``content`` without its leading metadata line       language (the file's
                       (``<reponame>..<filename>..<gh_stars>..``, about    directory, as in the real
                       half the files; see strip_starcoder_metadata)       dataset), path, repo,
                                                                           stars, and the line's own
                                                                           tag_repo, tag_path,
                                                                           tag_stars (null if absent)
finemath               ``text`` as is                                      url, score, int_score
pes2o                  ``text`` as is; optionally only papers on the       paper_id, subset (``s2orc``
                       configured subjects (SubjectFilter: CS/math/ML)     or ``s2ag``)
structured_wikipedia   title; abstract; each infobox as compact JSON in   title, url, n_infoboxes
                       ``<infobox>...</infobox>``; then the sections with
                       ``##`` headings (see serialize_structured_wikipedia);
                       ``infoboxes``/``sections`` arrive as JSON strings in
                       the Parquet release and are decoded (nested lists
                       are taken as they are)
wikipedia              ``text`` as is                                      title, url
stackexchange          the question's title when the source has one (the   site, qid, n_answers
                       H4 set has none), its body, the accepted answer
                       and answers whose ``pm_score`` reaches
                       ``min_answer_score``, HTML reduced to text; only
                       the configured sites, never a meta site
                       (StackExchangeFilter)
ultrachat              ``User: ...`` / ``Assistant: ...`` transcript       prompt_id, n_turns
text_to_sql            ``Schema:`` DDL, ``Question:``, ``SQL:`` query      (none)
=====================  ==================================================  =========================

Ids are ``trellis.core.io.doc_id(source, native_key, text)``. The native key is the dataset's own id
where it has one (FineWeb-Edu ``id``, ``<language>/<id>`` for StarCoderData, peS2o ``id``,
Wikipedia ``id`` / structured ``identifier``, ``<site>/<qid>`` for StackExchange, UltraChat
``prompt_id``); FineMath and text-to-SQL have none, so theirs is ``<dir>/<file>:<row>``.

Rows whose text comes out empty are counted drops (``empty_text``); a StackExchange question on a
meta site is dropped as ``meta_site``, on a site not in ``sources.stackexchange.sites`` as
``not_listed_site`` (both counted from the file's row count without reading its rows), with no
answer at all as ``no_answer``, and with answers but none accepted or at ``min_answer_score`` as
``low_score``; StackExchange stats also count every one of these per site (``sites``). With a
``subject_filter`` (peS2o in both configs), a document off its subjects is an ``off_subject`` drop.
A file lacking a required column is an error naming the file and the column. A structured-Wikipedia
row whose ``infoboxes`` or ``sections`` string is not valid JSON is a counted drop (``malformed_json``,
logged with its file and row).

Rows a normalizer changes on the way are counted in the part's stats under ``changed`` (per kind:
``starcoder_metadata_stripped``, ``json_decoded``, ``pes2o_split_suffix``), so nothing is altered
silently.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from trellis.core.io import ParquetWriter, doc_id, iter_jsonl
from trellis.core.stats import StepStats

log = logging.getLogger(__name__)

# Structured-Wikipedia sections that carry only links or citations (no prose in this dataset).
SKIP_SECTIONS = frozenset(
    {"References", "External links", "See also", "Further reading", "Notes", "Bibliography", "Sources"}
)

# Rows per record batch when streaming parquet: StarCoderData files can hold megabyte-sized
# contents, so a batch is kept well below the default row group.
READ_BATCH_ROWS = 256

ROLE_NAMES = {"user": "User", "assistant": "Assistant", "system": "System"}


class Skip(Exception):
    """A row that is dropped with a counted reason (not an error in the input)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class RowContext:
    path: Path
    row: int  # 0-based row index within the file (line index for JSON lines)
    # What a converter changed in this row (e.g. "starcoder_metadata_stripped"); normalize_part
    # counts each kind in the part's stats, so no change goes unreported.
    changes: list[str] = field(default_factory=list, compare=False)

    @property
    def directory(self) -> str:
        # StarCoderData's language and StackExchange's site are the file's directory name.
        return self.path.parent.name

    @property
    def file_key(self) -> str:
        return f"{self.path.parent.name}/{self.path.name}:{self.row}"


# ---- serializers -----------------------------------------------------------------------------


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def infobox_to_dict(infobox: dict) -> dict[str, Any]:
    """An infobox as {field: value} with each named section nested as {section: {field: value}}.

    Fields of unnamed sections (an infobox's leading block usually has no heading) sit at the top
    level. Fields with neither ``value`` nor ``values`` (image-only fields) carry no text and are
    left out.
    """
    out: dict[str, Any] = {}

    def fields_of(parts: Sequence[dict] | None, into: dict[str, Any]) -> None:
        for part in parts or []:
            kind = part.get("type")
            if kind == "field":
                name = _str(part.get("name")).strip()
                value = part.get("value")
                if value is None and part.get("values"):
                    value = ", ".join(_str(v) for v in part["values"])
                if name and value is not None and _str(value).strip():
                    into[name] = _str(value).strip()
            elif kind == "section":
                name = _str(part.get("name")).strip()
                if name:
                    nested = into.setdefault(name, {})
                    if isinstance(nested, dict):
                        fields_of(part.get("has_parts"), nested)
                else:
                    fields_of(part.get("has_parts"), into)

    fields_of(infobox.get("has_parts"), out)
    return {k: v for k, v in out.items() if v != {}}


def decode_json_column(value: Any, column: str, ctx: RowContext | None = None) -> list:
    """A structured-Wikipedia ``infoboxes``/``sections`` value as a list of nodes.

    The Parquet release stores each as a JSON-encoded string (one string holding the list); some
    loaders also meet a list of JSON strings (one per node), and the older JSON-lines release nests
    the lists directly. All three are accepted; a string that is not valid JSON raises
    Skip(``malformed_json``), a value of any other type is an error naming the column.
    """
    if value is None:
        return []
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8")
    if isinstance(value, str):
        value = _loads(value, column, ctx)
        return value if isinstance(value, list) else [value]
    if isinstance(value, (list, tuple)):
        out: list = []
        for item in value:
            if isinstance(item, (str, bytes, bytearray)):
                decoded = _loads(item.decode("utf-8") if not isinstance(item, str) else item, column, ctx)
                out.extend(decoded if isinstance(decoded, list) else [decoded])
            elif item is not None:
                out.append(item)
        return out
    if isinstance(value, dict):
        return [value]
    where = f"{ctx.path}, row {ctx.row}: " if ctx else ""
    raise ValueError(
        f"{where}column {column!r} is a {type(value).__name__}, expected a JSON string or a list"
    )


def _loads(text: str, column: str, ctx: RowContext | None) -> Any:
    if ctx is not None and "json_decoded" not in ctx.changes:
        ctx.changes.append("json_decoded")
    if not text.strip():
        return []
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"{ctx.path}, row {ctx.row}" if ctx else "a row"
        log.warning("%s: column %r is not valid JSON (%s)", where, column, exc)
        raise Skip("malformed_json") from exc


def _render_parts(parts: Sequence[dict] | None, depth: int, out: list[str]) -> None:
    for part in parts or []:
        kind = part.get("type")
        if kind == "section":
            name = _str(part.get("name")).strip()
            if name in SKIP_SECTIONS:
                continue
            body: list[str] = []
            _render_parts(part.get("has_parts"), depth + 1, body)
            if body:
                out.append(f"{'#' * min(depth, 6)} {name}" if name else "")
                out.extend(body)
        elif kind == "list":
            items = [_str(p.get("value")).strip() for p in part.get("has_parts") or []]
            items = [f"- {i}" for i in items if i]
            if items:
                out.append("\n".join(items))
        else:
            value = _str(part.get("value")).strip()
            if value:
                out.append(value)
            elif part.get("has_parts"):
                _render_parts(part.get("has_parts"), depth, out)


def serialize_structured_wikipedia(row: dict) -> str:
    """Title, abstract, infoboxes as ``<infobox>{compact JSON}</infobox>``, then the sections.

    The infobox sits between the abstract and the body so the model reads the same facts in
    prose and as JSON within one document (the study's text-to-structure signal). The dataset's
    own "Abstract" section repeats the abstract field and is skipped when that field is present.
    """
    title = _str(row.get("name")).strip()
    abstract = _str(row.get("abstract")).strip()
    body: list[str] = []
    if abstract:
        body.append(abstract)
    for infobox in decode_json_column(row.get("infoboxes"), "infoboxes"):
        obj = infobox_to_dict(infobox)
        if obj:
            body.append(
                "<infobox>" + json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "</infobox>"
            )
    sections = [
        s
        for s in decode_json_column(row.get("sections"), "sections")
        if not (abstract and _str(s.get("name")).strip() == "Abstract")
    ]
    rendered: list[str] = []
    _render_parts(sections, 2, rendered)
    body += [r for r in rendered if r]
    if not body:
        return ""
    return "\n\n".join([title] + body) if title else "\n\n".join(body)


class _HTMLText(HTMLParser):
    """StackExchange HTML -> plain text: paragraphs become blank-line separated, ``<pre>`` code
    keeps its line breaks and indentation, list items get a dash."""

    BLOCKS = {"p", "div", "blockquote", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5", "h6", "hr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.pre = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag == "pre":
            self.pre += 1
            self.chunks.append("\n\n")
        elif tag in self.BLOCKS:
            self.chunks.append("\n\n")
        elif tag == "li":
            self.chunks.append("\n- ")
        elif tag == "br":
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre":
            self.pre = max(0, self.pre - 1)
            self.chunks.append("\n\n")
        elif tag in self.BLOCKS:
            self.chunks.append("\n\n")

    def handle_data(self, data: str) -> None:
        self.chunks.append(data if self.pre else re.sub(r"\s+", " ", data))

    def text(self) -> str:
        raw = "".join(self.chunks)
        lines = [line.rstrip() for line in raw.split("\n")]
        out: list[str] = []
        for line in lines:
            if line.strip() or (out and out[-1] != ""):
                out.append(line if line.strip() else "")
        return "\n".join(out).strip()


def html_to_text(html: str) -> str:
    parser = _HTMLText()
    parser.feed(html or "")
    parser.close()
    return parser.text()


def select_answers(answers: Sequence[dict] | None, min_score: int) -> list[dict]:
    """The accepted answer (whatever its score) first, then answers with ``pm_score >= min_score``,
    best first."""
    answers = [a for a in answers or [] if _str(a.get("text")).strip()]
    accepted = [a for a in answers if a.get("selected")]
    others = [a for a in answers if not a.get("selected") and (a.get("pm_score") or 0) >= min_score]
    others.sort(key=lambda a: -(a.get("pm_score") or 0))
    return accepted + others


def pm_score(upvotes: int, accepted: bool) -> int:
    """An answer's score as HuggingFaceH4/stack-exchange-preferences computes it (its dataset card,
    after Askell et al. 2021): round(log2(1 + upvotes)), plus 1 when accepted, and -1 for a
    negative vote count. ``min_answer_score`` is in this unit, not in votes."""
    if upvotes < 0:
        return -1
    return round(math.log2(1 + upvotes)) + (1 if accepted else 0)


def min_upvotes_for(score: int) -> int:
    """The fewest upvotes an answer that is not accepted needs to reach ``pm_score >= score``
    (what a ``min_answer_score`` means in votes; reported in the stats)."""
    if score <= 0:
        return 0
    upvotes = 0
    while pm_score(upvotes, False) < score:
        upvotes += 1
    return upvotes


def serialize_stackexchange(row: dict, min_score: int) -> tuple[str, int]:
    """``Question:`` (the title on its own line when the row has one; HuggingFaceH4's set has only
    the body) then each kept answer (``Accepted answer:`` / ``Answer:``); returns the text and the
    number of answers kept. Raises Skip(``no_answer``) for a question without an answer and
    Skip(``low_score``) when it has answers but none accepted or scoring ``min_score``."""
    question = html_to_text(_str(row.get("question")))
    title = _str(row.get("title")).strip()
    if title:
        question = f"{title}\n\n{question}" if question else title
    if not question:
        return "", 0
    if not any(_str(a.get("text")).strip() for a in row.get("answers") or []):
        raise Skip("no_answer")
    kept = select_answers(row.get("answers"), min_score)
    if not kept:
        raise Skip("low_score")
    blocks = [f"Question:\n{question}"]
    for answer in kept:
        label = "Accepted answer" if answer.get("selected") else "Answer"
        blocks.append(f"{label}:\n{html_to_text(_str(answer.get('text')))}")
    return "\n\n".join(blocks), len(kept)


def is_meta_site(site: str) -> bool:
    """A StackExchange meta site (``meta.stackexchange.com``, ``meta.stackoverflow.com``,
    ``math.meta.stackexchange.com``): discussion about the site, never taken."""
    return "meta" in site.lower().split(".")


class StackExchangeFilter:
    """Which StackExchange questions are taken: the study's "technical, high-score Q&A".

    A site is the name of its directory in the dataset (``data/<site>/``, e.g. ``stackoverflow.com``,
    ``math.stackexchange.com``). Meta sites are never taken (``meta_site``; listing one is an
    error); with ``sites`` given, any other site is a ``not_listed_site`` drop. Answers are kept
    when accepted or when their ``pm_score`` reaches ``min_answer_score``. ``pm_score`` is the
    dataset's score, not a vote count: round(log2(1 + upvotes)), plus 1 when accepted.
    """

    def __init__(self, sites: Sequence[str] | None, min_answer_score: int):
        if sites is not None:
            sites = [str(s) for s in sites]
            if not sites:
                raise ValueError("sources.stackexchange.sites: an empty list takes nothing; list sites")
            meta = [s for s in sites if is_meta_site(s)]
            if meta:
                raise ValueError(
                    f"sources.stackexchange.sites lists meta site(s) {meta}; meta sites are never taken"
                )
        self.sites = None if sites is None else frozenset(sites)
        self.min_answer_score = int(min_answer_score)

    @classmethod
    def from_config(cls, cfg: dict | None) -> StackExchangeFilter:
        if not cfg or "min_answer_score" not in cfg:
            raise ValueError(
                "stackexchange needs its filter config ({sites, min_answer_score}: sources.stackexchange)"
            )
        return cls(cfg.get("sites"), cfg["min_answer_score"])

    def site_drop(self, site: str) -> str | None:
        """The drop reason for every question of ``site``, or None when the site is taken."""
        if is_meta_site(site):
            return "meta_site"
        if self.sites is not None and site not in self.sites:
            return "not_listed_site"
        return None

    def stats(self) -> dict[str, Any]:
        return {
            "sites": None if self.sites is None else sorted(self.sites),
            "min_answer_score": self.min_answer_score,
            # The same floor in votes, for an answer that is not accepted (pm_score's definition).
            "min_answer_upvotes": min_upvotes_for(self.min_answer_score),
        }


def serialize_chat(messages: Sequence[dict] | None, where: str = "") -> tuple[str, int]:
    """``User: ...`` / ``Assistant: ...`` lines in message order; returns text and turn count.

    Empty messages are left out of the transcript (a blank turn teaches nothing); an unknown
    role is an error, since guessing a speaker would corrupt the transcript.
    """
    lines = []
    for k, message in enumerate(messages or []):
        role = _str(message.get("role")).strip().lower()
        if role not in ROLE_NAMES:
            raise ValueError(
                f"{where}: message {k} has unknown role {message.get('role')!r} (expected one of "
                f"{sorted(ROLE_NAMES)})"
            )
        content = _str(message.get("content")).strip()
        if content:
            lines.append(f"{ROLE_NAMES[role]}: {content}")
    return "\n".join(lines), len(lines)


def serialize_text_to_sql(schema: str, question: str, query: str) -> str:
    schema, question, query = _str(schema).strip(), _str(question).strip(), _str(query).strip()
    if not (schema and question and query):
        return ""
    return f"Schema:\n{schema}\n\nQuestion: {question}\n\nSQL:\n{query}"


# ---- per-source conversion -------------------------------------------------------------------

Converted = tuple[str | None, str, dict[str, Any]]  # native key, text, metadata


@dataclass(frozen=True)
class SourceSpec:
    required: tuple[str, ...]  # native columns that must exist in every file
    optional: tuple[str, ...]  # read when present
    metadata: tuple[tuple[str, pa.DataType], ...]
    convert: Callable[[dict, RowContext], Converted]


def _fineweb(row: dict, ctx: RowContext) -> Converted:
    return (
        row["id"],
        _str(row["text"]),
        {"url": row["url"], "dump": row["dump"], "score": row["score"], "int_score": row["int_score"]},
    )


# StarCoderData's training serialization: a first line of any of these tags, in this order, each
# followed by its value (``<reponame>owner/repo<filename>src/a.py<gh_stars>10-100``), then a newline
# and the file. The stars value is a bucket (0, 1-10, 10-100, 100-1000, 1000+), not a count.
STARCODER_TAGS = (("reponame", "tag_repo"), ("filename", "tag_path"), ("gh_stars", "tag_stars"))
_STARCODER_LINE = re.compile(
    r"\A(?:<reponame>(?P<reponame>[^<\n]*))?(?:<filename>(?P<filename>[^<\n]*))?"
    r"(?:<gh_stars>(?P<gh_stars>[^<\n]*))?(?:\n|\Z)"
)


def strip_starcoder_metadata(content: str) -> tuple[str, dict[str, str | None]]:
    """(the file without its leading metadata line, {tag_repo, tag_path, tag_stars}).

    Only a first line made of nothing but these tags is taken (anchored at the start, so a tag
    deeper in a real source file stays); a file without one comes back unchanged with all three
    values None. A file that is only the metadata line comes back empty (a counted empty_text drop).
    """
    tags: dict[str, str | None] = {column: None for _, column in STARCODER_TAGS}
    m = _STARCODER_LINE.match(content)
    if not m or not any(m.group(tag) is not None for tag, _ in STARCODER_TAGS):
        return content, tags
    for tag, column in STARCODER_TAGS:
        if m.group(tag) is not None:
            tags[column] = m.group(tag).strip()
    return content[m.end() :], tags


def _starcoder(row: dict, ctx: RowContext) -> Converted:
    key = None if row["id"] is None else f"{ctx.directory}/{row['id']}"
    content, tags = strip_starcoder_metadata(_str(row["content"]))
    if any(v is not None for v in tags.values()):
        ctx.changes.append("starcoder_metadata_stripped")
    meta = {
        "language": ctx.directory,
        "path": row["max_stars_repo_path"],
        "repo": row["max_stars_repo_name"],
        "stars": row["max_stars_count"],
        **tags,
    }
    return key, content, meta


def _finemath(row: dict, ctx: RowContext) -> Converted:
    return (
        ctx.file_key,
        _str(row["text"]),
        {"url": row["url"], "score": row["score"], "int_score": row["int_score"]},
    )


def _pes2o(row: dict, ctx: RowContext) -> Converted:
    key = None if row["id"] is None else str(row["id"])
    # peS2o's card names the collections ``s2orc`` (full text) and ``s2ag`` (title and abstract);
    # a ``<collection>/<split>`` form (as in its per-split file names) is reduced to the collection.
    subset = row["source"]
    if isinstance(subset, str) and "/" in subset:
        subset = subset.split("/", 1)[0]
        ctx.changes.append("pes2o_split_suffix")
    return key, _str(row["text"]), {"paper_id": key, "subset": subset}


def _structured_wiki(row: dict, ctx: RowContext) -> Converted:
    key = None if row["identifier"] is None else str(row["identifier"])
    # Decoded here (with the row's context) so the JSON strings are counted and a malformed one
    # is a counted drop naming its file and row.
    row = {
        **row,
        "infoboxes": decode_json_column(row.get("infoboxes"), "infoboxes", ctx),
        "sections": decode_json_column(row.get("sections"), "sections", ctx),
    }
    meta = {"title": row["name"], "url": row["url"], "n_infoboxes": len(row["infoboxes"])}
    return key, serialize_structured_wikipedia(row), meta


def _wikipedia(row: dict, ctx: RowContext) -> Converted:
    key = None if row["id"] is None else str(row["id"])
    return key, _str(row["text"]), {"title": row["title"], "url": row["url"]}


def _stackexchange(row: dict, ctx: RowContext, min_score: int) -> Converted:
    key = None if row["qid"] is None else f"{ctx.directory}/{row['qid']}"
    text, n = serialize_stackexchange(row, min_score)
    return key, text, {"site": ctx.directory, "qid": row["qid"], "n_answers": n}


def _ultrachat(row: dict, ctx: RowContext) -> Converted:
    text, turns = serialize_chat(row["messages"], where=f"{ctx.path}, row {ctx.row}")
    return row["prompt_id"], text, {"prompt_id": row["prompt_id"], "n_turns": turns}


def _text_to_sql(row: dict, ctx: RowContext) -> Converted:
    return ctx.file_key, serialize_text_to_sql(row["schema"], row["question"], row["query"]), {}


SPECS: dict[str, SourceSpec] = {
    "fineweb_edu": SourceSpec(
        ("text", "id", "url", "dump", "score", "int_score"),
        (),
        (("url", pa.string()), ("dump", pa.string()), ("score", pa.float64()), ("int_score", pa.int64())),
        _fineweb,
    ),
    "starcoderdata": SourceSpec(
        ("content", "id", "max_stars_repo_path", "max_stars_repo_name", "max_stars_count"),
        (),
        (
            ("language", pa.string()),
            ("path", pa.string()),
            ("repo", pa.string()),
            ("stars", pa.int64()),
            ("tag_repo", pa.string()),
            ("tag_path", pa.string()),
            ("tag_stars", pa.string()),
        ),
        _starcoder,
    ),
    "finemath": SourceSpec(
        ("text", "url", "score", "int_score"),
        (),
        (("url", pa.string()), ("score", pa.float64()), ("int_score", pa.int64())),
        _finemath,
    ),
    "pes2o": SourceSpec(
        ("id", "text", "source"), (), (("paper_id", pa.string()), ("subset", pa.string())), _pes2o
    ),
    "structured_wikipedia": SourceSpec(
        ("name", "identifier", "url"),
        ("abstract", "sections", "infoboxes"),
        (("title", pa.string()), ("url", pa.string()), ("n_infoboxes", pa.int64())),
        _structured_wiki,
    ),
    "wikipedia": SourceSpec(
        ("id", "url", "title", "text"), (), (("title", pa.string()), ("url", pa.string())), _wikipedia
    ),
    "stackexchange": SourceSpec(
        ("qid", "question", "answers"),
        ("title",),  # read where a StackExchange source has one (HuggingFaceH4's has not)
        (("site", pa.string()), ("qid", pa.int64()), ("n_answers", pa.int64())),
        _stackexchange,
    ),
    "ultrachat": SourceSpec(
        ("prompt_id", "messages"), (), (("prompt_id", pa.string()), ("n_turns", pa.int64())), _ultrachat
    ),
    "text_to_sql": SourceSpec(("schema", "question", "query"), (), (), _text_to_sql),
}


def output_schema(source: str) -> pa.Schema:
    spec = _spec(source)
    return pa.schema([("id", pa.string()), ("text", pa.string()), ("source", pa.string()), *spec.metadata])


def _spec(source: str) -> SourceSpec:
    if source not in SPECS:
        raise ValueError(f"no normalizer for source {source!r}; known: {sorted(SPECS)}")
    return SPECS[source]


# ---- reading native files --------------------------------------------------------------------


class MissingColumnError(KeyError):
    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def iter_native_rows(
    path: str | Path, required: Sequence[str], optional: Sequence[str] = ()
) -> Iterator[tuple[int, dict]]:
    """(row index, row) from a parquet, ``.jsonl`` or ``.json.gz`` file, streaming.

    Only the required and optional columns are read from parquet; a required column missing from
    the file (or from a JSON line) raises MissingColumnError naming the file and the column.
    """
    path = Path(path)
    name = path.name
    if name.endswith(".parquet"):
        with pq.ParquetFile(path) as f:
            names = f.schema_arrow.names
            for column in required:
                if column not in names:
                    raise MissingColumnError(f"{path}: missing required column {column!r} (file has {names})")
            columns = list(required) + [c for c in optional if c in names]
            row = 0
            for batch in f.iter_batches(batch_size=READ_BATCH_ROWS, columns=columns):
                for record in batch.to_pylist():
                    yield row, record
                    row += 1
    elif name.endswith((".jsonl", ".json.gz", ".jsonl.gz", ".json")):
        for lineno, record in iter_jsonl(path):
            for column in required:
                if column not in record:
                    raise MissingColumnError(f"{path}, line {lineno}: missing required column {column!r}")
            yield lineno - 1, record
    else:
        raise ValueError(f"{path}: unsupported file type (expected .parquet, .jsonl or .json.gz)")


# ---- parts -----------------------------------------------------------------------------------


def files_for_part(
    files: Sequence[str | Path], part: int, parts: int, source: str = "this source"
) -> list[Path]:
    """The native files normalized into part ``part`` of ``parts``: sorted(files)[part::parts]."""
    ordered = sorted(Path(f) for f in files)
    if parts < 1 or not 0 <= part < parts:
        raise ValueError(f"{source}: part {part} is out of range for {parts} parts")
    if len(ordered) < parts:
        raise ValueError(
            f"{source}: {len(ordered)} data file(s) cannot fill {parts} parts; lower `parts` for "
            f"{source} in the config to at most {len(ordered)}"
        )
    return ordered[part::parts]


class SubjectFilter:
    """Keep only documents about the configured subjects (peS2o: CS, math and ML papers).

    peS2o's rows carry no field of study, so the subject is read off the text: a document is kept
    when the head of its text (title and abstract; ``head_chars`` characters) holds at least
    ``min_terms`` distinct terms of the subjects' vocabularies, each matched as a whole word or
    phrase, case-insensitively. A keyword heuristic, deliberately simple and fully configurable
    (``sources.<name>.subject_filter``); the stats count what each subject matched and every drop.
    """

    def __init__(self, subjects: dict[str, Sequence[str]], min_terms: int, head_chars: int):
        if not subjects or any(not terms for terms in subjects.values()):
            raise ValueError(
                f"subject_filter.subjects needs at least one subject, each with terms (got {subjects!r})"
            )
        if int(min_terms) < 1 or int(head_chars) < 1:
            raise ValueError(
                f"subject_filter: min_terms ({min_terms}) and head_chars ({head_chars}) must be >= 1"
            )
        self.min_terms, self.head_chars = int(min_terms), int(head_chars)
        # One alternation per subject, longest terms first so a phrase wins over its first word.
        self._patterns = {
            name: re.compile(
                r"\b(?:"
                + "|".join(re.escape(t.lower()) for t in sorted(set(terms), key=len, reverse=True))
                + r")\b"
            )
            for name, terms in subjects.items()
        }
        self.matched: dict[str, int] = {name: 0 for name in subjects}

    @classmethod
    def from_config(cls, cfg: dict | None) -> SubjectFilter | None:
        if not cfg:
            return None
        return cls(cfg["subjects"], cfg["min_terms"], cfg["head_chars"])

    def subjects_of(self, text: str) -> dict[str, set[str]]:
        """Subject -> the distinct terms of its vocabulary found in the text's head."""
        head = text[: self.head_chars].lower()
        return {name: set(p.findall(head)) for name, p in self._patterns.items()}

    def keep(self, text: str) -> bool:
        found = self.subjects_of(text)
        keep = len(set().union(*found.values())) >= self.min_terms
        if keep:
            for name, terms in found.items():
                self.matched[name] += bool(terms)
        return keep

    def stats(self) -> dict[str, Any]:
        return {
            "min_terms": self.min_terms,
            "head_chars": self.head_chars,
            "kept_matching_subject": dict(self.matched),
        }


def normalize_part(
    source: str,
    files: Sequence[str | Path],
    out_path: str | Path,
    subject_filter: dict | None = None,
    stackexchange: dict | None = None,
) -> dict[str, Any]:
    """Normalize native files into one document part (written atomically); return the stats.

    ``subject_filter``: the source's ``subject_filter`` config ({subjects, min_terms, head_chars});
    documents off those subjects are counted drops (``off_subject``), see :class:`SubjectFilter`.
    ``stackexchange``: StackExchange's ``{sites, min_answer_score}`` (required for that source),
    see :class:`StackExchangeFilter`; its stats add ``sites``, each site's own counts.
    """
    spec = _spec(source)
    subjects = SubjectFilter.from_config(subject_filter)
    convert = spec.convert
    se = None
    if source == "stackexchange":
        se = StackExchangeFilter.from_config(stackexchange)
        convert = functools.partial(_stackexchange, min_score=se.min_answer_score)
    tally = StepStats(f"normalize/{source}", unit="chars", drop_sizes=False, timed=True)
    changed: Counter[str] = Counter()
    by_site: dict[str, StepStats] = {}
    warned: set[str] = set()

    def site_tally(path: Path) -> StepStats | None:
        if se is None:
            return None
        site = path.parent.name
        if site not in by_site:
            by_site[site] = StepStats(f"normalize/{source}/{site}", unit="chars", drop_sizes=False)
        return by_site[site]

    with ParquetWriter(out_path, output_schema(source)) as writer:
        for path in files:
            path = Path(path)
            site = site_tally(path)
            if se is not None and (reason := se.site_drop(path.parent.name)):
                # A site that is not taken is counted from the file's row count, never converted.
                n = _count_rows(path)
                for _ in range(n):
                    tally.seen()
                    site.seen()
                if n:
                    _drop(tally, warned, reason, RowContext(path, 0), docs=n)
                    site.drop(reason, docs=n)
                continue
            for row_index, row in iter_native_rows(path, spec.required, spec.optional):
                ctx = RowContext(path, row_index)
                try:
                    key, text, meta = convert(row, ctx)
                except Skip as skip:
                    reason, text = skip.reason, None
                else:
                    if not text.strip():
                        reason = "empty_text"
                    elif key is None:
                        reason = "missing_native_id"
                    elif subjects is not None and not subjects.keep(text):
                        reason = "off_subject"
                    else:
                        reason = None
                # Counted whether or not the row is kept: the stats say how many rows of the
                # input needed each change.
                changed.update(set(ctx.changes))
                tally.seen(text)
                if site is not None:
                    site.seen(text)
                if reason is not None:
                    _drop(tally, warned, reason, ctx)
                    if site is not None:
                        site.drop(reason)
                    continue
                tally.kept(text)
                if site is not None:
                    site.kept(text)
                writer.write_rows([{"id": doc_id(source, key, text), "text": text, "source": source, **meta}])
    tally.extra.update(
        {
            "source": source,
            "files": [str(f) for f in files],
            "rows_written": writer.rows_written,
            "changed": dict(sorted(changed.items())),
        }
    )
    if subjects is not None:
        tally.extra["subject_filter"] = subjects.stats()
    if se is not None:
        tally.extra["stackexchange"] = se.stats()
        tally.extra["sites"] = {name: by_site[name].to_dict() for name in sorted(by_site)}
    return tally.to_dict()


def _count_rows(path: Path) -> int:
    """Rows in a native file: parquet from its footer, JSON lines by counting lines."""
    if path.name.endswith(".parquet"):
        with pq.ParquetFile(path) as f:
            return f.metadata.num_rows
    return sum(1 for _ in iter_jsonl(path))


def _drop(tally: StepStats, warned: set[str], reason: str, ctx: RowContext, docs: int = 1) -> None:
    tally.drop(reason, docs=docs)
    # One log line per reason (with an example row) keeps logs readable on a billion-row source;
    # the counts are in the stats.
    if reason not in warned:
        warned.add(reason)
        log.warning("dropping rows as %s (first: %s, row %d); counted in stats", reason, ctx.path, ctx.row)
