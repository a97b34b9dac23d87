"""Post-training probe: tokens/s, MFU and peak memory of the SFT and DPO steps as trellis runs them.

Runs the post-training code itself: ``trellis.train.posttrain.run_sft`` and ``run_dpo`` (TRL's
SFTTrainer and DPOTrainer, full fine-tune, fp32 weights with bf16 mixed precision on CUDA, eager as
the workflow runs them, no packing, each batch padded to its longest sequence), for ``warmup`` +
``steps`` optimizer steps per setting, at the config's ``posttrain`` batch size, ``max_length`` and
gradient checkpointing. Nothing is re-implemented: the probe only adds a trainer callback that
times the steps after warm-up (wall time from the end of the last warm-up step to the end of the
last step, data loading and per-step logging included, CUDA synchronized) and a forward pre-hook
on the policy (and, for DPO, the frozen reference model) that counts the sequences each step
runs: real tokens (attention mask) and padded positions.

No download: the model has the config's ``model`` shape with random weights, made the way the
workflow makes it (a LitGPT checkpoint converted by ``trellis.train.convert.convert_to_hf``). The
data are the project's generated examples (``trellis.structured.examples``: the generated share of
the study's post-training data) unless ``--data-dir`` names a directory holding ``sft.jsonl`` and
``dpo.jsonl`` (e.g. ``results/study/posttrain``); the tokenizer is a byte-level BPE trained on
the data (``trellis.tokens.tokenizer.train_bpe``, the demo's kind, at the config's vocabulary
size) unless ``--tokenizer`` names one (e.g. the study's GPT-NeoX tokenizer directory). Token
counts, and so tokens/s per example, depend on both; the probe prints the mean sequence length.

tokens/s counts real tokens through the policy (DPO: chosen and rejected sequences, each with its
prompt). MFU counts model FLOPs as trellis.train.compute does, sequence by sequence: a sequence of
``n`` real tokens costs ``n·(6·N + 12·L·H·Q·n)`` to train, and DPO adds the reference model's
forward pass, a third of that; padding and checkpointing's recomputation are not counted.

  # here (CPU): the demo's tiny model, a couple of steps per stage
  .venv/bin/python perf/probe_posttrain.py
  # one GPU, the study's 506M model, batch 32, max_length 2048, gradient checkpointing
  python perf/probe_posttrain.py --configfile config/study.yaml --out posttrain.json

A setting that runs out of GPU memory is reported as OOM and the probe goes on.
"""

from __future__ import annotations

import argparse
import gc
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from perf.probe_common import optional, save_rows, switch
from trellis.core.io import read_jsonl, write_jsonl
from trellis.train import compute, posttrain

STAGES = ("sft", "dpo")
ANSWER_KEYS = {"sft": ("completion",), "dpo": ("chosen", "rejected")}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--configfile",
        type=Path,
        default=ROOT / "config" / "config.yaml",
        help="workflow config whose model, tokenizer and posttrain sections are probed",
    )
    parser.add_argument("--stage", nargs="+", choices=STAGES, default=list(STAGES), help="stages to time")
    parser.add_argument(
        "--steps", type=int, default=None, help="timed optimizer steps per setting (default: 20 GPU, 2 CPU)"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="untimed optimizer steps first, at least 1 (default: 3 GPU, 1 CPU)",
    )
    parser.add_argument(
        "--batch-size", type=int, nargs="+", default=None, help="batch sizes (default: each stage's config)"
    )
    parser.add_argument(
        "--gradient-checkpointing",
        type=switch,
        nargs="+",
        default=None,
        help="on/off (default: each stage's config)",
    )
    parser.add_argument(
        "--max-length",
        type=int,
        default=None,
        help="tokens per sequence at most (default: posttrain.max_length)",
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="sft.jsonl and dpo.jsonl (default: generated)"
    )
    parser.add_argument(
        "--tokenizer", type=Path, default=None, help="tokenizer directory (default: a trained BPE)"
    )
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="device peak for MFU (default: looked up from the GPU's name; none on CPU)",
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="scratch directory (default: a temporary one)"
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    if args.warmup is not None and args.warmup < 1:
        parser.error("--warmup must be at least 1: timing starts at the end of the last warm-up step")
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be at least 1")
    return args


# ----------------------------------------------------------------------------------- the inputs


def conversation_text(messages: list[dict]) -> str:
    """A conversation as the chat template lays it out (role headers, contents), for the tokenizer."""
    return "".join(f"### {m['role'].title()}:\n{m['content']}\n\n" for m in messages)


