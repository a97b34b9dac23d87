"""trellis.acquire.normalize: serializers on real-shaped rows, counted drops, clear errors, stable ids."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from trellis.acquire.download import read_manifest, write_demo_source
from trellis.acquire.normalize import (
    MissingColumnError,
    Skip,
    StackExchangeFilter,
    files_for_part,
    html_to_text,
    normalize_part,
    output_schema,
    serialize_chat,
    serialize_stackexchange,
    serialize_structured_wikipedia,
    serialize_text_to_sql,
)
from trellis.core.io import doc_id

MIN_ANSWER_SCORE = 2

CONFIG = yaml.safe_load((Path(__file__).resolve().parents[2] / "config" / "config.yaml").read_text())

# A row in the shape of wikimedia/structured-wikipedia (abridged from the dataset card).
WIKI_ROW = {
    "name": "Josephine Baker",
    "identifier": 16243,
    "abstract": "Freda Josephine Baker was an American-born French entertainer.",
    "url": "https://en.wikipedia.org/wiki/Josephine_Baker",
    "description": "American-born French entertainer (1906–1975)",
    "sections": [
        {
            "type": "section",
            "name": "Abstract",
            "has_parts": [
                {
                    "type": "paragraph",
                    "value": "Freda Josephine Baker was an American-born French entertainer.",
                }
            ],
        },
        {
            "type": "section",
            "name": "Early life",
            "has_parts": [
                {"type": "paragraph", "value": "Baker was born in St. Louis, Missouri."},
                {
                    "type": "section",
                    "name": "Family",
                    "has_parts": [{"type": "paragraph", "value": "Her mother was a washerwoman."}],
                },
                {
                    "type": "list",
                    "has_parts": [
                        {"type": "list_item", "value": "Dancer"},
                        {"type": "list_item", "value": "Singer"},
                    ],
                },
            ],
        },
        {
            "type": "section",
            "name": "References",
            "has_parts": [{"type": "paragraph", "value": "[1] A citation."}],
        },
    ],
    "infoboxes": [
        {
            "name": "Infobox person",
            "type": "infobox",
            "has_parts": [
                {
                    "type": "section",
                    "has_parts": [
                        {"type": "field", "name": "Born", "value": "Freda Josephine McDonald June 3, 1906"},
                        {"type": "field", "name": "Occupations", "values": ["Singer", "dancer", "actress"]},
                        {"type": "field", "name": "Signature", "images": [{"url": "x.svg"}]},
                    ],
                },
                {
                    "type": "section",
                    "name": "Spouses",
                    "has_parts": [{"type": "field", "name": "Spouse", "value": "Jean Lion"}],
                },
            ],
        }
    ],
}


def _write_parquet(path: Path, rows: list[dict], schema: pa.Schema | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def _fineweb_row(i: int, text) -> dict:
    return {
        "text": text,
        "id": f"<urn:uuid:{i}>",
        "url": f"https://x.org/{i}",
        "dump": "CC-MAIN-2024-10",
        "score": 3.5,
        "int_score": 4,
    }


# ---- serializers -----------------------------------------------------------------------------


def test_structured_wikipedia_infobox_is_json_inside_tags_between_prose():
    text = serialize_structured_wikipedia(WIKI_ROW)
    boxes = re.findall(r"<infobox>(.*?)</infobox>", text, flags=re.S)
    assert len(boxes) == 1
    assert json.loads(boxes[0]) == {
        "Born": "Freda Josephine McDonald June 3, 1906",
        "Occupations": "Singer, dancer, actress",
        "Spouses": {"Spouse": "Jean Lion"},
    }
    assert "\n" not in boxes[0]  # compact
    assert text.startswith("Josephine Baker\n\n")
    assert text.index(WIKI_ROW["abstract"]) < text.index("<infobox>") < text.index("## Early life")
    assert text.count(WIKI_ROW["abstract"]) == 1  # the Abstract section repeats the abstract field
    assert "### Family\n\nHer mother was a washerwoman." in text
    assert "- Dancer\n- Singer" in text
    assert "References" not in text and "[1] A citation." not in text


def test_structured_wikipedia_without_body_is_empty():
    assert serialize_structured_wikipedia({"name": "Stub", "sections": [], "infoboxes": []}) == ""


def test_stackexchange_keeps_accepted_and_high_score_answers_only():
    row = {
        "qid": 1,
        "question": "<p>How do I parse <code>JSON</code> in Python?</p>\n<pre><code>data = '{\"a\": 1}'\n  "
        "indented()\n</code></pre>",
        "answers": [
            {"answer_id": 10, "author": "a", "pm_score": 1, "selected": False, "text": "<p>LOW SCORE</p>"},
            {
                "answer_id": 11,
                "author": "b",
                "pm_score": 0,
                "selected": True,
                "text": "<p>ACCEPTED &amp; low</p>",
            },
            {
                "answer_id": 12,
                "author": "c",
                "pm_score": MIN_ANSWER_SCORE,
                "selected": False,
                "text": "<p>AT THRESHOLD</p>",
            },
            {
                "answer_id": 13,
                "author": "d",
                "pm_score": 25,
                "selected": False,
                "text": "<ul><li>TOP one</li><li>two</li></ul>",
            },
        ],
    }
    text, n = serialize_stackexchange(row, MIN_ANSWER_SCORE)
    assert n == 3
    assert "LOW SCORE" not in text
    assert text.startswith("Question:\nHow do I parse JSON in Python?")
    assert "data = '{\"a\": 1}'\n  indented()" in text  # code keeps its lines and indentation
    positions = [
        text.index(s)
        for s in ("Accepted answer:\nACCEPTED & low", "Answer:\n- TOP one\n- two", "Answer:\nAT THRESHOLD")
    ]
    assert positions == sorted(positions)


def test_stackexchange_without_qualifying_answer_is_a_counted_skip():
    row = {
        "qid": 2,
        "question": "<p>Q?</p>",
        "answers": [{"answer_id": 1, "author": "x", "pm_score": -1, "selected": False, "text": "<p>no</p>"}],
    }
    with pytest.raises(Skip) as skip:
        serialize_stackexchange(row, MIN_ANSWER_SCORE)
    assert skip.value.reason == "low_score"
    with pytest.raises(Skip) as skip:
        serialize_stackexchange(dict(row, answers=[]), MIN_ANSWER_SCORE)
    assert skip.value.reason == "no_answer"


def _se_row(qid: int, *scores: int, accepted: int | None = None) -> dict:
    return {
        "qid": qid,
        "question": f"<p>Question {qid}?</p>",
        "answers": [
            {"answer_id": qid * 10 + k, "pm_score": s, "selected": k == accepted, "text": f"<p>A{k}</p>"}
            for k, s in enumerate(scores)
        ],
    }


def test_stackexchange_sites_and_score_floor_are_counted_per_site(tmp_path):
    """Listed sites are taken, meta and unlisted sites dropped with their reason, the score floor
    is inclusive, and every site's counts add up to the part's."""
    dl = tmp_path / "data"
    files = [
        # Listed: at the floor (3) kept, one below (2) dropped, accepted at -1 kept, no answer.
        _write_parquet(
            dl / "math.stackexchange.com" / "train-00000-of-00001.parquet",
            [_se_row(1, 3), _se_row(2, 2, 1), _se_row(3, -1, accepted=0), _se_row(4)],
        ),
        _write_parquet(dl / "stackoverflow.com" / "train-00000-of-00001.parquet", [_se_row(5, 9)]),
        # Never taken: a meta site (even with high scores) and a site not in the list.
        _write_parquet(
            dl / "math.meta.stackexchange.com" / "train-00000-of-00001.parquet",
            [_se_row(6, 9), _se_row(7, 9)],
        ),
        _write_parquet(dl / "meta.stackoverflow.com" / "train-00000-of-00001.parquet", [_se_row(8, 9)]),
        _write_parquet(
            dl / "cooking.stackexchange.com" / "train-00000-of-00001.parquet", [_se_row(9, 9)] * 3
        ),
    ]
    cfg = {
        "sites": ["math.stackexchange.com", "stackoverflow.com", "tex.stackexchange.com"],
        "min_answer_score": 3,
    }
    out = tmp_path / "part-0.parquet"
    stats = normalize_part("stackexchange", files, out, stackexchange=cfg)
    table = pq.read_table(out)
    assert sorted(table.column("qid").to_pylist()) == [1, 3, 5]
    assert set(table.column("site").to_pylist()) == {"math.stackexchange.com", "stackoverflow.com"}
    assert stats["dropped"] == {"low_score": 1, "meta_site": 3, "no_answer": 1, "not_listed_site": 3}
    assert (stats["docs_in"], stats["docs_out"], stats["unaccounted"]) == (11, 3, 0)
    sites = stats["sites"]
    assert sites["math.stackexchange.com"]["dropped"] == {"low_score": 1, "no_answer": 1}
    assert sites["math.meta.stackexchange.com"]["dropped"] == {"meta_site": 2}
    assert sites["meta.stackoverflow.com"]["dropped"] == {"meta_site": 1}
    assert sites["cooking.stackexchange.com"]["dropped"] == {"not_listed_site": 3}
    assert sites["stackoverflow.com"]["docs_out"] == 1
    for key in ("docs_in", "docs_out", "chars_in", "chars_out"):
        assert sum(s[key] for s in sites.values()) == stats[key], key
    for reason, n in stats["dropped"].items():
        assert sum(s["dropped"].get(reason, 0) for s in sites.values()) == n, reason
    assert all(s["unaccounted"] == 0 for s in sites.values())
    # The floor in the source's own unit, and what it means in votes: round(log2(1 + 5)) = 3.
    assert stats["stackexchange"] == {
        "sites": sorted(cfg["sites"]),
        "min_answer_score": 3,
        "min_answer_upvotes": 5,
    }
    # One point lower, the answer at 2 is kept too.
    stats = normalize_part(
        "stackexchange", files, tmp_path / "p2.parquet", stackexchange=dict(cfg, min_answer_score=2)
    )
    assert stats["docs_out"] == 4 and "low_score" not in stats["dropped"]


def test_stackexchange_filter_config_is_required_and_meta_sites_cannot_be_listed(tmp_path):
    path = _write_parquet(tmp_path / "stackoverflow.com" / "train.parquet", [_se_row(1, 9)])
    with pytest.raises(ValueError, match="min_answer_score"):
        normalize_part("stackexchange", [path], tmp_path / "out.parquet")
    with pytest.raises(ValueError, match="meta site"):
        StackExchangeFilter(["stackoverflow.com", "meta.stackoverflow.com"], 2)
    with pytest.raises(ValueError, match="empty list"):
        StackExchangeFilter([], 2)
    # No list: every site but the meta ones.
    assert StackExchangeFilter(None, 2).site_drop("cooking.stackexchange.com") is None
    assert StackExchangeFilter(None, 2).site_drop("meta.stackexchange.com") == "meta_site"


def test_html_to_text_spacing():
    assert html_to_text("<p>Use <code>EXISTS</code> here.</p><p>Second</p>") == "Use EXISTS here.\n\nSecond"


def test_chat_transcript_keeps_message_order():
    messages = [
        {"content": "Hi, what is JSON?", "role": "user"},
        {"content": "A text format.", "role": "assistant"},
        {"content": "   ", "role": "user"},
        {"content": "Example?", "role": "user"},
        {"content": '{"a": 1}', "role": "assistant"},
    ]
    text, turns = serialize_chat(messages)
    assert text == 'User: Hi, what is JSON?\nAssistant: A text format.\nUser: Example?\nAssistant: {"a": 1}'
    assert turns == 4
    with pytest.raises(ValueError, match=r"f\.parquet, row 7: message 0 has unknown role 'bot'"):
        serialize_chat([{"content": "x", "role": "bot"}], where="f.parquet, row 7")


def test_text_to_sql_layout():
    text = serialize_text_to_sql("CREATE TABLE t (id INT);", "How many rows?", "SELECT COUNT(*) FROM t;")
    assert (
        text
        == "Schema:\nCREATE TABLE t (id INT);\n\nQuestion: How many rows?\n\nSQL:\nSELECT COUNT(*) FROM t;"
    )
    assert serialize_text_to_sql("CREATE TABLE t (id INT);", "q", "") == ""


# ---- normalize_part ---------------------------------------------------------------------------


def test_empty_rows_are_counted_skips(tmp_path):
    rows = [
        _fineweb_row(0, "real text"),
        _fineweb_row(1, ""),
        _fineweb_row(2, None),
        _fineweb_row(3, "  \n"),
        _fineweb_row(4, "more text"),
    ]
    src = _write_parquet(tmp_path / "data" / "a.parquet", rows)
    stats = normalize_part("fineweb_edu", [src], tmp_path / "out" / "part-0.parquet")
    assert stats["docs_in"] == 5 and stats["docs_out"] == 2
    assert stats["dropped"] == {"empty_text": 3} and stats["unaccounted"] == 0
    out = pq.read_table(tmp_path / "out" / "part-0.parquet")
    assert out.schema.equals(output_schema("fineweb_edu"))
    assert out.column("text").to_pylist() == ["real text", "more text"]
    assert out.column("dump").to_pylist() == ["CC-MAIN-2024-10"] * 2


def test_missing_column_names_file_and_column(tmp_path):
    rows = [{k: v for k, v in _fineweb_row(0, "t").items() if k != "url"}]
    src = _write_parquet(tmp_path / "bad.parquet", rows)
    with pytest.raises(MissingColumnError, match=r"bad\.parquet: missing required column 'url'"):
        normalize_part("fineweb_edu", [src], tmp_path / "part-0.parquet")
    assert not (tmp_path / "part-0.parquet").exists()

    jsonl = tmp_path / "wiki.jsonl"
    jsonl.write_text(json.dumps(WIKI_ROW) + "\n" + json.dumps({"name": "No id", "url": "u"}) + "\n")
    with pytest.raises(
        MissingColumnError, match=r"wiki\.jsonl, line 2: missing required column 'identifier'"
    ):
        normalize_part("structured_wikipedia", [jsonl], tmp_path / "part-0.parquet")

    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(WIKI_ROW) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"broken\.jsonl, line 2: invalid JSON"):
        normalize_part("structured_wikipedia", [broken], tmp_path / "part-0.parquet")


def test_ids_are_stable_content_hashes(tmp_path):
    src = _write_parquet(
        tmp_path / "a.parquet",
        [_fineweb_row(i, f"document {i}") for i in range(4)] + [_fineweb_row(9, "document 0")],
    )
    normalize_part("fineweb_edu", [src], tmp_path / "p1.parquet")
    normalize_part("fineweb_edu", [src], tmp_path / "p2.parquet")
    ids1 = pq.read_table(tmp_path / "p1.parquet").column("id").to_pylist()
    ids2 = pq.read_table(tmp_path / "p2.parquet").column("id").to_pylist()
    assert ids1 == ids2
    assert ids1[0] == doc_id("fineweb_edu", "<urn:uuid:0>", "document 0")
    assert len(set(ids1)) == 5  # an exact copy under another native id stays a separate document


def test_starcoder_language_comes_from_the_directory(tmp_path):
    row = {
        "max_stars_repo_path": "conf/settings.json",
        "max_stars_repo_name": "o/r",
        "max_stars_count": 3,
        "id": "7",
        "content": "a: 1\n",
    }
    src = _write_parquet(tmp_path / "yaml" / "train-00000-of-00001.parquet", [row])
    normalize_part("starcoderdata", [src], tmp_path / "part-0.parquet")
    out = pq.read_table(tmp_path / "part-0.parquet").to_pylist()[0]
    assert (out["language"], out["path"], out["repo"], out["stars"]) == (
        "yaml",
        "conf/settings.json",
        "o/r",
        3,
    )
    assert out["id"] == doc_id("starcoderdata", "yaml/7", "a: 1\n")


def test_pes2o_json_gz_lines(tmp_path):
    path = tmp_path / "train-00000.json.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(
            json.dumps(
                {
                    "added": "a",
                    "created": "c",
                    "id": "42",
                    "source": "s2ag/train",
                    "text": "Title\n\nAbstract.",
                    "version": "v2",
                }
            )
            + "\n\n"
        )
        fh.write(
            json.dumps(
                {
                    "added": "a",
                    "created": "c",
                    "id": "43",
                    "source": "s2ag/train",
                    "text": "",
                    "version": "v2",
                }
            )
            + "\n"
        )
    stats = normalize_part("pes2o", [path], tmp_path / "part-0.parquet")
    assert (stats["docs_out"], stats["dropped"]) == (1, {"empty_text": 1})
    assert pq.read_table(tmp_path / "part-0.parquet").to_pylist()[0]["paper_id"] == "42"


def _pes2o_file(path: Path, texts: list[str]) -> Path:
    with gzip.open(path, "wt") as fh:
        for i, text in enumerate(texts):
            row = {
                "added": "a",
                "created": "c",
                "id": str(100 + i),
                "source": "s2ag/train",
                "text": text,
                "version": "v2",
            }
            fh.write(json.dumps(row) + "\n")
    return path


STUDY = yaml.safe_load((Path(__file__).resolve().parents[2] / "config" / "study.yaml").read_text())


def test_pes2o_subject_filter_keeps_cs_math_ml_papers_and_counts_the_rest(tmp_path):
    texts = [
        # CS/ML abstracts (real-paper phrasing): kept
        "Efficient Attention for Long Documents\n\nWe propose a transformer whose attention mechanism scales "
        "linearly; on three benchmarks the language model matches fine-tuning baselines at lower latency.",
        "Bounds for Sparse Matrices\n\nWe prove a theorem on the eigenvalues of random matrices and give an "
        "asymptotic lemma for their spectral gap.",
        # Biology and history: dropped
        "Root Growth in Arabidopsis\n\nWe measured root elongation under drought stress in two ecotypes.",
        "Trade Routes of the Hanseatic League\n\nArchival letters show how merchants priced grain.",
        # One CS word only (min_terms 3 in the study): dropped
        "Hospital Staffing\n\nA scheduling survey of nurses in rural clinics.",
        # Enough terms, but only past the head (the body of a biology paper): dropped
        "Leaf Colour\n\nChlorophyll content was measured."
        + " x" * 1200
        + " algorithm database compiler software",
        # Case and word boundaries: 'Theorem', 'PROOF' and 'Lemma' count; 'algorithmic' is not 'algorithm'
        "On Ramsey Numbers\n\nTheorem 1 and its PROOF rest on a Lemma; algorithmic aspects are left open.",
    ]
    path = _pes2o_file(tmp_path / "train-00000.json.gz", texts)
    cfg = STUDY["sources"]["pes2o"]["subject_filter"]
    stats = normalize_part("pes2o", [path], tmp_path / "part-0.parquet", subject_filter=cfg)
    kept = [r["paper_id"] for r in pq.read_table(tmp_path / "part-0.parquet").to_pylist()]
    assert kept == ["100", "101", "106"]
    assert stats["dropped"] == {"off_subject": 4} and stats["unaccounted"] == 0
    assert stats["subject_filter"]["kept_matching_subject"] == {
        "computer_science": 1,
        "mathematics": 2,
        "machine_learning_ai": 1,
    }
    # Without the filter every paper is kept.
    assert normalize_part("pes2o", [path], tmp_path / "all.parquet")["docs_out"] == len(texts)


def test_subject_filter_config_errors_are_named():
    from trellis.acquire.normalize import SubjectFilter

    with pytest.raises(ValueError, match="subject_filter.subjects"):
        SubjectFilter({"mathematics": []}, 1, 100)
    with pytest.raises(ValueError, match="min_terms"):
        SubjectFilter({"mathematics": ["lemma"]}, 0, 100)


def test_files_for_part_splits_sorted_files_and_explains_too_many_parts():
    files = ["d/c.parquet", "d/a.parquet", "d/b.parquet"]
    assert [p.name for p in files_for_part(files, 0, 2)] == ["a.parquet", "c.parquet"]
    assert [p.name for p in files_for_part(files, 1, 2)] == ["b.parquet"]
    with pytest.raises(ValueError, match=r"finemath: 3 data file\(s\) cannot fill 4 parts; lower `parts`"):
        files_for_part(files, 0, 4, source="finemath")
    with pytest.raises(ValueError, match="out of range"):
        files_for_part(files, 2, 2)


def test_every_demo_source_normalizes(tmp_path):
    topics = CONFIG["labels"]["topics"]
    for source in CONFIG["sources"]:
        manifest = write_demo_source(source, 40, 2, 1, topics, tmp_path / "dl" / source)
        files = read_manifest(manifest)
        seen = set()
        for part in range(2):
            out = tmp_path / "raw" / source / f"part-{part}.parquet"
            cfg = CONFIG["sources"][source]
            se = {k: cfg[k] for k in ("sites", "min_answer_score")} if source == "stackexchange" else None
            stats = normalize_part(source, files_for_part(files, part, 2, source), out, stackexchange=se)
            assert stats["unaccounted"] == 0 and stats["docs_out"] > 0, source
            table = pq.read_table(out)
            assert table.schema.equals(output_schema(source))
            assert set(table.column("source").to_pylist()) == {source}
            assert all(t.strip() for t in table.column("text").to_pylist())
            seen |= set(table.column("id").to_pylist())
        if source == "structured_wikipedia":
            texts = pq.read_table(tmp_path / "raw" / source / "part-0.parquet").column("text").to_pylist()
            assert all("<infobox>{" in t for t in texts)
        if source == "starcoderdata":
            langs = set()
            for part in range(2):
                langs |= set(
                    pq.read_table(tmp_path / "raw" / source / f"part-{part}.parquet")
                    .column("language")
                    .to_pylist()
                )
            assert {"python", "sql", "json", "yaml"} <= langs
