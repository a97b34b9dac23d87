"""Per-part curation policies: planted documents dropped for the right reason, priorities, groups."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trellis.core.text import compression_ratio
from trellis.curate.filter import filter_part, repair_language

REAL_CODE = '''import json
from pathlib import Path


def load_config(path: str) -> dict:
    """Read a JSON config file and fill in defaults for missing keys."""
    data = json.loads(Path(path).read_text())
    data.setdefault("retries", 3)
    data.setdefault("timeout", 30.0)
    if data["retries"] < 0:
        raise ValueError(f"retries must be >= 0, got {data['retries']}")
    return data


class Client:
    def __init__(self, base_url, session=None):
        self.base_url = base_url.rstrip("/")
        self.session = session

    def get(self, route, **params):
        url = f"{self.base_url}/{route.lstrip('/')}"
        return self.session.get(url, params=params, timeout=10)
'''

# Repetitive generated boilerplate of the kinds the seeds name (SQL migrations, generated configs).
BOILERPLATE = "INSERT INTO migrations (id, name) VALUES (1, 'init');\n" * 400
GENERATED_CONFIG = "".join(f'  "key_{i % 3}": "value",\n' for i in range(2000))
TOPICS = [f"topic_{i}" for i in range(17)]
FINEWEB = {
    "topic_threshold": 0.5,
    "topic_thresholds": {},
    "min_complexity": 1.8,
    "multilabel_bonus": 0.5,
    "target_topic_shares": {},
}
STARCODER = {
    "min_compression_ratio": 0.10,
    "min_code_quality": 1.5,
    "min_structured_relevance": 0.5,
    "quality_boost_at": 3.5,
    "quality_boost": 0.5,
    "target_language_shares": {},
}


def _write(path, rows, schema=None, row_group_size=3):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, row_group_size=row_group_size)


def _tokens(path, raw_rows):
    """The token part tokenize writes: id and n_tokens of every document with text."""
    _write(
        path,
        [{"id": r["id"], "n_tokens": len(r["text"].split())} for r in raw_rows if r["text"]],
        pa.schema([("id", pa.string()), ("n_tokens", pa.int32())]),
    )


def test_compression_ratio_separates_boilerplate_from_code():
    assert compression_ratio(BOILERPLATE) < 0.10
    assert compression_ratio(GENERATED_CONFIG) < 0.10
    assert compression_ratio(REAL_CODE) > 0.25
    with pytest.raises(ValueError):
        compression_ratio("")


def _topic(*peaks):
    t = [0.05] * 17
    for k, p in peaks:
        t[k] = p
    return t


def test_fineweb_policy_keeps_drops_and_ranks(tmp_path):
    planted = [  # (id, topic sigmoids, complexity, expected reason)
        ("keep-1", _topic((4, 0.9)), 3.0, None),
        ("keep-edge", _topic((4, 0.5)), 1.8, None),  # thresholds are inclusive
        ("topic-low", _topic((4, 0.49)), 3.5, "no_topic"),
        ("rare-topic", _topic((9, 0.35)), 3.0, None),  # topic 9 has its own, lower threshold
        ("cx-low", _topic((4, 0.95)), 1.79, "complexity"),
        ("both-low", _topic((4, 0.1)), 1.0, "no_topic"),  # the first failing rule names the drop
        ("multi", _topic((1, 0.7), (2, 0.8), (4, 0.6)), 2.0, None),
        ("missing", None, 2.5, "missing_score"),
        ("empty", _topic((4, 0.9)), 3.0, "empty_text"),
    ]
    raw = [
        {
            "id": i,
            "text": "" if i == "empty" else f"document {i} with some words",
            "source": "fineweb_edu",
            "url": f"u/{i}",
        }
        for i, *_ in planted
    ]
    scores = [{"id": i, "topic": t, "complexity": c} for i, t, c, _ in planted]
    score_schema = pa.schema(
        [("id", pa.string()), ("topic", pa.list_(pa.float32())), ("complexity", pa.float32())]
    )
    _write(tmp_path / "raw.parquet", raw)
    _write(tmp_path / "scores.parquet", scores, score_schema)
    _tokens(tmp_path / "tokens.parquet", raw)
    out = tmp_path / "out" / "part-0.parquet"
    policy = dict(FINEWEB, topic_thresholds={"topic_9": 0.3})
    stats = filter_part(
        "fineweb_edu",
        tmp_path / "raw.parquet",
        tmp_path / "scores.parquet",
        tmp_path / "tokens.parquet",
        policy,
        out,
        topics=TOPICS,
    )

    kept = pq.read_table(out)
    # The raw columns unchanged, then what selection needs.
    assert kept.column_names == ["id", "text", "source", "url", "n_tokens", "priority", "group"]
    rows = {r["id"]: r for r in kept.to_pylist()}
    assert list(rows) == ["keep-1", "keep-edge", "rare-topic", "multi"]
    assert rows["keep-1"]["group"] == "topic_4" and rows["rare-topic"]["group"] == "topic_9"
    assert rows["multi"]["group"] == "topic_2"  # the strongest active topic
    # Priority: complexity, plus the multi-label bonus per extra active topic.
    assert rows["keep-1"]["priority"] == pytest.approx(3.0)
    assert rows["multi"]["priority"] == pytest.approx(2.0 + 2 * 0.5)
    assert rows["keep-1"]["n_tokens"] == 5
    assert stats["dropped"] == {"no_topic": 2, "complexity": 1, "missing_score": 1, "empty_text": 1}
    assert stats["dropped_tokens"]["complexity"] == 5 and stats["dropped_tokens"]["empty_text"] == 0
    assert stats["unaccounted"] == 0 and stats["unaccounted_tokens"] == 0
    assert stats["multilabel_kept"] == 1
    assert stats["policy"]["thresholds"][9] == pytest.approx(0.3)


def test_fineweb_unknown_topic_threshold_is_a_config_error(tmp_path):
    raw = [{"id": "a", "text": "x y", "source": "fineweb_edu"}]
    _write(tmp_path / "raw.parquet", raw)
    _write(tmp_path / "scores.parquet", [{"id": "a", "topic": [0.9] * 17, "complexity": 3.0}])
    _tokens(tmp_path / "tokens.parquet", raw)
    with pytest.raises(
        ValueError, match=r"curation.fineweb_edu.topic_thresholds names unknown topics \['nope'\]"
    ):
        filter_part(
            "fineweb_edu",
            tmp_path / "raw.parquet",
            tmp_path / "scores.parquet",
            tmp_path / "tokens.parquet",
            dict(FINEWEB, topic_thresholds={"nope": 0.2}),
            tmp_path / "o.parquet",
            topics=TOPICS,
        )


def test_starcoder_policy_order_reasons_boost_and_language(tmp_path):
    planted = [  # (id, text, language, path, quality, relevance, expected reason)
        ("good", REAL_CODE, "python", "a.py", 3.0, 2.0, None),
        ("boiler", BOILERPLATE, "sql", "m.sql", 4.5, 3.0, "compression_ratio"),  # first, despite good scores
        ("generated", GENERATED_CONFIG, "json", "c.json", None, None, "compression_ratio"),  # never scored
        ("lowq", REAL_CODE + "\n# v2\n", "python", "b.py", 1.5, 2.5, "code_quality"),  # at the floor
        ("lowrel", REAL_CODE + "\n# v3\n", "python", "c.py", 2.0, 0.4, "structured_relevance"),
        ("boosted", REAL_CODE.replace("Client", "Api"), "python", "d.py", 4.2, 1.0, None),
        (
            "json-in-js",
            '{"name": "pkg", "version": "1.0.0", "private": true}',
            "javascript",
            "package.json",
            2.5,
            2.5,
            None,
        ),
        ("empty", "", "python", "e.py", 3.0, 2.0, "empty_text"),
    ]
    raw = [
        {
            "id": i,
            "text": t,
            "source": "starcoderdata",
            "language": lang,
            "path": path,
            "repo": "r/r",
            "stars": 3,
        }
        for i, t, lang, path, *_ in planted
    ]
    scores = [
        {
            "id": i,
            "compression_ratio": compression_ratio(t) if t else None,
            "code_quality": q,
            "structured_relevance": r,
            "content_type": "library",
            "content_type_probs": [1.0] + [0.0] * 8,
        }
        for i, t, _, _, q, r, _ in planted
    ]
    _write(tmp_path / "raw.parquet", raw)
    _write(tmp_path / "scores.parquet", scores)
    _tokens(tmp_path / "tokens.parquet", raw)
    out = tmp_path / "f.parquet"
    stats = filter_part(
        "starcoderdata",
        tmp_path / "raw.parquet",
        tmp_path / "scores.parquet",
        tmp_path / "tokens.parquet",
        STARCODER,
        out,
        skip_below_compression_ratio=0.10,
    )
    kept = {r["id"]: r for r in pq.read_table(out).to_pylist()}
    assert list(kept) == ["good", "boosted", "json-in-js"]
    assert kept["good"]["priority"] == pytest.approx(2.0)
    assert kept["boosted"]["priority"] == pytest.approx(1.0 + 0.5)  # soft boost for quality >= 4
    assert kept["json-in-js"]["group"] == "json" and kept["json-in-js"]["language"] == "javascript"
    assert stats["language_repairs"] == {"javascript->json": 1}
    assert stats["quality_boosted"] == 1
    expected = {}
    for *_, reason in planted:
        if reason:
            expected[reason] = expected.get(reason, 0) + 1
    assert {k: v for k, v in stats["dropped"].items() if v} == expected
    assert stats["docs_out"] + sum(stats["dropped"].values()) == stats["docs_in"] == len(planted)


def test_filter_threshold_below_the_scoring_prefilter_is_refused(tmp_path):
    raw = [{"id": "a", "text": REAL_CODE, "source": "starcoderdata", "language": "python", "path": "a.py"}]
    _write(tmp_path / "raw.parquet", raw)
    _write(tmp_path / "scores.parquet", [{"id": "a", "code_quality": 3.0, "structured_relevance": 2.0}])
    _tokens(tmp_path / "tokens.parquet", raw)
    with pytest.raises(
        ValueError, match="min_compression_ratio .* below scoring.skip_below_compression_ratio"
    ):
        filter_part(
            "starcoderdata",
            tmp_path / "raw.parquet",
            tmp_path / "scores.parquet",
            tmp_path / "tokens.parquet",
            dict(STARCODER, min_compression_ratio=0.05),
            tmp_path / "o.parquet",
            skip_below_compression_ratio=0.1,
        )


@pytest.mark.parametrize(
    "tag, path, text, expected",
    [
        ("python", "a.py", REAL_CODE, ("python", "consistent")),
        ("python", "notes.txt", REAL_CODE, ("python", "consistent")),  # unknown extension says nothing
        ("javascript", "package.json", '{"a": [1, 2]}', ("json", "repaired")),
        ("javascript", "app.json", "const x = require('y');\nmodule.exports = x;", ("javascript", "kept")),
        (
            "yaml",
            "compose.json",
            "services:\n  web:\n    image: nginx\n",
            ("yaml", "kept"),
        ),  # not JSON: tag stays
        ("sql", "schema.py", "CREATE TABLE t (id INT);\n", ("sql", "kept")),
        ("json", "build.sql", "SELECT 1;\nINSERT INTO t VALUES (1);", ("sql", "repaired")),
    ],
)
def test_language_repair(tag, path, text, expected):
    assert repair_language(tag, path, text) == expected


def test_filter_refuses_misaligned_inputs(tmp_path):
    raw = [{"id": f"d{i}", "text": "x y", "source": "fineweb_edu"} for i in range(5)]
    scores = [{"id": f"d{i}", "topic": [0.9] * 17, "complexity": 3.0} for i in (0, 1, 3, 2, 4)]
    _write(tmp_path / "raw.parquet", raw)
    _write(tmp_path / "scores.parquet", scores)
    _tokens(tmp_path / "tokens.parquet", raw)
    args = (tmp_path / "raw.parquet", tmp_path / "scores.parquet", tmp_path / "tokens.parquet", FINEWEB)
    with pytest.raises(ValueError, match=r"row 2.*raw.parquet.*'d2'.*scores.parquet.*'d3'"):
        filter_part("fineweb_edu", *args, tmp_path / "o.parquet", topics=TOPICS)
    assert not (tmp_path / "o.parquet").exists()  # nothing half-written
    _write(tmp_path / "scores.parquet", [dict(s, id=f"d{k}") for k, s in enumerate(scores)])
    _write(tmp_path / "tokens.parquet", [{"id": "d0", "n_tokens": 2}, {"id": "d2", "n_tokens": 2}])
    with pytest.raises(
        ValueError, match=r"raw.parquet: row 1 \(id 'd1'\) has text but no entry in the token part"
    ):
        filter_part("fineweb_edu", *args, tmp_path / "o.parquet", topics=TOPICS)
    _write(tmp_path / "short.parquet", scores[:4])
    with pytest.raises(ValueError, match="short.parquet has 4 rows but raw part .*raw.parquet has 5"):
        filter_part(
            "fineweb_edu",
            tmp_path / "raw.parquet",
            tmp_path / "short.parquet",
            tmp_path / "tokens.parquet",
            FINEWEB,
            tmp_path / "o.parquet",
            topics=TOPICS,
        )
    with pytest.raises(KeyError, match="curation.fineweb_edu.min_complexity"):
        filter_part(
            "fineweb_edu",
            *args[:3],
            {k: v for k, v in FINEWEB.items() if k != "min_complexity"},
            tmp_path / "o.parquet",
            topics=TOPICS,
        )


def test_filter_handles_row_groups_of_different_sizes(tmp_path):
    n = 50
    rng = np.random.default_rng(0)
    peaks = rng.random(n)
    raw = [{"id": f"d{i}", "text": f"text {i}", "source": "fineweb_edu"} for i in range(n)]
    scores = [{"id": f"d{i}", "topic": [float(peaks[i])] * 17, "complexity": 3.0} for i in range(n)]
    _write(tmp_path / "raw.parquet", raw, row_group_size=7)
    _write(tmp_path / "scores.parquet", scores, row_group_size=11)
    _tokens(tmp_path / "tokens.parquet", raw)
    stats = filter_part(
        "fineweb_edu",
        tmp_path / "raw.parquet",
        tmp_path / "scores.parquet",
        tmp_path / "tokens.parquet",
        dict(FINEWEB, min_complexity=1.0),
        tmp_path / "o.parquet",
        topics=TOPICS,
    )
    kept = pq.read_table(tmp_path / "o.parquet").column("id").to_pylist()
    assert kept == [f"d{i}" for i in range(n) if np.float32(peaks[i]) >= 0.5]
    assert stats["docs_out"] == len(kept) and stats["tokens_out"] == 2 * len(kept)


def _fineweb_files(tmp_path, planted):
    raw = [{"id": i, "text": f"document {i}", "source": "fineweb_edu"} for i, _ in planted]
    _write(tmp_path / "raw.parquet", raw)
    _write(
        tmp_path / "scores.parquet",
        [{"id": i, "topic": t, "complexity": 3.0} for i, t in planted],
        pa.schema([("id", pa.string()), ("topic", pa.list_(pa.float32())), ("complexity", pa.float32())]),
    )
    _tokens(tmp_path / "tokens.parquet", raw)


def _filter(tmp_path, policy, report=None):
    return filter_part(
        "fineweb_edu",
        tmp_path / "raw.parquet",
        tmp_path / "scores.parquet",
        tmp_path / "tokens.parquet",
        policy,
        tmp_path / "out.parquet",
        topics=TOPICS,
        stage0_report=report,
    )


def test_fineweb_calibrated_thresholds_come_from_the_stage0_report(tmp_path):
    _fineweb_files(tmp_path, [("a", _topic((4, 0.3))), ("b", _topic((9, 0.3))), ("c", _topic((9, 0.6)))])
    calibrated = dict(FINEWEB, topic_threshold=None, topic_thresholds="calibrated")
    tuned = {t: 0.5 for t in TOPICS} | {"topic_4": 0.25}  # what Stage 0 calibrated
    report = {"thresholds": {"topic": tuned}, "threshold_source": {"topic": "calibrated"}}
    stats = _filter(tmp_path, calibrated, report)
    assert pq.read_table(tmp_path / "out.parquet").column("id").to_pylist() == ["a", "c"]
    assert stats["policy"]["thresholds"][4] == pytest.approx(0.25)
    with pytest.raises(
        ValueError, match=r"curation.fineweb_edu.topic_thresholds is 'calibrated' but no Stage 0"
    ):
        _filter(tmp_path, calibrated, {"passed": True})
    # One source of truth: a pinned default beside `calibrated` is an error naming the key.
    with pytest.raises(ValueError, match=r"config key curation.fineweb_edu.topic_threshold is 0.5"):
        _filter(tmp_path, dict(calibrated, topic_threshold=0.5), report)


def test_fineweb_pinned_thresholds_must_be_the_ones_stage0_checked(tmp_path):
    _fineweb_files(tmp_path, [("a", _topic((4, 0.6)))])
    checked = {"thresholds": {"topic": {t: 0.5 for t in TOPICS}}, "threshold_source": {"topic": "pinned"}}
    assert _filter(tmp_path, FINEWEB, checked)["docs_out"] == 1
    with pytest.raises(ValueError, match=r"report checked .* rerun stage0"):
        _filter(tmp_path, dict(FINEWEB, topic_threshold=0.6), checked)


@pytest.mark.parametrize(
    "value, key",
    [
        ("calibrate", r"config key curation.fineweb_edu.topic_thresholds must be 'calibrated'"),
        ([0.5], r"config key curation.fineweb_edu.topic_thresholds must be 'calibrated'"),
        ({"topic_3": 1.5}, r"config key curation.fineweb_edu.topic_thresholds.topic_3 must be a number"),
        ({"topic_3": "high"}, r"config key curation.fineweb_edu.topic_thresholds.topic_3 must be a number"),
    ],
)
def test_fineweb_bad_topic_thresholds_is_a_config_error_naming_the_key(tmp_path, value, key):
    _fineweb_files(tmp_path, [("a", _topic((4, 0.6)))])
    with pytest.raises(ValueError, match=key):
        _filter(tmp_path, dict(FINEWEB, topic_thresholds=value))
