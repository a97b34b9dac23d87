"""trellis.acquire.demo.stackexchange: native answer structs, accepted and low-score answers."""

from __future__ import annotations

from pathlib import Path

import yaml

from trellis.acquire import demo as dc

CONFIG = yaml.safe_load((Path(__file__).resolve().parents[3] / "config" / "config.yaml").read_text())
TOPICS = CONFIG["labels"]["topics"]


def test_answers_have_native_fields_and_mixed_quality():
    se = [r for rows in dc.generate_rows("stackexchange", 60, 1, 2, TOPICS).values() for r in rows]
    answers = [a for r in se for a in r["answers"]]
    assert {"answer_id", "author", "pm_score", "selected", "text"} <= set(answers[0])
    assert any(a["selected"] for a in answers) and any(
        a["pm_score"] < 2 and not a["selected"] for a in answers
    )


def test_a_meta_and_a_non_technical_site_besides_the_configured_ones():
    files = dc.generate_rows("stackexchange", 60, 1, 2, TOPICS)
    sites = {rel.split("/")[1] for rel in files}
    listed = set(CONFIG["sources"]["stackexchange"]["sites"])
    assert listed < sites  # the demo config lists every technical site the generator writes
    off = sites - listed
    assert any("meta" in s.split(".") for s in off) and any("meta" not in s.split(".") for s in off)
    # The off-list threads come on top of n_docs, from their own stream: the listed sites' rows are
    # the same whatever is added for the sites normalize drops.
    assert sum(len(rows) for rel, rows in files.items() if rel.split("/")[1] in listed) == 60


def test_normalizing_the_demo_drops_the_off_list_sites_with_their_reason(tmp_path):
    from trellis.acquire.download import read_manifest, write_demo_source
    from trellis.acquire.normalize import normalize_part

    cfg = CONFIG["sources"]["stackexchange"]
    files = read_manifest(write_demo_source("stackexchange", 60, 1, 2, TOPICS, tmp_path / "dl"))
    stats = normalize_part(
        "stackexchange",
        files,
        tmp_path / "part-0.parquet",
        stackexchange={"sites": cfg["sites"], "min_answer_score": cfg["min_answer_score"]},
    )
    by_reason = {site: set(s["dropped"]) for site, s in stats["sites"].items() if site not in cfg["sites"]}
    assert by_reason == {
        "cooking.stackexchange.com": {"not_listed_site"},
        "meta.stackoverflow.com": {"meta_site"},
    }
    assert all(stats["sites"][s]["docs_out"] > 0 for s in cfg["sites"])
    assert stats["dropped"]["low_score"] > 0 and stats["unaccounted"] == 0