def probe_rows(stage: str, n: int, seed: int, data_dir: Path | None) -> list[dict]:
    """``n`` rows of ``stage``: the data directory's (cycled if it holds fewer), or generated ones."""
    if data_dir is not None:
        rows = read_jsonl(data_dir / f"{stage}.jsonl")
    else:
        from trellis.structured.examples import build_dpo, build_sft

        rows = (build_sft if stage == "sft" else build_dpo)(max(n, 8), seed)
    if not rows:
        raise ValueError(f"no {stage} rows")
    return (rows * math.ceil(n / len(rows)))[:n]


def train_tokenizer(rows: list[dict], vocab_size: int, workdir: Path, seed: int) -> Path:
    """A byte-level BPE trained on the rows' conversations, as the demo trains its tokenizer."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from trellis.tokens.tokenizer import train_bpe

    texts = [conversation_text(r["prompt"] + r[k]) for r in rows for k in ("completion", "chosen") if k in r]
    part = workdir / "raw" / "posttrain" / "part-00000.parquet"
    part.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"text": texts}), part)
    out = workdir / "tokenizer"
    train_bpe([part], vocab_size, len(texts), out, seed)
    return out


def build_model(config: dict, tokenizer_dir: Path, workdir: Path, device: torch.device) -> Path:
    """An HF model directory of the config's model shape, random weights, via the workflow's convert."""
    from litgpt import GPT
    from litgpt.utils import save_config

    from trellis.train.convert import convert_to_hf
    from trellis.train.pretrain import litgpt_config

    lit = litgpt_config(config["model"], int(config["mix"]["context_length"]), name="trellis-probe")
    torch.manual_seed(0)
    with device:  # initialised where it is fast, saved from the CPU as pretraining saves it
        model = GPT(lit)
    ckpt = workdir / "lit"
    ckpt.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {k: v.cpu() for k, v in model.state_dict().items()}}, ckpt / "lit_model.pth")
    save_config(lit, ckpt)
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()  # the trainers start from an empty device
    out = workdir / "base"
    convert_to_hf(ckpt, tokenizer_dir, out)
    shutil.rmtree(ckpt)
    return out


# ---------------------------------------------------------------------------------- the meter


def sequence_lengths(kwargs: dict) -> tuple[torch.Tensor, int]:
    """Real tokens per row of a forward call's batch (a device tensor) and the padded positions."""
    input_ids = kwargs["input_ids"]
    mask = kwargs.get("attention_mask")
    if mask is None:  # no padding to mask out: every position is a token
        return torch.full(input_ids.shape[:1], input_ids.shape[1], device=input_ids.device), input_ids.numel()
    return mask.sum(dim=-1), input_ids.numel()


class StepMeter:
    """Times the optimizer steps after ``warmup`` and counts the sequences each step runs."""

    def __init__(self, warmup: int, cuda: bool):
        from transformers import TrainerCallback

        self.warmup, self.cuda = warmup, cuda
        self.steps: list[dict] = []  # per optimizer step: policy/reference lengths, padded positions
        self._policy: list[tuple[torch.Tensor, int]] = []
        self._reference: list[tuple[torch.Tensor, int]] = []
        self.t_begin = time.perf_counter()
        self.t0 = self.t1 = None
        meter = self

        class Callback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                meter.step_end(state.global_step)

        self.callback = Callback()

    def attach(self, trainer) -> None:
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # the per-step loss lines would bury the table
        trainer.add_callback(self.callback)
        self.handles = [trainer.model.register_forward_pre_hook(self._hook(self._policy), with_kwargs=True)]
        reference = getattr(trainer, "ref_model", None)
        if reference is not None:
            self.handles.append(
                reference.register_forward_pre_hook(self._hook(self._reference), with_kwargs=True)
            )

    @staticmethod
    def _hook(sink: list):
        def hook(module, args, kwargs):
            sink.append(sequence_lengths(kwargs))

        return hook

    def _sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def step_end(self, global_step: int) -> None:
        self._sync()
        now = time.perf_counter()

        def lengths(calls):
            return [int(n) for lens, _ in calls for n in lens.tolist()]

        self.steps.append(
            {
                "policy_forwards": len(self._policy),
                "lengths": lengths(self._policy),
                "padded": sum(p for _, p in self._policy),
                "reference_lengths": lengths(self._reference),
            }
        )
        self._policy.clear()
        self._reference.clear()
        if global_step == self.warmup:
            self.t0 = now
            if self.cuda:
                torch.cuda.reset_peak_memory_stats()
        self.t1 = now

    def detach(self) -> None:
        for handle in getattr(self, "handles", []):
            handle.remove()


