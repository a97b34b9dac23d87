import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trellis.filtering import compression_ratio, filter_part

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

BOILERPLATE = "INSERT INTO migrations (id, name) VALUES (1, 'init');\n" * 400


def _write(path, rows, schema=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, row_group_size=3)


def test_compression_ratio_separates_boilerplate_from_code():
    assert compression_ratio(BOILERPLATE) < 0.10
    assert compression_ratio(REAL_CODE) > 0.25
    with pytest.raises(ValueError):
        compression_ratio("")


def test_fineweb_filter_keeps_and_drops_by_reason(tmp_path):
    def topic(peak):
        t = [0.05] * 17
        t[4] = peak
        return t

    planted = [  # (id, max topic, complexity, expected reason)
        ("keep-1", 0.9, 3.0, None),
        ("keep-edge", 0.5, 1.8, None),  # thresholds are inclusive
        ("topic-low", 0.49, 3.5, "topic"),
        ("cx-low", 0.95, 1.79, "complexity"),
        ("both-low", 0.1, 1.0, "topic"),  # the first failing rule names the drop
        ("keep-2", 0.7, 2.2, None),
        ("missing", None, 2.5, "missing_score"),
    ]
    raw = [{"id": i, "text": f"document {i}", "source": "fineweb_edu", "url": f"u/{i}"} for i, *_ in planted]
    scores = [
        {"id": i, "topic": topic(t) if t is not None else None, "complexity": c}
        for i, t, c, _ in planted
    ]
    score_schema = pa.schema([("id", pa.string()), ("topic", pa.list_(pa.float32())), ("complexity", pa.float32())])
    _write(tmp_path / "raw.parquet", raw)
    _write(tmp_path / "scores.parquet", scores, score_schema)
    out = tmp_path / "out" / "part-0.parquet"
    stats = filter_part("fineweb_edu", tmp_path / "raw.parquet", tmp_path / "scores.parquet",
                        {"topic_threshold": 0.5, "min_complexity": 1.8}, out)

    kept = pq.read_table(out)
    assert kept.column_names == ["id", "text", "source", "url"]  # the raw columns, unchanged
    assert kept.column("id").to_pylist() == ["keep-1", "keep-edge", "keep-2"]
    assert stats["docs_in"] == 7 and stats["docs_out"] == 3
    assert stats["dropped"] == {"topic": 2, "complexity": 1, "missing_score": 1}
    assert stats["docs_out"] + sum(stats["dropped"].values()) == stats["docs_in"]
    assert stats["unaccounted"] == 0


def test_starcoder_filter_order_and_reasons(tmp_path):
    planted = [  # (id, text, quality, relevance, expected)
        ("good", REAL_CODE, 3.0, 2.0, None),
        ("boiler", BOILERPLATE, 4.5, 3.0, "compression_ratio"),  # checked first, despite good scores
        ("lowq", REAL_CODE + "\n# v2\n", 1.5, 2.5, "code_quality"),  # at the floor -> dropped
        ("lowrel", REAL_CODE + "\n# v3\n", 2.0, 0.4, "structured_relevance"),
        ("good2", REAL_CODE.replace("Client", "Api"), 1.6, 0.5, None),
        ("empty", "", 3.0, 2.0, "empty_text"),
    ]
    raw = [{"id": i, "text": t, "source": "starcoderdata", "language": "python", "path": f"{i}.py",
            "repo": "r/r", "stars": 3} for i, t, *_ in planted]
    scores = [{"id": i, "code_quality": q, "structured_relevance": r, "content_type": "library",
               "content_type_probs": [1.0] + [0.0] * 8} for i, _, q, r, _ in planted]
    _write(tmp_path / "raw.parquet", raw)
    _write(tmp_path / "scores.parquet", scores)
    out = tmp_path / "f.parquet"
    stats = filter_part("starcoderdata", tmp_path / "raw.parquet", tmp_path / "scores.parquet",
                        {"min_compression_ratio": 0.10, "min_code_quality": 1.5, "min_structured_relevance": 0.5}, out)
    kept = pq.read_table(out)
    assert kept.column("id").to_pylist() == ["good", "good2"]
    assert kept.column_names == ["id", "text", "source", "language", "path", "repo", "stars"]
    expected = {}
    for *_, reason in planted:
        if reason:
            expected[reason] = expected.get(reason, 0) + 1
    assert {k: v for k, v in stats["dropped"].items() if v} == expected
    assert stats["docs_out"] + sum(stats["dropped"].values()) == stats["docs_in"] == len(planted)


def test_filter_refuses_misaligned_scores(tmp_path):
    raw = [{"id": f"d{i}", "text": "x", "source": "fineweb_edu"} for i in range(5)]
    scores = [{"id": f"d{i}", "topic": [0.9] * 17, "complexity": 3.0} for i in (0, 1, 3, 2, 4)]
    _write(tmp_path / "raw.parquet", raw)
    _write(tmp_path / "scores.parquet", scores)
    with pytest.raises(ValueError, match=r"row 2.*raw.parquet.*'d2'.*scores.parquet.*'d3'"):
        filter_part("fineweb_edu", tmp_path / "raw.parquet", tmp_path / "scores.parquet",
                    {"topic_threshold": 0.5, "min_complexity": 1.8}, tmp_path / "o.parquet")
    assert not (tmp_path / "o.parquet").exists()  # nothing half-written
    _write(tmp_path / "short.parquet", scores[:4])
    with pytest.raises(ValueError, match="short.parquet has 4 rows but raw part .*raw.parquet has 5"):
        filter_part("fineweb_edu", tmp_path / "raw.parquet", tmp_path / "short.parquet",
                    {"topic_threshold": 0.5, "min_complexity": 1.8}, tmp_path / "o.parquet")
    with pytest.raises(KeyError, match="min_complexity"):
        filter_part("fineweb_edu", tmp_path / "raw.parquet", tmp_path / "scores.parquet",
                    {"topic_threshold": 0.5}, tmp_path / "o.parquet")


def test_filter_handles_row_groups_of_different_sizes(tmp_path):
    n = 50
    rng = np.random.default_rng(0)
    peaks = rng.random(n)
    raw = [{"id": f"d{i}", "text": f"text {i}", "source": "fineweb_edu"} for i in range(n)]
    scores = [{"id": f"d{i}", "topic": [float(peaks[i])] * 17, "complexity": 3.0} for i in range(n)]
    pq.write_table(pa.Table.from_pylist(raw), tmp_path / "raw.parquet", row_group_size=7)
    pq.write_table(pa.Table.from_pylist(scores), tmp_path / "scores.parquet", row_group_size=11)
    stats = filter_part("fineweb_edu", tmp_path / "raw.parquet", tmp_path / "scores.parquet",
                        {"topic_threshold": 0.5, "min_complexity": 1.0}, tmp_path / "o.parquet")
    kept = pq.read_table(tmp_path / "o.parquet").column("id").to_pylist()
    assert kept == [f"d{i}" for i in range(n) if np.float32(peaks[i]) >= 0.5]
    assert stats["docs_out"] == len(kept)
