"""Throughput probe: tokens/s and MFU of the pretraining step, per micro-batch / compile / checkpointing.

Runs the step pretraining runs (LitGPT's GPT from the config's ``model`` section, Fabric at the
config's precision, AdamW, gradient accumulation to the config's global batch, clipping) on
random token ids for a number of optimizer steps, after untimed warm-up steps (which absorb
torch.compile's compilation), and prints one row per setting. MFU counts model FLOPs
(trellis.train.compute: 6N + 12·L·H·Q·T per token; checkpointing's recomputation is not counted) against
the device's dense bf16 peak. The data pipeline is left out on purpose: TKDS sequences are
memory-mapped uint16 rows, a negligible cost next to a step of the model.

  # here (CPU): the demo's tiny model, a few steps, eager
  .venv/bin/python perf/probe_throughput.py
  # one GPU, the study's 506M model (model card shape), a few hundred steps per setting
  python perf/probe_throughput.py --configfile config/study.yaml --steps 300 --warmup 20 \
      --micro-batch 4 8 --compile off on --gradient-checkpointing on off --out probe.json

A setting that runs out of GPU memory is reported as OOM and the probe goes on.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from perf.probe_common import optional, save_rows, switch
from trellis.train import compute
from trellis.train.pretrain import enable_gradient_checkpointing, litgpt_config


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--configfile",
        type=Path,
        default=ROOT / "config" / "config.yaml",
        help="workflow config whose model, pretrain and mix.context_length are probed",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="timed optimizer steps per setting (default: 300 on a GPU, 5 on CPU)",
    )
    parser.add_argument(
        "--warmup", type=int, default=None, help="untimed optimizer steps first (default: 20 GPU, 1 CPU)"
    )
    parser.add_argument(
        "--micro-batch", type=int, nargs="+", default=None, help="micro-batch sizes (default: the config's)"
    )
    parser.add_argument(
        "--compile",
        type=switch,
        nargs="+",
        default=None,
        help="torch.compile on/off (default: off on, or off on CPU)",
    )
    parser.add_argument(
        "--gradient-checkpointing",
        type=switch,
        nargs="+",
        default=None,
        help="activation checkpointing on/off (default: the config's)",
    )
    parser.add_argument(
        "--precision", default=None, help="Fabric precision (default: the config's; 32-true on CPU)"
    )
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="device peak for MFU (default: looked up from the GPU's name; none on CPU)",
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")
    return parser.parse_args(argv)


def probe_one(
    fabric,
    model_section: dict,
    context: int,
    micro: int,
    global_batch: int,
    compiled: bool,
    checkpointing: bool,
    steps: int,
    warmup: int,
    pretrain: dict,
) -> dict:
    """Time ``steps`` optimizer steps of one setting; returns tokens/s and peak memory."""
    from litgpt.model import GPT
    from litgpt.utils import chunked_cross_entropy

    torch.manual_seed(0)
    with fabric.init_module():
        model = GPT(litgpt_config(model_section, context, name="trellis-probe"))
    model.max_seq_length = context - 1
    if checkpointing:
        enable_gradient_checkpointing(model)
    if compiled:
        model = torch.compile(model)
    model = fabric.setup(model)
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=float(pretrain["learning_rate"]),
        weight_decay=float(pretrain["weight_decay"]),
        betas=(float(pretrain["beta1"]), float(pretrain["beta2"])),
        fused=fabric.device.type == "cuda",
    )
    optimizer = fabric.setup_optimizers(optimizer)
    accumulation = max(1, global_batch // micro)
    vocab = int(model_section["padded_vocab_size"])
    batches = torch.randint(0, vocab, (accumulation, micro, context), device=fabric.device)

    def step() -> None:
        for k in range(accumulation):
            x = batches[k]
            with fabric.no_backward_sync(model, enabled=k < accumulation - 1):
                loss = chunked_cross_entropy(model(x[:, :-1]), x[:, 1:])
                fabric.backward(loss / accumulation)
        fabric.clip_gradients(model, optimizer, max_norm=float(pretrain["max_norm"]))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def sync() -> None:
        if fabric.device.type == "cuda":
            torch.cuda.synchronize()

    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    sync()
    warmup_s = time.perf_counter() - t0
    if fabric.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    seconds = time.perf_counter() - t0
    tokens = steps * accumulation * micro * (context - 1)
    memory = torch.cuda.max_memory_allocated() / 2**30 if fabric.device.type == "cuda" else None
    return {
        "tokens_per_sec": tokens / seconds,
        "seconds": seconds,
        "warmup_seconds": warmup_s,
        "tokens": tokens,
        "gradient_accumulation": accumulation,
        "peak_memory_gib": memory,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    import lightning as L

    args = parse_args(argv)
    config = yaml.safe_load(args.configfile.read_text())
    model_section, pretrain = config["model"], config["pretrain"]
    context = int(config["mix"]["context_length"])
    gpu = torch.cuda.is_available()
    precision = args.precision or (pretrain["precision"] if gpu else "32-true")
    steps = args.steps or (300 if gpu else 5)
    warmup = args.warmup if args.warmup is not None else (20 if gpu else 1)
    micros = args.micro_batch or [int(pretrain["micro_batch_size"])]
    compiles = args.compile or ([False, True] if gpu else [False])
    checkpointing = args.gradient_checkpointing or [bool(pretrain["gradient_checkpointing"])]

    fabric = L.Fabric(accelerator="cuda" if gpu else "cpu", devices=1, precision=precision)
    device = torch.cuda.get_device_name() if gpu else "CPU"
    if args.peak_tflops:
        peak = args.peak_tflops * 1e12
    else:
        try:
            peak = compute.peak_flops(device) if gpu else None
        except KeyError as err:
            print(f"no MFU: {err}", file=sys.stderr)
            peak = None
    flops_per_token = compute.model_flops_per_token(model_section, context - 1)
    print(
        f"device: {device}; precision {precision}; {compute.parameter_count(model_section):,} parameters; "
        f"{flops_per_token / 1e9:.3f} GFLOPs per token; peak {peak / 1e12 if peak else float('nan'):.1f} "
        "TFLOP/s; "
        f"global batch {pretrain['global_batch_size']} x {context - 1} positions; {steps} timed steps"
    )
    print(
        f"{'micro':>5} {'compile':>7} {'ckpt':>5} {'tokens/s':>12} {'MFU':>7} {'mem GiB':>8} {'warmup s':>9}"
    )
    rows = []
    for micro, compiled, ckpt in itertools.product(micros, compiles, checkpointing):
        row = {
            "probe": "pretrain",
            "device": device,
            "precision": precision,
            "micro_batch_size": micro,
            "compile": compiled,
            "gradient_checkpointing": ckpt,
            "steps": steps,
            "flops_per_token": flops_per_token,
            "peak_flops": peak,
        }
        try:
            row |= probe_one(
                fabric,
                model_section,
                context,
                micro,
                int(pretrain["global_batch_size"]),
                compiled,
                ckpt,
                steps,
                warmup,
                pretrain,
            )
            row["mfu"] = compute.mfu(row["tokens_per_sec"], flops_per_token, peak) if peak else None
        except torch.cuda.OutOfMemoryError:
            row |= {"tokens_per_sec": None, "mfu": None, "error": "OOM"}
        finally:
            torch._dynamo.reset()
            if gpu:
                torch.cuda.empty_cache()
        rows.append(row)
        rate = f"{row['tokens_per_sec']:12,.0f}" if row["tokens_per_sec"] else f"{'OOM':>12}"
        mfu = optional(row.get("mfu"), "7.1%", 7)
        mem = optional(row.get("peak_memory_gib"), "8.1f", 8)
        warm = f"{row['warmup_seconds']:9.1f}" if "warmup_seconds" in row else f"{'':>9}"
        print(
            f"{micro:>5} {'on' if compiled else 'off':>7} {'on' if ckpt else 'off':>5} {rate} {mfu} {mem} "
            f"{warm}",
            flush=True,
        )
        save_rows(args.out, rows)  # a run cut short keeps the rows it finished
    return rows


if __name__ == "__main__":
    main()
