"""lm-eval-harness tier: demo tasks through include_path, per-document scores, CIs, validation."""

from __future__ import annotations

import pytest
import yaml
from test_json_schema import make_tiny_model

from trellis.evaluate import harness
from trellis.evaluate.results import model_info
from trellis.train.baselines import final_baseline_arm

BOOT = {"resamples": 200, "confidence": 0.95}
TASKS = {"trellis_demo_topic": 0, "trellis_demo_cloze": 0, "trellis_demo_arith": 2}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model", chat=True)


@pytest.fixture(scope="module")
def demo_tasks(tmp_path_factory):
    topics = yaml.safe_load(open("config/config.yaml"))["labels"]["topics"]
    out = tmp_path_factory.mktemp("tasks")
    harness.write_demo_tasks(out, topics, seed=5, docs=12)
    return out


@pytest.fixture(scope="module")
def base_raw(tiny_model, demo_tasks, monkeypatch_module):
    return harness.run_tasks(tiny_model, "base", TASKS, demo_tasks, batch_size=4)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_DATASETS_OFFLINE", "1")
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield mp


def test_demo_tasks_are_deterministic_lm_eval_task_files(tmp_path, demo_tasks):
    topics = yaml.safe_load(open("config/config.yaml"))["labels"]["topics"]
    harness.write_demo_tasks(tmp_path, topics, seed=5, docs=12)
    for task in harness.DEMO_TASKS:
        assert (tmp_path / f"{task}.test.jsonl").read_text() == (
            demo_tasks / f"{task}.test.jsonl"
        ).read_text()
        spec = yaml.safe_load((tmp_path / f"{task}.yaml").read_text())
        assert spec["task"] == task and spec["dataset_path"] == "json"
    with pytest.raises(ValueError, match="labels.topics"):
        harness.write_demo_tasks(tmp_path, topics[:2], seed=5, docs=12)


def test_results_rebuild_lm_evals_own_aggregates(base_raw, tiny_model):
    results = harness.to_results(base_raw, TASKS, "curated", "base", model_info(tiny_model), BOOT, 0)
    assert set(results) == {f"lm_{t}" for t in TASKS}
    for task in TASKS:
        r = results[f"lm_{task}"]
        assert r["n"] == 12 and len({e["id"] for e in r["examples"]}) == 12
        assert r["data"]["num_fewshot"] == TASKS[task]
        # Our per-document means are exactly lm-eval's reported (mean-aggregated) metrics.
        for name, m in r["metrics"].items():
            metric, _, filt = name.partition("/")
            assert m["value"] == pytest.approx(r["harness_results"][f"{metric},{filt or 'none'}"])
            assert m["ci_low"] <= m["value"] <= m["ci_high"]
    # Perplexity is not a mean over documents: kept as lm-eval reports it, with no CI.
    cloze = results["lm_trellis_demo_cloze"]
    assert set(cloze["metrics"]) == {"acc"} and "perplexity,none" in cloze["harness_results"]
    assert set(results["lm_trellis_demo_arith"]["metrics"]) == {"exact_match/number"}


def test_chat_stages_use_the_chat_template(base_raw, tiny_model, demo_tasks):
    sft_raw = harness.run_tasks(tiny_model, "sft", {"trellis_demo_arith": 2}, demo_tasks, batch_size=4)
    chat_context = sft_raw["samples"]["trellis_demo_arith"][0]["arguments"]
    base_context = base_raw["samples"]["trellis_demo_arith"][0]["arguments"]
    assert "### User:" in str(chat_context) and "### Assistant:" in str(chat_context)
    assert "### User:" not in str(base_context)


def test_lm_evals_environment_report_is_not_collected(tiny_model, demo_tasks, monkeypatch):
    """simple_evaluate's torch environment report (pip list and more in subprocesses) is
    dropped from the output, so run_tasks does not have it collected; lm-eval's version stays."""
    from importlib.metadata import version

    from torch.utils import collect_env

    reports = []
    monkeypatch.setattr(collect_env, "get_pretty_env_info", lambda: reports.append(1) or "")
    raw = harness.run_tasks(tiny_model, "base", {"trellis_demo_topic": 0}, demo_tasks, batch_size=4)
    assert reports == []
    assert raw["lm_eval_version"] == version("lm_eval")
    assert "pretty_env_info" not in raw and len(raw["samples"]["trellis_demo_topic"]) == 12


