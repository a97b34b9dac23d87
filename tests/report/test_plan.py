"""The plan: from the config alone, the mix, the model's size and FLOPs, cost per arm, downloads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from trellis.report import plan
from trellis.train import compute
from trellis.train.baselines import PYTHIA_ARCHITECTURES

ROOT = Path(__file__).resolve().parents[2]


def load(name):
    return yaml.safe_load((ROOT / "config" / name).read_text())


def test_study_plan_matches_the_model_card():
    p = plan.build_plan(load("study.yaml"))
    # The model card's parameter count, and the LitGPT model's (tests/train/test_pretrain.py builds it).
    assert p["model"]["parameters"] == 506_328_320
    assert p["mix"]["total_tokens"] == 20_000_000_000
    assert sum(r["share"] for r in p["mix"]["components"]) == pytest.approx(1.0)
    arms = {r["arm"]: r for r in p["compute"]}
    assert arms["curated"]["total_flops"] == arms["uncurated"]["total_flops"] > 6e19
    # 6·N·D dominates: the pretraining FLOPs are 6 × matmul weights × tokens plus attention.
    tokens = arms["curated"]["pretrain_tokens"]
    assert arms["curated"]["pretrain_flops"] == pytest.approx(
        tokens * compute.training_flops_per_token(p["model"]["matmul_parameters"], 24, 1280, 2047)
    )
    assert arms["pythia-410m-matched"]["pretrain_flops"] == 0  # pretrained elsewhere
    what = {d["what"]: d for d in p["downloads"]}
    assert {f"source {s}" for s in load("study.yaml")["sources"]} <= set(what)
    assert what["baseline arm pythia-410m-matched"]["revision"] == "step10000"
    assert what["lm-eval task mmlu"]["repo"] == "cais/mmlu"
    assert "benchmark MBPP" in what


def test_demo_downloads_nothing_and_markdown_reads(tmp_path):
    config = load("config.yaml")
    written = plan.write_plan(config, tmp_path / "plan.md", tmp_path / "plan.json")
    assert written["downloads"] == []
    md = (tmp_path / "plan.md").read_text()
    assert f"parameters: **{compute.parameter_count(config['model']):,}**" in md
    assert "Nothing: every input is generated" in md
    for component in config["mix"]["components"]:
        assert f"| {component} |" in md
    # Changing a budget changes the plan: it is computed, not stored.
    config["mix"]["components"]["wikipedia"]["tokens"] *= 3
    assert plan.build_plan(config)["mix"]["total_tokens"] > written["mix"]["total_tokens"]


def test_cli_prints_the_study_plan(capsys):
    assert plan.main(["--configfile", str(ROOT / "config/study.yaml")]) == 0
    out = capsys.readouterr().out
    assert "506,328,320" in out and "GPU-hours" in out


# ---- disk per stage


def small_config():
    """The demo config cut down to two mix components whose shard arithmetic is done by hand."""
    config = load("config.yaml")
    config["mix"]["context_length"] = 1024
    config["mix"]["sequences_per_shard"] = 5
    config["mix"]["components"] = {
        "web": {"source": "fineweb_edu", "curated": True, "tokens": 10_000},
        "code": {"source": "starcoderdata", "curated": True, "tokens": 2_500},
    }
    return config


def test_shards_are_arms_times_tokens_times_two_plus_headers(monkeypatch):
    monkeypatch.setattr(plan, "TOKENS_PER_DOCUMENT", 1000)
    config = small_config()
    # 12,500 budget tokens + 10 + 3 EOS = 12,513 -> 12 sequences of 1,024 (tail dropped) in 3 shards.
    assert plan.shard_layout(config) == {"sequences": 12, "shards": 3, "tokens": 12 * 1024}
    row = plan.disk_shards(config)
    assert row["bytes"] == 2 * (12 * 1024 * 2 + 3 * 16)  # two pretrained arms
    del config["arms"]["uncurated"]
    assert plan.disk_shards(config)["bytes"] == 12 * 1024 * 2 + 3 * 16


def test_checkpoints_scale_with_keep_checkpoints():
    config = load("study.yaml")
    one = plan.checkpoint_bytes(config)
    # bf16-mixed: fp32 weights plus AdamW's two fp32 moments, 12 bytes per parameter.
    assert one == 506_328_320 * 12
    # 20e9 tokens // 2,047 trained positions // micro-batch 4 = 2,442,598 iterations, / 16 = 152,662
    # optimizer steps: 152 save_interval checkpoints, besides final/.
    config["pretrain"]["keep_checkpoints"] = 2
    kept = plan.disk_checkpoints(config)["bytes"]
    assert plan.checkpoints_kept(config) == 3
    assert kept == 2 * 3 * one
    config["pretrain"]["keep_checkpoints"] = None
    assert plan.checkpoints_kept(config) == 153
    assert plan.disk_checkpoints(config)["bytes"] - kept == 2 * (152 - 2) * one
    del config["pretrain"]["keep_checkpoints"]  # missing: every checkpoint, as null
    assert plan.checkpoints_kept(config) == 153
    config["pretrain"]["keep_checkpoints"] = 500  # more than are saved
    assert plan.checkpoints_kept(config) == 153
    config["pretrain"]["precision"] = "bf16-true"
    assert plan.checkpoint_bytes(config) == 506_328_320 * 6


def test_models_follow_the_dtype_each_writer_saves():
    config = load("study.yaml")
    ours = 506_328_320 * 4  # convert keeps bf16-mixed's fp32 weights; SFT/DPO save float32
    assert [plan.model_bytes(config, "curated", s) for s in ("base", "sft", "dpo")] == [ours] * 3
    pythia = PYTHIA_ARCHITECTURES["EleutherAI/pythia-410m-deduped"]["parameters"]
    assert plan.model_bytes(config, "pythia-410m-final", "base") == pythia * 2  # float16 from the hub
    assert plan.model_bytes(config, "pythia-410m-final", "dpo") == pythia * 4
    config["evaluate"]["stages"] = ["base", "sft"]
    expected = sum(plan.model_bytes(config, a, s) for a in config["arms"] for s in ("base", "sft"))
    assert plan.disk_models(config)["bytes"] == expected


def test_source_sizes_follow_the_budgets_and_the_curation_pool():
    sizes = {r["source"]: r for r in plan.source_sizes(load("study.yaml"))}
    # FineWeb-Edu: STEM-core targets 12% + 10% + 8% = 30% of the 4.3B curated budget, ~5% of the crawl.
    assert sizes["fineweb_edu"]["tokens"] == 6 * 4_300_000_000
    assert sizes["starcoderdata"]["tokens"] == 4 * 3_900_000_000  # 1 / CURATED_KEEP_FRACTION
    assert sizes["finemath"]["tokens"] == 3_200_000_000
    assert "upper bound" in sizes["ultrachat"]["basis"]
    assert sizes["finemath"]["documents"] == 3_200_000_000 // plan.TOKENS_PER_DOCUMENT
    demo = {r["source"]: r for r in plan.source_sizes(load("config.yaml"))}
    assert demo["fineweb_edu"]["documents"] == 1400  # demo_docs


def test_per_document_bytes_match_what_the_stages_write():
    from trellis.core.io import doc_id
    from trellis.curate.signatures import SIGNATURE_DTYPE

    config = load("study.yaml")
    assert plan._id_bytes("fineweb_edu") == len(doc_id("fineweb_edu", "k", "text")) + 4
    # id (32 + 4) + 17 topic float32 + list offset + complexity float32
    assert plan.score_row_bytes(config, "fineweb_edu") == 36 + 17 * 4 + 4 + 4
    # id (34 + 4) + compression ratio float64 + two float32 + 9 class probabilities + offset + class
    assert plan.score_row_bytes(config, "starcoderdata") == 38 + 8 + 4 + 4 + 9 * 4 + 4 + 1
    assert plan.SIGNATURE_VALUE_BYTES == SIGNATURE_DTYPE().itemsize
    sizes = plan.source_sizes(config)
    web = next(r for r in sizes if r["source"] == "fineweb_edu")
    code = next(r for r in sizes if r["source"] == "starcoderdata")
    assert plan.disk_minhash(config, sizes)["bytes"] == (web["documents"] + code["documents"]) * (128 * 4 + 8)


def test_study_disk_has_every_stage_and_the_total_is_their_sum():
    p = plan.build_plan(load("study.yaml"))
    rows = p["disk"]["stages"]
    stages = {r["stage"] for r in rows}
    assert stages == {
        "downloads",
        "raw",
        "scores",
        "minhash",
        "curation",
        "tokens",
        "shards",
        "checkpoints",
        "models",
    }
    assert all(r["bytes"] > 0 and r["basis"] for r in rows)
    assert p["disk"]["total_bytes"] == sum(r["bytes"] for r in rows)
    md = plan.to_markdown(p)
    assert "## Disk" in md
    for r in rows:
        assert f"| {r['stage']} | " in md and plan.human_bytes(r["bytes"]) in md
    assert plan.human_bytes(p["disk"]["total_bytes"]) in md
    # The demo has no baselines and writes no hub snapshots.
    demo = plan.build_plan(load("config.yaml"))["disk"]["stages"]
    assert "Pythia snapshots" not in " ".join(r["what"] for r in demo)


def test_human_bytes():
    assert plan.human_bytes(512) == "512 B"
    assert plan.human_bytes(506_328_320 * 12) == "5.66 GiB"
    assert plan.human_bytes(150 * 2**30) == "150 GiB"
    assert plan.human_bytes(1.5 * 2**40) == "1.50 TiB"


# ---- costs beside the seeds' table


def test_labeling_cost_is_requests_times_tokens_times_batch_prices(monkeypatch):
    from trellis.labels import prompt_tokens

    config = load("study.yaml")
    config["labels"]["sample"] = {"web": 1000, "code": 500}
    monkeypatch.setattr(
        prompt_tokens, "task_tokens", lambda b, e=None: {"overhead": 100, "answer": 10, "tokenizer": "t"}
    )
    rows = {r["task"]: r for r in plan.labeling_cost(config)}
    assert set(rows) == {
        "topic",
        "complexity",
        "code_quality",
        "structured_relevance",
        "content_type",
        "topic (pes2o subject check)",
    }
    # web: 1,000 × (100 + 1,000) × $1.25/M + 1,000 × 10 × $5/M = $1.375 + $0.05
    assert rows["topic"]["usd"] == pytest.approx(1.425)
    assert rows["content_type"]["usd"] == pytest.approx(0.7125)  # 500 code documents
    # peS2o's subject check: curation.subject_check.sample_docs (2,000) topic requests of its own
    assert rows["topic (pes2o subject check)"]["usd"] == pytest.approx(2.85)
    # max_text_chars 2,100 cuts a document to 2,100 / 4.2 = 500 tokens
    config["labels"]["request"]["max_text_chars"] = 2100
    assert plan.labeling_cost(config)[0]["input_tokens"] == 1000 * (100 + 500)
    row = next(r for r in plan.costs(config)["rows"] if r["what"] == "labeling")
    assert row["usd"] == pytest.approx(2 * (0.75 + 0.05) + 3 * (0.375 + 0.025) + (1.5 + 0.1))


def test_prompt_token_counts_come_from_the_real_prompts():
    from trellis.core.tasks import build_tasks
    from trellis.labels import prompt_tokens
    from trellis.labels.prompts import PromptBuilder

    config = load("study.yaml")
    labels = config["labels"]
    builders = {
        name: PromptBuilder(task, labels, int(labels["request"]["max_text_chars"]))
        for name, task in build_tasks(config).items()
    }

    class Words:  # a stand-in tokenizer: one token a whitespace-separated word
        def encode(self, text):
            return text.split()

    b = builders["topic"]
    words = sum(len(m["content"].split()) for m in b.messages({"text": "", "path": "p", "language": "l"}))
    schema = len(__import__("json").dumps(b.schema, separators=(",", ":")).split())
    assert prompt_tokens.request_overhead(b, Words()) == words + 2 * 3 + 3 + schema
    # The recorded o200k counts belong to today's templates: a template edit must re-record them.
    for name, b in builders.items():
        assert prompt_tokens.RECORDED[name][0] == b.prompt_hash, name
    encoding = prompt_tokens.o200k_encoding()
    if encoding is None:
        pytest.skip("o200k_base not on this machine (pip install bpe-openai): live count not checked")
    for name, b in builders.items():
        counted = prompt_tokens.task_tokens(b, encoding)
        assert (counted["overhead"], counted["answer"]) == prompt_tokens.RECORDED[name][1:], name


def test_scoring_and_evaluation_hours_by_hand():
    config = load("study.yaml")
    sizes = [{"source": "fineweb_edu", "documents": 1000}, {"source": "wikipedia", "documents": 9}]
    # 1,000 documents × 512 tokens (max_length) × 2 tasks / 150,000 tokens/s
    assert plan.scoring_hours(config, sizes) == {
        "fineweb_edu": pytest.approx(1000 * 512 * 2 / 150_000 / 3600)
    }
    config["evaluate"] = {
        "stages": ["base"],
        "json_schema": {"examples": 16, "max_new_tokens": 100},  # 2 batches of 8 × 100 steps
        "harness": {"tasks": {}, "demo_tasks": None, "batch_size": 16},
    }
    assert plan.evaluation_hours(config, "curated") == pytest.approx(200 * 0.03 / 3600)
    config["evaluate"]["harness"]["tasks"] = {"arc_easy": 0}
    forward = 2 * compute.matmul_parameters(config["model"]) * 2376 * 4 * 50
    assert plan.evaluation_hours(config, "curated") == pytest.approx((6 + forward / (312e12 * 0.2)) / 3600)


def test_study_costs_rows_and_totals():
    config = load("study.yaml")
    p = plan.build_plan(config)
    rows = p["costs"]["rows"]
    assert {r["what"] for r in rows} == set(plan.SEEDS_COSTS)
    pre = {r["scope"]: r for r in rows if r["what"] == "pretraining"}
    assert set(pre) == {"curated", "uncurated"}  # baselines are pretrained elsewhere
    # 6.81e19 FLOPs / (312 TFLOP/s × 45%) = 134.8 A100-hours, × $1.64
    assert pre["curated"]["gpu_hours"] == pytest.approx(134.77, rel=1e-3)
    assert pre["curated"]["usd"] == pytest.approx(134.77 * 1.64, rel=1e-3)
    post = {r["scope"]: r for r in rows if r["what"] == "post-training"}
    assert len(post) == len(config["arms"])
    arm = next(r for r in p["compute"] if r["arm"] == "curated")
    assert post["curated"]["gpu_hours"] == pytest.approx(
        (arm["sft_flops"] + arm["dpo_flops"]) / (312e12 * 0.45) / 3600
    )
    # SFT: 40,000 examples × 2 epochs × 2,048 tokens
    assert arm["sft_flops"] == pytest.approx(
        40_000 * 2 * 2048 * compute.training_flops_per_token(p["model"]["matmul_parameters"], 24, 1280, 2048)
    )
    assert sum(1 for r in rows if r["what"] == "evaluation") == len(config["arms"])
    assert p["costs"]["total_usd"] == pytest.approx(sum(r["usd"] for r in rows))
    md = plan.to_markdown(p)
    assert "## Costs beside the seeds' estimates" in md and "~430 A100-h" in md


def test_the_study_plan_shows_the_batch_schedule_through_the_queue():
    config = load("study.yaml")
    config["labels"]["batch"]["enqueued_token_limit"] = 50_000_000
    p = plan.build_plan(config)
    schedule = p["labeling"]["schedule"]
    assert [r["task"] for r in schedule["tasks"]][-1] == "topic (pes2o subject check)"
    # Every batch fits the limit, and the waves hold every batch's tokens.
    for r in schedule["tasks"]:
        assert r["enqueued_prompt_tokens"] / r["batches"] <= 50_000_000
    assert schedule["queue_waves"] * 50_000_000 >= schedule["total_enqueued_prompt_tokens"]
    md = plan.to_markdown(p)
    assert "enqueued-token limit of 50M" in md and f"{schedule['queue_waves']} wave(s)" in md
    assert "schedule" not in plan.build_plan(load("config.yaml"))["labeling"]  # offline: no batches


def test_each_bfcl_mode_is_a_generation_pass_of_its_own():
    config = load("study.yaml")
    config["evaluate"] = {
        "stages": ["base"],
        "bfcl": {"categories": ["simple", "simple_java"], "modes": ["prompt"], "max_new_tokens": 10},
        "harness": {"tasks": {}, "demo_tasks": None, "batch_size": 16},
    }
    # prompt: 400 + 100 examples in batches of 8 = 63 batches × 10 steps × 30 ms
    assert plan.evaluation_hours(config, "curated") == pytest.approx(630 * 0.03 / 3600)
    config["evaluate"]["bfcl"]["modes"] = ["prompt", "json"]  # json asks simple again, not Java
    assert plan.evaluation_hours(config, "curated") == pytest.approx((630 + 500) * 0.03 / 3600)


def test_bfcl_multi_turn_costs_a_generation_per_model_step():
    config = load("study.yaml")
    config["evaluate"] = {
        "stages": ["base"],
        "bfcl": {"categories": ["multi_turn_base"], "modes": ["prompt"], "max_new_tokens": 10},
        "harness": {"tasks": {}, "demo_tasks": None, "batch_size": 16},
    }
    # 200 entries, 1,876 model steps (turns + the ground truth's calls) in batches of 8:
    # 235 batches × 10 steps × 30 ms, not the 25 batches of one prompt an entry.
    assert plan.BFCL_MULTI_TURN_STEPS["multi_turn_base"] == 1876
    assert plan.evaluation_hours(config, "curated") == pytest.approx(235 * 10 * 0.03 / 3600)
    # The JSON mode does not run multi-turn: prompt mode 400 + 1,876 generations, json 400.
    config["evaluate"]["bfcl"]["categories"] = ["multi_turn_base", "simple"]
    config["evaluate"]["bfcl"]["modes"] = ["prompt", "json"]
    assert plan.evaluation_hours(config, "curated") == pytest.approx((285 + 50) * 10 * 0.03 / 3600)
