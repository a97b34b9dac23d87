"""The GPU-figure probes (perf/probe_*.py) and perf/gpu_figures.sh, run here on the demo's tiny shapes.

The probes are meant to be run once, on a GPU, by someone who then copies their figures into the
README; a wrong count would go unnoticed there. So each probe runs here on CPU (a step or two) and
its figures are checked against counts made independently: tokens from the data and the padding
the code really did, model FLOPs from the parameters of the model the probe built (not from
trellis.train.compute, which the probes use), MFU from those. gpu_figures.sh is checked for its
syntax and for arguments every probe accepts.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[2]
DEMO = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
STUDY = yaml.safe_load((ROOT / "config" / "study.yaml").read_text())
PROBES = ("probe_throughput", "probe_classifier", "probe_posttrain")
PEAK = 1e12  # --peak-tflops 1: an MFU on CPU too, to check its arithmetic


def load_probe(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "perf" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def model_flops(matmul_weights: int, layers: int, width: int, n: int) -> float:
    """Training FLOPs of one sequence of n tokens, PaLM's count: n·(6·N + 12·L·width·n)."""
    return n * (6.0 * matmul_weights + 12.0 * layers * width * n)


# ------------------------------------------------------------------------------- pretraining


@pytest.fixture(scope="module")
def pretrain_rows(tmp_path_factory):
    pytest.importorskip("litgpt")
    probe = load_probe("probe_throughput")
    out = tmp_path_factory.mktemp("probe-pretrain") / "pretrain.json"
    args = ["--steps", "1", "--warmup", "1", "--micro-batch", "4", "--peak-tflops", "1"]
    rows = probe.main([*args, "--out", str(out)])
    assert json.loads(out.read_text()) == rows
    return rows


def test_pretrain_probe_counts_tokens_and_model_flops(pretrain_rows):
    from litgpt import GPT

    from trellis.train.pretrain import litgpt_config

    (row,) = pretrain_rows
    context = int(DEMO["mix"]["context_length"])
    accumulation = int(DEMO["pretrain"]["global_batch_size"]) // 4
    assert row["probe"] == "pretrain" and row["gradient_accumulation"] == accumulation == 2
    assert row["tokens"] == 1 * accumulation * 4 * (context - 1)  # each sequence trains context - 1 positions
    assert row["tokens_per_sec"] > 0
    assert math.isclose(row["tokens_per_sec"], row["tokens"] / row["seconds"])

    # Model FLOPs from the weights of the model itself: every matmul weight (not the input
    # embedding, not the norm gains) 6 FLOPs per token, plus the attention term at T = context - 1.
    with torch.device("meta"):
        model = GPT(litgpt_config(DEMO["model"], context, name="trellis-test"))
    matmul = sum(
        p.numel() for name, p in model.named_parameters() if name != "transformer.wte.weight" and p.ndim == 2
    )
    layers, width = int(DEMO["model"]["n_layer"]), int(DEMO["model"]["n_embd"])
    assert row["flops_per_token"] == model_flops(matmul, layers, width, context - 1) / (context - 1)
    assert math.isclose(row["mfu"], row["tokens_per_sec"] * row["flops_per_token"] / PEAK)