def test_group_tasks_pool_subtask_documents_and_filters_name_metrics():
    raw = {
        "group_subtasks": {"grp": ["a", "b"]},
        "configs": {
            "a": {"metric_list": [{"metric": "acc", "aggregation": "mean"}]},
            "b": {
                "metric_list": [
                    {"metric": "acc", "aggregation": "mean"},
                    {"metric": "perplexity", "aggregation": "perplexity"},
                ]
            },
            "g": {"metric_list": [{"metric": "exact_match", "aggregation": "mean"}]},
        },
        "samples": {
            "a": [
                {"doc_id": 0, "metrics": ["acc"], "acc": 1.0, "filter": "none"},
                {"doc_id": 1, "metrics": ["acc"], "acc": 0.0, "filter": "none"},
            ],
            "b": [
                {
                    "doc_id": 0,
                    "metrics": ["acc", "perplexity"],
                    "acc": 1.0,
                    "perplexity": -3.2,
                    "filter": "none",
                }
            ],
            "g": [
                {"doc_id": 0, "metrics": ["exact_match"], "exact_match": 1.0, "filter": "strict"},
                {"doc_id": 0, "metrics": ["exact_match"], "exact_match": 0.0, "filter": "flexible"},
            ],
        },
        "results": {"grp": {"acc,none": 2 / 3}, "g": {}},
        "n-shot": {"grp": 0, "g": 5},
    }
    out = harness.to_results(raw, ["grp", "g"], "curated", "base", {}, BOOT, 0)
    grp = out["lm_grp"]
    assert grp["n"] == 3 and {e["id"] for e in grp["examples"]} == {"a/0", "a/1", "b/0"}
    assert grp["metrics"]["acc"]["value"] == pytest.approx(2 / 3)
    assert grp["data"]["subtasks"] == ["a", "b"]
    g = out["lm_g"]
    assert g["n"] == 1 and g["examples"][0]["scores"] == {
        "exact_match/strict": 1.0,
        "exact_match/flexible": 0.0,
    }
    with pytest.raises(KeyError, match="no samples for task 'c'"):
        harness.to_results({**raw, "group_subtasks": {"grp": ["a", "c"]}}, ["grp"], "x", "base", {}, BOOT, 0)


def test_unknown_task_is_a_clear_error(tiny_model, demo_tasks):
    with pytest.raises(ValueError, match="lm-eval knows no task \\['no_such_task'\\]"):
        harness.run_tasks(tiny_model, "base", {"no_such_task": 0}, demo_tasks)


def test_task_manager_indexes_lm_evals_own_tasks_only_when_needed(demo_tasks):
    built = []

    class Recording:  # stands in for lm-eval's TaskManager, whose full index takes seconds
        def __init__(self, include_path=None, include_defaults=True):
            built.append(include_defaults)
            local = [t.stem for t in demo_tasks.glob("*.yaml")] if include_path else []
            self.all_tasks = local + (["piqa", "sciq"] if include_defaults else [])

    assert set(TASKS) <= set(harness._task_manager(Recording, demo_tasks, TASKS).all_tasks)
    assert built == [False]  # every task is local: lm-eval's index never built
    built.clear()
    manager = harness._task_manager(Recording, demo_tasks, {"trellis_demo_topic": 0, "piqa": 0})
    assert built == [False, True] and "piqa" in manager.all_tasks
    built.clear()
    harness._task_manager(Recording, None, {"piqa": 0})
    assert built == [True]


def test_published_comparison():
    published = {"piqa": 0.675, "sciq": 0.826, "arc_easy": 0.517}
    rows = harness.compare_published({"piqa": 0.68, "sciq": 0.80}, published, tolerance=0.015)
    by_task = {r["task"]: r for r in rows}
    assert by_task["piqa"]["within_tolerance"] and by_task["piqa"]["difference"] == pytest.approx(0.005)
    assert not by_task["sciq"]["within_tolerance"] and by_task["sciq"]["ours"] == 0.80
    assert not by_task["arc_easy"]["within_tolerance"] and by_task["arc_easy"]["ours"] is None
    # The tolerance is inclusive.
    (edge,) = harness.compare_published({"piqa": 0.69}, {"piqa": 0.675}, tolerance=0.015)
    assert edge["within_tolerance"]
    assert set(harness.PYTHIA_410M_DEDUPED_ZERO_SHOT) == {
        "lambada_openai",
        "piqa",
        "winogrande",
        "arc_easy",
        "arc_challenge",
        "sciq",
    }