def _timed(trainer_cls, meter: StepMeter):
    """``trainer_cls`` with the meter attached: run_sft/run_dpo build it as they build TRL's own."""

    class Timed(trainer_cls):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            meter.attach(self)

    Timed.__name__ = Timed.__qualname__ = trainer_cls.__name__
    return Timed


def step_flops(model_section: dict, lengths: list[int], stage: str) -> float:
    """Model FLOPs of the sequences one step trains (DPO: plus the reference model's forward)."""
    matmul, layers = compute.matmul_parameters(model_section), int(model_section["n_layer"])
    width = int(model_section["n_embd"])
    total = 0.0
    for n in lengths:
        per_token = compute.training_flops_per_token(matmul, layers, width, n)
        if stage == "dpo":
            per_token += compute.forward_flops_per_token(matmul, layers, width, n)
        total += n * per_token
    return total


# ----------------------------------------------------------------------------------- one setting


def probe_one(
    stage: str,
    model_dir: Path,
    rows: list[dict],
    config: dict,
    batch_size: int,
    checkpointing: bool,
    steps: int,
    warmup: int,
    max_length: int,
    workdir: Path,
    cuda: bool,
) -> dict:
    """Run ``stage`` through trellis for warmup + steps optimizer steps; returns the timed figures."""
    import trl

    n = batch_size * (warmup + steps)
    data = workdir / "data" / f"{stage}-{batch_size}.jsonl"
    write_jsonl(data, (rows * math.ceil(n / len(rows)))[:n])
    cfg = dict(config["posttrain"][stage], epochs=1, batch_size=batch_size)
    cfg["gradient_checkpointing"] = checkpointing
    out = workdir / "out" / stage
    seed = int(config["seed"])
    meter = StepMeter(warmup, cuda)
    name = "SFTTrainer" if stage == "sft" else "DPOTrainer"
    run = posttrain.run_sft if stage == "sft" else posttrain.run_dpo
    try:
        with mock.patch.object(trl, name, _timed(getattr(trl, name), meter)):
            run(model_dir, data, out, cfg, max_length=max_length, seed=seed)
    finally:
        meter.detach()
        shutil.rmtree(out, ignore_errors=True)
    if len(meter.steps) != warmup + steps or meter.t0 is None:
        raise RuntimeError(f"{stage}: the trainer ran {len(meter.steps)} steps, expected {warmup + steps}")
    timed = meter.steps[warmup:]
    lengths = [n for s in timed for n in s["lengths"]]
    tokens, padded = sum(lengths), sum(s["padded"] for s in timed)
    seconds = meter.t1 - meter.t0
    flops = sum(step_flops(config["model"], s["lengths"], stage) for s in timed)
    return {
        "seconds": seconds,
        "warmup_seconds": meter.t0 - meter.t_begin,  # trainer set-up, data preparation, warm-up steps
        "examples": batch_size * steps,
        "sequences": len(lengths),
        "policy_forwards": sum(s["policy_forwards"] for s in timed),
        "reference_tokens": sum(n for s in timed for n in s["reference_lengths"]),
        "tokens": tokens,
        "padded_tokens": padded,
        "padding_share": 1 - tokens / padded,
        "mean_tokens": tokens / len(lengths),
        "max_tokens": max(lengths),
        "tokens_per_sec": tokens / seconds,
        "padded_tokens_per_sec": padded / seconds,
        "examples_per_sec": batch_size * steps / seconds,
        "flops": flops,
        "flops_per_sec": flops / seconds,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    import datasets
    import transformers

    datasets.disable_progress_bars()  # per-call bars of tokenizing and saving would bury the table
    transformers.utils.logging.disable_progress_bar()
    config = yaml.safe_load(args.configfile.read_text())
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    steps = args.steps or (20 if cuda else 2)
    warmup = args.warmup or (3 if cuda else 1)
    max_length = args.max_length or int(config["posttrain"]["max_length"])
    seed = int(config["seed"])
    name = torch.cuda.get_device_name() if cuda else "CPU"
    precision = "bf16-mixed" if cuda and torch.cuda.is_bf16_supported() else "32-true"
    if args.peak_tflops:
        peak = args.peak_tflops * 1e12
    else:
        try:
            peak = compute.peak_flops(name) if cuda else None
        except KeyError as err:
            print(f"no MFU: {err}", file=sys.stderr)
            peak = None

    settings = []
    for stage in args.stage:
        section = config["posttrain"][stage]
        for batch_size in args.batch_size or [int(section["batch_size"])]:
            for ckpt in args.gradient_checkpointing or [bool(section.get("gradient_checkpointing", False))]:
                settings.append((stage, batch_size, ckpt))
    largest = max(b for _, b, _ in settings) * (warmup + steps)

    scratch = None
    if args.workdir is None:
        scratch = tempfile.TemporaryDirectory(prefix="probe-posttrain-")
        workdir = Path(scratch.name)
    else:
        workdir = args.workdir
        workdir.mkdir(parents=True, exist_ok=True)
    try:
        rows = {stage: probe_rows(stage, largest, seed, args.data_dir) for stage in args.stage}
        t0 = time.perf_counter()
        if args.tokenizer is None:
            tokenizer_dir = train_tokenizer(
                [r for stage_rows in rows.values() for r in stage_rows],
                int(config["tokenizer"]["vocab_size"]),
                workdir,
                seed,
            )
            tokenizer_name = "byte-level BPE trained on the probe's data"
        else:
            tokenizer_dir, tokenizer_name = args.tokenizer, str(args.tokenizer)
        model_dir = build_model(config, tokenizer_dir, workdir, device)
        setup_s = time.perf_counter() - t0
        from trellis.train.posttrain_data import chat_tokenizer, fit_to_length

        tokenizer = chat_tokenizer(model_dir)
        if len(tokenizer) > int(config["model"]["padded_vocab_size"]):
            raise ValueError(
                f"tokenizer has {len(tokenizer)} tokens, more than model.padded_vocab_size "
                f"{config['model']['padded_vocab_size']}"
            )
        for stage in args.stage:  # as build_posttrain_data fits rows: drop those longer than max_length
            rows[stage], dropped, _ = fit_to_length(rows[stage], tokenizer, max_length, ANSWER_KEYS[stage])
            if not rows[stage]:
                raise ValueError(f"every {stage} row is longer than max_length {max_length}")
            if dropped:
                print(f"{stage}: dropped rows longer than {max_length} tokens: {dropped}", file=sys.stderr)

        model = config["model"]
        print(
            f"device: {name}; precision {precision}; {compute.parameter_count(model):,} parameters "
            f"({model['n_layer']} layers, width {model['n_embd']}); tokenizer: {tokenizer_name} "
            f"({len(tokenizer):,} tokens); data: {args.data_dir or 'generated'}; max_length {max_length}; "
            f"peak {peak / 1e12 if peak else float('nan'):.1f} TFLOP/s; {steps} timed steps after "
            f"{warmup}; eager; set-up {setup_s:.1f} s"
        )
        print(
            f"{'stage':>5} {'batch':>5} {'ckpt':>5} {'tokens/s':>12} {'padded/s':>12} {'pad':>5} "
            f"{'mean len':>8} {'ex/s':>8} {'MFU':>7} {'mem GiB':>8} {'warmup s':>9}"
        )
        results = []
        for stage, batch_size, ckpt in settings:
            row = {
                "probe": "posttrain",
                "stage": stage,
                "device": name,
                "precision": precision,
                "batch_size": batch_size,
                "gradient_checkpointing": ckpt,
                "max_length": max_length,
                "steps": steps,
                "warmup": warmup,
                "compile": False,
                "tokenizer": tokenizer_name,
                "vocab_size": len(tokenizer),
                "data": str(args.data_dir) if args.data_dir else "generated",
                "peak_flops": peak,
            }
            try:
                row |= probe_one(
                    stage,
                    model_dir,
                    rows[stage],
                    config,
                    batch_size,
                    ckpt,
                    steps,
                    warmup,
                    max_length,
                    workdir,
                    cuda,
                )
                row["mfu"] = row["flops_per_sec"] / peak if peak else None
            except torch.cuda.OutOfMemoryError:
                row |= {"tokens_per_sec": None, "mfu": None, "peak_memory_gib": None, "error": "OOM"}
            finally:
                gc.collect()
                if cuda:
                    torch.cuda.empty_cache()
            results.append(row)
            head = f"{stage:>5} {batch_size:>5} {'on' if ckpt else 'off':>5}"
            if row["tokens_per_sec"]:
                mfu = optional(row["mfu"], "7.1%", 7)
                mem = optional(row["peak_memory_gib"], "8.1f", 8)
                print(
                    f"{head} {row['tokens_per_sec']:12,.0f} {row['padded_tokens_per_sec']:12,.0f} "
                    f"{row['padding_share']:5.0%} {row['mean_tokens']:8.0f} {row['examples_per_sec']:8.1f} "
                    f"{mfu} {mem} {row['warmup_seconds']:9.1f}",
                    flush=True,
                )
            else:
                print(f"{head} {'OOM':>12}", flush=True)
            save_rows(args.out, results)  # a run cut short keeps the rows it finished
    finally:
        if scratch is not None:
            scratch.cleanup()
    return results


if __name__ == "__main__":
    main()
