"""Each normalizer fed a small file in its source's real hub layout and column types.

The files are written here from the documented schemas (README, Curation: the table of each
source's layout and where each fact comes from), not by the demo generator, so a generator and a
normalizer that agreed on an invented shape would still fail these.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trellis.acquire.normalize import (
    decode_json_column,
    min_upvotes_for,
    normalize_part,
    pm_score,
    strip_starcoder_metadata,
)


def _parquet(path: Path, table: pa.Table) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def _rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


# --- wikimedia/structured-wikipedia: enwiki/data/enwiki_namespace_0_{i}.parquet ----------------

INFOBOX = [
    {
        "type": "infobox",
        "name": "Infobox programming language",
        "has_parts": [
            {
                "type": "section",
                "has_parts": [
                    {"type": "field", "name": "Paradigm", "value": "Multi-paradigm"},
                    {"type": "field", "name": "Designed by", "value": "Guido van Rossum"},
                ],
            }
        ],
    }
]
SECTIONS = [
    {
        "type": "section",
        "name": "Abstract",
        "has_parts": [{"type": "paragraph", "value": "Python is a language."}],
    },
    {"type": "section", "name": "History", "has_parts": [{"type": "paragraph", "value": "Started in 1989."}]},
]


def _wiki_file(path: Path, rows: list[dict]) -> Path:
    # The Parquet release: identifier int64, nested records as structs, the recursive trees as
    # JSON-encoded strings.
    schema = pa.schema(
        [
            ("name", pa.string()),
            ("identifier", pa.int64()),
            ("abstract", pa.string()),
            ("url", pa.string()),
            ("main_entity", pa.struct([("identifier", pa.string()), ("url", pa.string())])),
            ("sections", pa.string()),
            ("infoboxes", pa.string()),
        ]
    )
    return _parquet(path, pa.Table.from_pylist(rows, schema=schema))


def test_structured_wikipedia_parquet_with_json_string_trees(tmp_path):
    base = {"url": "https://en.wikipedia.org/wiki/X", "main_entity": {"identifier": "Q28865", "url": "u"}}
    path = _wiki_file(
        tmp_path / "enwiki" / "data" / "enwiki_namespace_0_0.parquet",
        [
            dict(
                base,
                name="Python (programming language)",
                identifier=23862,
                abstract="Python is a language.",
                sections=json.dumps(SECTIONS),
                infoboxes=json.dumps(INFOBOX),
            ),
            # A torn JSON string: a counted drop, the rest of the file goes on.
            dict(
                base,
                name="Broken",
                identifier=2,
                abstract="Some text.",
                sections="[]",
                infoboxes='[{"type": ',
            ),
            # No infobox at all (null), prose only.
            dict(base, name="Plain", identifier=3, abstract="Only prose.", sections=None, infoboxes=None),
        ],
    )
    stats = normalize_part("structured_wikipedia", [path], tmp_path / "part-0.parquet")
    rows = _rows(tmp_path / "part-0.parquet")
    assert [r["title"] for r in rows] == ["Python (programming language)", "Plain"]
    first = rows[0]
    assert first["n_infoboxes"] == 1
    assert (
        '<infobox>{"Paradigm":"Multi-paradigm","Designed by":"Guido van Rossum"}</infobox>' in first["text"]
    )
    assert "## History\n\nStarted in 1989." in first["text"]
    assert first["text"].count("Python is a language.") == 1  # the Abstract section is not repeated
    assert rows[1]["text"] == "Plain\n\nOnly prose." and rows[1]["n_infoboxes"] == 0
    assert stats["dropped"] == {"malformed_json": 1} and stats["unaccounted"] == 0
    assert stats["changed"] == {"json_decoded": 2}  # the two rows with JSON strings


def test_json_columns_accept_strings_lists_of_strings_and_nested_lists():
    assert decode_json_column(json.dumps(INFOBOX), "infoboxes") == INFOBOX
    assert decode_json_column([json.dumps(INFOBOX[0])], "infoboxes") == INFOBOX
    assert decode_json_column(INFOBOX, "infoboxes") == INFOBOX  # the older JSON-lines release
    assert decode_json_column(None, "infoboxes") == [] and decode_json_column("", "sections") == []
    with pytest.raises(ValueError, match="column 'sections' is a int"):
        decode_json_column(7, "sections")


# --- bigcode/starcoderdata: <language>/train-XXXXX-of-YYYYY.parquet -------------------------------

STARCODER_SCHEMA = pa.schema(
    [
        ("max_stars_repo_path", pa.string()),
        ("max_stars_repo_name", pa.string()),
        ("max_stars_count", pa.int64()),
        ("id", pa.string()),
        ("content", pa.string()),
    ]
)


def test_starcoder_metadata_line_is_stripped_into_columns(tmp_path):
    code = "import os\n\nprint(os.getcwd())\n"
    rows = [
        # All three tags, as the model's training format writes them.
        ("<reponame>octo/tools<filename>src/cwd.py<gh_stars>10-100\n" + code, "0"),
        # Any subset of them, in order.
        ("<filename>src/cwd.py<gh_stars>1000+\n" + code, "1"),
        ("<reponame>octo/tools\n" + code, "2"),
        # No metadata line: unchanged, even with a tag deeper in the file.
        (code + "# <reponame>stays in the code\n", "3"),
        # Only the metadata line: nothing left, a counted empty_text drop.
        ("<reponame>octo/empty<gh_stars>0", "4"),
    ]
    table = pa.Table.from_pylist(
        [
            {
                "max_stars_repo_path": "src/cwd.py",
                "max_stars_repo_name": "octo/tools",
                "max_stars_count": 42,
                "id": key,
                "content": content,
            }
            for content, key in rows
        ],
        schema=STARCODER_SCHEMA,
    )
    path = _parquet(tmp_path / "python" / "train-00000-of-00001.parquet", table)
    stats = normalize_part("starcoderdata", [path], tmp_path / "part-0.parquet")
    out = {r["id"]: r for r in _rows(tmp_path / "part-0.parquet")}
    assert len(out) == 4
    texts = [r["text"] for r in out.values()]
    assert texts[:3] == [code, code, code]  # forks of one file are exact copies again
    assert texts[3] == code + "# <reponame>stays in the code\n"
    tags = [(r["tag_repo"], r["tag_path"], r["tag_stars"]) for r in out.values()]
    assert tags == [
        ("octo/tools", "src/cwd.py", "10-100"),
        (None, "src/cwd.py", "1000+"),
        ("octo/tools", None, None),
        (None, None, None),
    ]
    # The dataset's own columns are kept as they are, next to the tags.
    assert {(r["repo"], r["path"], r["stars"], r["language"]) for r in out.values()} == {
        ("octo/tools", "src/cwd.py", 42, "python")
    }
    assert stats["changed"] == {"starcoder_metadata_stripped": 4}
    assert stats["dropped"] == {"empty_text": 1} and stats["unaccounted"] == 0


def test_strip_starcoder_metadata_leaves_ordinary_first_lines_alone():
    none = {"tag_repo": None, "tag_path": None, "tag_stars": None}
    assert strip_starcoder_metadata("<html>\n<body/>\n") == ("<html>\n<body/>\n", none)
    assert strip_starcoder_metadata("") == ("", none)
    # A Windows line end after the tags goes with them.
    assert strip_starcoder_metadata("<gh_stars>1-10\r\nx = 1\n") == (
        "x = 1\n",
        {"tag_repo": None, "tag_path": None, "tag_stars": "1-10"},
    )


# --- HuggingFaceH4/stack-exchange-preferences: data/<site>/train-XXXXX-of-YYYYY.parquet ----------

ANSWER = pa.struct(
    [
        ("answer_id", pa.int64()),
        ("author", pa.string()),
        ("author_id", pa.int64()),
        ("author_profile", pa.string()),
        ("pm_score", pa.int64()),
        ("selected", pa.bool_()),
        ("text", pa.string()),
    ]
)


def _answer(k: int, upvotes: int, accepted: bool, text: str) -> dict:
    return {
        "answer_id": k,
        "author": "a",
        "author_id": k,
        "author_profile": "https://stackoverflow.com/users/1",
        "pm_score": pm_score(upvotes, accepted),
        "selected": accepted,
        "text": text,
    }


def test_pm_score_is_the_cards_formula_and_the_floor_reads_in_votes():
    # round(log2(1 + upvotes)), +1 when accepted, -1 for a negative count.
    assert [pm_score(u, False) for u in (0, 1, 2, 4, 5, 10, 11, 1000)] == [0, 1, 2, 2, 3, 3, 4, 10]
    assert pm_score(0, True) == 1 and pm_score(5, True) == 4 and pm_score(-3, True) == -1
    assert [min_upvotes_for(s) for s in (0, 1, 2, 3, 4)] == [0, 1, 2, 5, 11]


def test_stackexchange_question_body_without_title_and_scores_in_the_sources_unit(tmp_path):
    schema = pa.schema(
        [
            ("qid", pa.int64()),
            ("question", pa.string()),
            ("answers", pa.list_(ANSWER)),
            ("date", pa.string()),
            ("metadata", pa.list_(pa.string())),
        ]
    )
    row = {
        "qid": 9,
        "question": "<p>My loop never ends:</p><pre><code>while True:\n    pass\n</code></pre>",
        "answers": [
            _answer(1, 4, False, "<p>FOUR VOTES</p>"),  # pm_score 2
            _answer(2, 5, False, "<p>FIVE VOTES</p>"),  # pm_score 3
            _answer(3, 0, True, "<p>ACCEPTED</p>"),  # pm_score 1, kept as accepted
        ],
        "date": "2015/03/01",
        "metadata": ["https://stackoverflow.com/questions/9", "https://stackoverflow.com", "u"],
    }
    path = _parquet(
        tmp_path / "data" / "stackoverflow.com" / "train-00000-of-00001.parquet",
        pa.Table.from_pylist([row], schema=schema),
    )
    stats = normalize_part(
        "stackexchange",
        [path],
        tmp_path / "part-0.parquet",
        stackexchange={"sites": ["stackoverflow.com"], "min_answer_score": 3},
    )
    (out,) = _rows(tmp_path / "part-0.parquet")
    assert out["text"].startswith("Question:\nMy loop never ends:\n\nwhile True:\n    pass")
    assert "ACCEPTED" in out["text"] and "FIVE VOTES" in out["text"] and "FOUR VOTES" not in out["text"]
    assert out["n_answers"] == 2 and out["site"] == "stackoverflow.com"
    assert stats["stackexchange"]["min_answer_upvotes"] == 5

    # A source that has a title gets it on the question's first line.
    titled = pa.Table.from_pylist(
        [dict(row, title="Why does my loop never end?")], schema=schema.append(pa.field("title", pa.string()))
    )
    path = _parquet(tmp_path / "titled" / "stackoverflow.com" / "train-00000-of-00001.parquet", titled)
    normalize_part(
        "stackexchange",
        [path],
        tmp_path / "part-1.parquet",
        stackexchange={"sites": ["stackoverflow.com"], "min_answer_score": 3},
    )
    (out,) = _rows(tmp_path / "part-1.parquet")
    assert out["text"].startswith("Question:\nWhy does my loop never end?\n\nMy loop never ends:")


# --- allenai/peS2o: data/v2/train-XXXXX-of-YYYYY.json.gz ------------------------------------------


def test_pes2o_subset_is_the_collection_name(tmp_path):
    path = tmp_path / "data" / "v2" / "train-00000-of-00002.json.gz"
    path.parent.mkdir(parents=True)
    with gzip.open(path, "wt") as fh:
        for i, source in enumerate(("s2orc", "s2ag", "s2ag/train")):
            row = {
                "added": "a",
                "created": "c",
                "id": str(i),
                "source": source,
                "text": f"Paper {i}.",
                "version": "v2",
            }
            fh.write(json.dumps(row) + "\n")
    stats = normalize_part("pes2o", [path], tmp_path / "part-0.parquet")
    assert [r["subset"] for r in _rows(tmp_path / "part-0.parquet")] == ["s2orc", "s2ag", "s2ag"]
    assert stats["changed"] == {"pes2o_split_suffix": 1}