def test_validation_within_tolerance_passes_and_records_every_task():
    published = harness.PYTHIA_410M_DEDUPED_ZERO_SHOT
    ours = {t: v + 0.01 for t, v in published.items()}
    rows = harness.compare_published(ours, published, harness.VALIDATION_TOLERANCE)
    record = harness.validation_record(rows, harness.VALIDATION_TOLERANCE, arm="pythia-410m-final")
    harness.check_validation(record)  # no error
    assert record["pass"] and record["tolerance"] == 0.015 and record["arm"] == "pythia-410m-final"
    assert set(record["tasks"]) == set(published)
    assert record["tasks"]["piqa"] == {
        "ours": pytest.approx(0.685),
        "published": 0.675,
        "difference": pytest.approx(0.01),
        "within_tolerance": True,
    }
    assert "| piqa | 0.685 | 0.675 | +0.010 | yes |" in harness.validation_table(record)


def test_validation_outside_tolerance_names_task_ours_published_and_tolerance(tmp_path):
    published = harness.PYTHIA_410M_DEDUPED_ZERO_SHOT
    ours = dict(published) | {"sciq": 0.790}
    del ours["winogrande"]
    record = harness.validation_record(harness.compare_published(ours, published, 0.015), 0.015)
    assert not record["pass"]
    with pytest.raises(ValueError) as err:
        harness.check_validation(record)
    message = str(err.value)
    assert "sciq: ours 0.7900, published 0.8260, difference -0.0360, tolerance ±0.015" in message
    assert "winogrande: ours missing" in message and "published 0.5340" in message
    assert "2 of 6 tasks" in message and "piqa" not in message

    harness.write_validation_csv(record, tmp_path / "v.csv")
    lines = (tmp_path / "v.csv").read_text().splitlines()
    assert lines[0] == "task,ours,published,difference,within_tolerance,tolerance" and len(lines) == 7


def test_validation_runs_the_published_tasks_zero_shot_with_the_arms_settings(monkeypatch, tiny_model):
    calls = []

    def fake_run_tasks(model_dir, stage, tasks, include_path, batch_size, limit, seed):
        calls.append((stage, tasks, include_path, batch_size, limit, seed))
        results = {t: {"acc,none": v - 0.02 if t == "arc_easy" else v} for t, v in tasks_published.items()}
        return {"results": results, "samples": {t: [{}] * 3 for t in tasks}, "lm_eval_version": "x"}

    tasks_published = harness.PYTHIA_410M_DEDUPED_ZERO_SHOT
    monkeypatch.setattr(harness, "run_tasks", fake_run_tasks)
    record = harness.validate_model(tiny_model, {"tasks": {"mmlu": 5}, "batch_size": 16, "limit": None}, 7)
    assert calls == [("base", {t: 0 for t in tasks_published}, None, 16, None, 7)]
    assert not record["pass"] and record["n"]["piqa"] == 3 and record["batch_size"] == 16
    assert [line.split(":")[0] for line in harness.validation_failures(record)] == ["arc_easy"]


def test_validation_runs_on_the_final_pythia_410m_deduped_baseline():
    study = yaml.safe_load(open("config/study.yaml"))
    tokens = int(study["pretrain"]["max_tokens"])
    assert final_baseline_arm(study["arms"], harness.PUBLISHED_MODEL, tokens) == "pythia-410m-final"
    demo = yaml.safe_load(open("config/config.yaml"))
    assert final_baseline_arm(demo["arms"], harness.PUBLISHED_MODEL, tokens) is None
    repo = harness.PUBLISHED_MODEL
    for revision, arm in (("step143000", "a"), ("main", "a"), ("compute-matched", None), ("step1000", None)):
        assert (
            final_baseline_arm(
                {"a": {"kind": "baseline", "repo": repo, "revision": revision}},
                harness.PUBLISHED_MODEL,
                tokens,
            )
            == arm
        )
    other = {"a": {"kind": "baseline", "repo": "EleutherAI/pythia-1b-deduped", "revision": "final"}}
    assert final_baseline_arm(other, harness.PUBLISHED_MODEL, tokens) is None