# ---------------------------------------------------------------------------------- scoring


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory):
    """The probe's rows, and (real tokens, padded positions) of every batch predict_logits ran."""
    import trellis.classifiers.model as classifier_model

    probe = load_probe("probe_classifier")
    batches = []
    pad_batch = classifier_model.pad_batch

    def recording(seqs, pad_id):
        ids, mask = pad_batch(seqs, pad_id)
        batches.append((int(mask.sum()), ids.numel()))
        return ids, mask

    out = tmp_path_factory.mktemp("probe-classifier") / "classifier.json"
    args = ["--window-rows", "40", "--windows", "2", "--warmup", "1", "--batch-size", "16", "--out", str(out)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(classifier_model, "pad_batch", recording)
        rows = probe.main(args)
    assert json.loads(out.read_text()) == rows
    return rows, batches


def test_classifier_probe_counts_real_and_padded_tokens(classifier_run):
    rows, batches = classifier_run
    (row,) = rows
    max_length = int(DEMO["classifiers"]["max_length"])
    assert row["probe"] == "classifier" and row["documents"] == 2 * 40 and row["max_length"] == max_length
    per_window = math.ceil(40 / 16)
    assert len(batches) == 3 * per_window
    timed = batches[per_window:]  # the warm-up window's batches come first
    real, padded = sum(r for r, _ in timed), sum(p for _, p in timed)
    assert row["tokens"] == real and row["tokens_per_sec"] > 0
    assert math.isclose(row["tokens_per_sec"], real / row["seconds"])
    assert math.isclose(row["padded_tokens_per_sec"], padded / row["seconds"])
    assert math.isclose(row["padding_share"], 1 - real / padded) and 0 <= row["padding_share"] < 1
    assert 3 <= row["mean_tokens"] <= max_length and 0 < row["truncated_share"] < 1


def test_classifier_probe_has_modernbert_base_shape():
    from transformers import AutoModelForSequenceClassification

    probe = load_probe("probe_classifier")
    config = probe.classifier_config(STUDY, int(STUDY["classifiers"]["max_length"]))
    assert (config.num_hidden_layers, config.hidden_size, config.intermediate_size) == (22, 768, 1152)
    assert config.num_labels == 17 and config.global_attn_every_n_layers == 3
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config)
    parameters = sum(p.numel() for p in model.parameters())
    assert 145e6 < parameters < 155e6  # ModernBERT-base: 149M


# ------------------------------------------------------------------------------ post-training


@pytest.fixture(scope="module")
def posttrain_run(tmp_path_factory):
    pytest.importorskip("trl")
    pytest.importorskip("litgpt")
    workdir = tmp_path_factory.mktemp("probe-posttrain")
    probe = load_probe("probe_posttrain")
    out = workdir / "posttrain.json"
    args = ["--batch-size", "4", "--steps", "2", "--warmup", "1", "--peak-tflops", "1"]
    rows = probe.main([*args, "--workdir", str(workdir), "--out", str(out)])
    assert json.loads(out.read_text()) == rows
    return workdir, {r["stage"]: r for r in rows}


def _timed_sequences(workdir: Path, stage: str, warmup: int, batch_size: int) -> list[list[int]]:
    """Token counts of each timed batch's sequences, from the data file in training order."""
    from trellis.core.io import read_jsonl
    from trellis.train.posttrain import training_order
    from trellis.train.posttrain_data import chat_tokenizer, conversation_tokens

    tokenizer = chat_tokenizer(workdir / "base")
    data = read_jsonl(workdir / "data" / f"{stage}-{batch_size}.jsonl")
    order = training_order(len(data), 1, int(DEMO["seed"]))
    keys = ("completion",) if stage == "sft" else ("chosen", "rejected")
    batches = []
    for start in range(warmup * batch_size, len(order), batch_size):
        rows = [data[i] for i in order[start : start + batch_size]]
        # DPO's collator stacks the chosen sequences, then the rejected ones, into one batch.
        batches.append([conversation_tokens(tokenizer, r["prompt"] + r[k]) for k in keys for r in rows])
    return batches


