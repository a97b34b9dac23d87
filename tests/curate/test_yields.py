"""The curation yield report (rule curation_yield): rows that add up at every step, CSV, funnel PNG."""

import json
import subprocess
import sys

import pytest

from trellis.core.stats import StepStats
from trellis.curate.yields import funnel_plot, site_yield, source_yield, write_yield_csv


def test_yield_rows_add_up_and_plot(tmp_path):
    filt = {
        "docs_in": 100,
        "docs_out": 60,
        "tokens_in": 10000,
        "tokens_out": 7000,
        "dropped": {"no_topic": 30, "complexity": 10},
        "dropped_tokens": {"no_topic": 2000, "complexity": 1000},
    }
    half = {k: (v // 2 if isinstance(v, int) else {r: n // 2 for r, n in v.items()}) for k, v in filt.items()}
    dedup = {
        "docs_in": 60,
        "docs_out": 55,
        "tokens_in": 7000,
        "tokens_out": 6500,
        "dropped": {"exact_duplicate": 2, "near_duplicate": 3},
        "dropped_tokens": {"exact_duplicate": 200, "near_duplicate": 300},
    }
    select = {
        "docs_in": 55,
        "docs_out": 40,
        "tokens_in": 6500,
        "tokens_out": 5000,
        "dropped": {"not_selected": 15},
        "dropped_tokens": {"not_selected": 1500},
    }
    paths = {}
    for name, st in {"f0": half, "f1": half, "dedup": dedup, "select": select}.items():
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(st))
    rows = source_yield("fineweb_edu", [paths["f0"], paths["f1"]], paths["dedup"], paths["select"])
    out = {(r["step"], r["reason"]): r for r in rows}
    assert out[("filter", "in")]["tokens"] == 10000 and out[("select", "out")]["tokens"] == 5000
    assert out[("select", "out")]["tokens_share"] == 0.5
    for step in ("filter", "dedup", "select"):
        dropped = sum(
            r["tokens"] for (s, reason), r in out.items() if s == step and reason.startswith("dropped:")
        )
        assert out[(step, "in")]["tokens"] == out[(step, "out")]["tokens"] + dropped
    write_yield_csv(rows, tmp_path / "yield.csv")
    funnel_plot(rows, tmp_path / "yield.png")
    assert (tmp_path / "yield.csv").read_text().startswith("source,step,reason,docs,tokens")
    assert (tmp_path / "yield.png").read_bytes()[:4] == b"\x89PNG"
    # Stats of another run (select reads more than dedup wrote) are refused.
    paths["select"].write_text(json.dumps(dict(select, docs_in=56)))
    with pytest.raises(ValueError, match="select: reads 56 docs .* dedup wrote 55"):
        source_yield("fineweb_edu", [paths["f0"], paths["f1"]], paths["dedup"], paths["select"])


def test_filter_parts_sum_and_an_unaccounted_step_is_refused(tmp_path):
    paths = []
    for k, (kept, dropped) in enumerate([([30, 20], [("no_topic", 5)]), ([40], [("complexity", 7)])]):
        s = StepStats(f"filter/fineweb_edu/part-{k}.parquet", reasons=("no_topic", "complexity"))
        for t in kept:
            s.seen(t)
            s.kept(t)
        for reason, t in dropped:
            s.seen(t)
            s.drop(reason, t)
        paths.append(tmp_path / f"filter-{k}.json")
        paths[-1].write_text(json.dumps(s.to_dict()))
    nothing_dropped = {
        "docs_in": 3,
        "docs_out": 3,
        "tokens_in": 90,
        "tokens_out": 90,
        "dropped": {},
        "dropped_tokens": {},
        "unaccounted": 0,
        "unaccounted_tokens": 0,
    }
    (tmp_path / "dedup.json").write_text(json.dumps(nothing_dropped))
    (tmp_path / "select.json").write_text(json.dumps(nothing_dropped))
    rows = source_yield("fineweb_edu", paths, tmp_path / "dedup.json", tmp_path / "select.json")
    filt = {r["reason"]: (r["docs"], r["tokens"]) for r in rows if r["step"] == "filter"}
    assert filt == {"in": (5, 102), "dropped:complexity": (1, 7), "dropped:no_topic": (1, 5), "out": (3, 90)}
    leaky = dict(nothing_dropped, docs_out=2, tokens_out=80)
    (tmp_path / "select.json").write_text(json.dumps(dict(leaky, unaccounted=1, unaccounted_tokens=10)))
    with pytest.raises(ValueError, match="select: 1 documents / 10 tokens unaccounted"):
        source_yield("fineweb_edu", paths, tmp_path / "dedup.json", tmp_path / "select.json")


def test_counting_steps_do_not_import_matplotlib():
    # funnel_plot imports matplotlib lazily: the stats and the rows must not pay for it.
    code = (
        "import sys, trellis.curate.yields, trellis.curate.filter, trellis.curate.select; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _se_part(tmp_path, k: int, sites: dict[str, tuple[int, dict[str, int]]]):
    """A StackExchange normalize part's stats: per site (kept, {reason: dropped})."""
    total = StepStats("normalize/stackexchange", unit="chars", drop_sizes=False)
    per_site = {}
    for site, (kept, dropped) in sites.items():
        st = StepStats(f"normalize/stackexchange/{site}", unit="chars", drop_sizes=False)
        for _ in range(kept):
            for s in (st, total):
                s.seen("text")
                s.kept("text")
        for reason, n in dropped.items():
            for _ in range(n):
                st.seen()
                total.seen()
            st.drop(reason, docs=n)
            total.drop(reason, docs=n)
        per_site[site] = st.to_dict()
    total.extra.update({"source": "stackexchange", "sites": per_site})
    path = tmp_path / f"part-{k}.stats.json"
    path.write_text(json.dumps(total.to_dict()))
    return path


def test_stackexchange_rows_per_site_come_after_the_curated_rows(tmp_path):
    parts = [
        _se_part(
            tmp_path,
            0,
            {
                "math.stackexchange.com": (5, {"low_score": 2, "no_answer": 1}),
                "meta.stackoverflow.com": (0, {"meta_site": 3}),
            },
        ),
        _se_part(
            tmp_path,
            1,
            {
                "math.stackexchange.com": (3, {"low_score": 1}),
                "cooking.stackexchange.com": (0, {"not_listed_site": 4}),
            },
        ),
    ]
    rows = site_yield(parts)
    got = {(r["step"], r["reason"]): r["docs"] for r in rows}
    assert [r["step"] for r in rows if r["reason"] == "in"] == [
        "normalize",
        "normalize:cooking.stackexchange.com",
        "normalize:math.stackexchange.com",
        "normalize:meta.stackoverflow.com",
    ]
    assert got[("normalize", "in")] == 19 and got[("normalize", "out")] == 8
    assert got[("normalize:math.stackexchange.com", "dropped:low_score")] == 3
    assert got[("normalize:meta.stackoverflow.com", "dropped:meta_site")] == 3
    assert got[("normalize:cooking.stackexchange.com", "dropped:not_listed_site")] == 4
    for step in {r["step"] for r in rows}:
        dropped = sum(n for (s, reason), n in got.items() if s == step and reason.startswith("dropped:"))
        assert got[(step, "in")] == got[(step, "out")] + dropped, step
    assert all(r["source"] == "stackexchange" and r["tokens"] == "" for r in rows)
    assert next(r for r in rows if r["step"] == "normalize" and r["reason"] == "out")["docs_share"] == round(
        8 / 19, 6
    )
    # The curated rows are written as before; the StackExchange rows follow them.
    curated = [
        {
            "source": "fineweb_edu",
            "step": "filter",
            "reason": "in",
            "docs": 4,
            "tokens": 40,
            "docs_share": 1.0,
            "tokens_share": 1.0,
        }
    ]
    write_yield_csv(curated, tmp_path / "before.csv")
    write_yield_csv(curated + rows, tmp_path / "after.csv")
    before = (tmp_path / "before.csv").read_text()
    after = (tmp_path / "after.csv").read_text()
    assert after.startswith(before)
    assert after[len(before) :].splitlines()[0] == "stackexchange,normalize,in,19,,1.0,"
    assert site_yield([]) == []
    # Per-site counts that do not add up to the part's are refused.
    broken = json.loads(parts[0].read_text())
    broken["sites"]["math.stackexchange.com"]["docs_out"] = 4
    parts[0].write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="do not add up"):
        site_yield(parts)