@pytest.mark.parametrize("stage", ["sft", "dpo"])
def test_posttrain_probe_counts_the_tokens_trl_trains(posttrain_run, stage):
    workdir, rows = posttrain_run
    row = rows[stage]
    pairs = 2 if stage == "dpo" else 1
    assert row["probe"] == "posttrain" and row["examples"] == 4 * 2
    assert row["sequences"] == 4 * 2 * pairs
    assert row["policy_forwards"] == 2  # one forward of the policy per optimizer step
    batches = _timed_sequences(workdir, stage, warmup=1, batch_size=4)
    assert len(batches) == 2
    lengths = [n for batch in batches for n in batch]
    assert row["tokens"] == sum(lengths) and row["max_tokens"] == max(lengths)
    # Each batch is padded to its longest sequence (no packing, no padding-free).
    assert row["padded_tokens"] == sum(len(batch) * max(batch) for batch in batches)
    assert row["padding_share"] == pytest.approx(1 - row["tokens"] / row["padded_tokens"])
    assert row["reference_tokens"] == (row["tokens"] if stage == "dpo" else 0)
    assert row["tokens_per_sec"] > 0
    assert math.isclose(row["tokens_per_sec"], row["tokens"] / row["seconds"])
    assert math.isclose(row["examples_per_sec"], 8 / row["seconds"])


@pytest.mark.parametrize("stage", ["sft", "dpo"])
def test_posttrain_probe_mfu_counts_model_flops_per_sequence(posttrain_run, stage):
    from transformers import AutoModelForCausalLM

    workdir, rows = posttrain_run
    row = rows[stage]
    model = AutoModelForCausalLM.from_pretrained(workdir / "base")
    cfg = model.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_key_value_heads) == (
        DEMO["model"]["n_layer"],
        DEMO["model"]["n_embd"],
        DEMO["model"]["n_query_groups"],
    )
    assert cfg.vocab_size == DEMO["model"]["padded_vocab_size"] and not cfg.tie_word_embeddings
    matmul = sum(
        p.numel() for name, p in model.named_parameters() if p.ndim == 2 and "embed_tokens" not in name
    )
    lengths = [n for batch in _timed_sequences(workdir, stage, warmup=1, batch_size=4) for n in batch]
    flops = sum(model_flops(matmul, cfg.num_hidden_layers, cfg.hidden_size, n) for n in lengths)
    if stage == "dpo":  # the frozen reference model's forward pass on the same sequences
        flops *= 4 / 3
    assert row["flops"] == pytest.approx(flops, rel=1e-12)
    assert row["mfu"] == pytest.approx(flops / row["seconds"] / PEAK, rel=1e-9)


def test_posttrain_meter_counts_the_attention_mask():
    probe = load_probe("probe_posttrain")
    ids = torch.zeros((3, 5), dtype=torch.long)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    lengths, padded = probe.sequence_lengths({"input_ids": ids, "attention_mask": mask})
    assert lengths.tolist() == [3, 5, 1] and padded == 15
    lengths, padded = probe.sequence_lengths({"input_ids": ids})
    assert lengths.tolist() == [5, 5, 5] and padded == 15


# ------------------------------------------------------------------------------ gpu_figures.sh


def _parts() -> list[tuple[str, int, list[str]]]:
    text = (ROOT / "perf" / "gpu_figures.sh").read_text()
    start = text.index("PARTS=(")
    parts = []
    for line in text[start : text.index("\n)\n", start)].splitlines()[1:]:
        name, cap, command = line.strip().strip('"').split("|")
        parts.append((name, int(cap), shlex.split(command)))
    return parts


def test_gpu_figures_script_parses_and_runs_every_probe():
    script = ROOT / "perf" / "gpu_figures.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    assert os.access(script, os.X_OK)
    text = script.read_text()
    for name in (*PROBES, "gpu_figures_table"):
        assert f"perf/{name}.py" in text and (ROOT / "perf" / f"{name}.py").is_file()
    parts = _parts()
    assert {command[0] for _, _, command in parts} == {f"perf/{name}.py" for name in PROBES}
    budget = int(re.search(r"BUDGET_S=\$\{BUDGET_S:-(\d+)\}", text).group(1))
    # The parts, the checks before them and the table after fit the device tool's 10-minute limit.
    assert budget + 60 <= 600 and all(cap <= budget for _, cap, _ in parts)


def test_gpu_figures_arguments_are_ones_the_probes_accept(tmp_path):
    probes = {name: load_probe(name) for name in PROBES}
    outs = []
    for name, _, command in _parts():
        argv = [a.replace("$CONFIG", "config/study.yaml").replace("$OUT", str(tmp_path)) for a in command[1:]]
        args = probes[Path(command[0]).stem].parse_args(argv)  # exits (SystemExit) on an unknown option
        assert args.configfile == Path("config/study.yaml")
        assert args.out == tmp_path / f"{name}.json"
        outs.append(args.out)
    # The device tool brings back 8 files at most: the parts' JSON, the log and the summary.
    assert len(set(outs)) == len(outs) and len(outs) + 2 <= 8


def test_gpu_figures_dry_run_lists_the_parts(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path / "out"), PYTHON=sys.executable)
    result = subprocess.run(
        ["bash", str(ROOT / "perf" / "gpu_figures.sh"), "--dry-run"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    lines = result.stdout.splitlines()
    assert [line.split(" ")[0] for line in lines] == [name for name, _, _ in _parts()]
    assert all("--configfile config/study.yaml" in line for line in lines)


def test_probe_lengths_are_the_documented_lognormal():
    probe = load_probe("probe_classifier")
    lengths = probe.document_lengths(20000, 512, 600.0, 1.0, np.random.default_rng(0))
    assert lengths.min() >= 3 and lengths.max() == 512
    assert 0.5 < (lengths == 512).mean() < 0.65  # P(lognormal(ln 600, 1) > 512) = 0.56


def test_gpu_figures_table_shows_every_row_and_the_goals(
    tmp_path, capsys, pretrain_rows, classifier_run, posttrain_run
):
    table = load_probe("gpu_figures_table")
    out = tmp_path / "out"
    out.mkdir()
    _, posttrain_rows = posttrain_run
    (out / "pretrain_eager.json").write_text(json.dumps(pretrain_rows))
    (out / "classifier.json").write_text(json.dumps(classifier_run[0]))
    (out / "posttrain.json").write_text(json.dumps(list(posttrain_rows.values())))
    (out / "pretrain_best.json").write_text('[{"probe": "pretrain", "cut')  # a run killed mid-write
    oom = dict(pretrain_rows[0], micro_batch_size=8, tokens_per_sec=None, mfu=None, error="OOM")
    (out / "pretrain_compiled.json").write_text(json.dumps([oom]))
    parts = [
        ("pretrain_eager", "ok", "70"),
        ("pretrain_compiled", "ok", "90"),
        ("classifier", "ok", "60"),
        ("posttrain", "timed out after 150s", "150"),
        ("pretrain_best", "failed (exit 1)", "3"),
    ]
    summary = table.main([str(out), *[a for part in parts for a in ("--part", *part)]])
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("GPU figures: ")
    body = {line.split()[0]: [] for line in printed[2:] if not line.startswith(("pretraining", "scoring"))}
    for line in printed[2:]:
        if line.split()[0] in body:
            body[line.split()[0]].append(line)
    assert {name: len(lines) for name, lines in body.items()} == {
        "pretrain_eager": 1,
        "pretrain_compiled": 1,
        "classifier": 1,
        "posttrain": 2,
        "pretrain_best": 1,
    }
    assert "OOM" in body["pretrain_compiled"][0]
    assert all("timed out after 150s" in line for line in body["posttrain"])
    assert "unreadable JSON" in body["pretrain_best"][0]
    assert f"{pretrain_rows[0]['tokens_per_sec']:,.0f}" in body["pretrain_eager"][0]
    goals = [line for line in printed if line.startswith(("pretraining goal", "scoring goal"))]
    assert len(goals) == 2 and "45% MFU" in goals[0] and "1M tokens/s" in goals[1]
    saved = json.loads((out / "gpu_figures.json").read_text())
    assert saved == summary and list(saved["parts"]) == [name for name, _, _ in parts]
    assert saved["parts"]["posttrain"]["rows"] == list(posttrain_rows.values())
    assert saved["config"] == "config/study.yaml" and saved["card"]
