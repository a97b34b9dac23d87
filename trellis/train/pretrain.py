"""Pretraining with LitGPT: the model config, a data module over TKDS shards, and the run itself.

LitGPT's own pretrain loop (``litgpt.pretrain.setup``) does the training: Fabric (multi-GPU,
multi-node, precision), cosine schedule with warmup, gradient accumulation, clipping, periodic
checkpoints, resume and CSV logging. This module only supplies what LitGPT cannot know: the
LLaMA-style config from our ``model`` section, the data (TKDS shard directories), the mapping
from our ``pretrain`` section onto LitGPT's arguments, and two things LitGPT's loop has no switch
for: activation checkpointing (``_litgpt_gradient_checkpointing``) and starting one process per
GPU from inside a Snakemake job (``launch_command``: torchrun, or srun under SLURM). After the run,
its CSV logs are merged into one metrics.csv with tokens/s and MFU per logged step.

How a TKDS sequence maps onto LitGPT's inputs and targets
---------------------------------------------------------
LitGPT's loop slices every batch as ``input_ids = batch[:, :max_seq_length]`` and
``targets = batch[:, 1:max_seq_length + 1]``. A TKDS sequence holds ``context_length`` tokens, so
we run with ``train.max_seq_length = context_length - 1``: each sequence trains
``context_length - 1`` next-token positions (token t predicts token t+1, the last token is only a
target). The model's ``block_size`` is ``context_length`` (RoPE cache and the HF
``max_position_embeddings``), so inference may use the full context. ``max_tokens`` counts trained
positions (``iters × micro_batch × (context_length - 1)``), which is how LitGPT counts them.

What LitGPT writes under ``out_dir`` (checked against litgpt 0.5.13)
-------------------------------------------------------------------
- ``step-XXXXXXXX/lit_model.pth`` every ``save_interval`` optimizer steps: a Fabric checkpoint
  ``{"model", "optimizer", "train_dataloader", "iter_num", "step_count"}``, beside
  ``model_config.yaml``, ``hyperparameters.yaml`` and the tokenizer files. ``resume="auto"`` picks
  the highest step directory.
- ``final/lit_model.pth`` (same layout) after the last iteration.
- ``logs/csv/version_N/metrics.csv``: one CSV per process start (a resumed run adds a version).
  ``run_pretrain`` merges them into ``out_dir/metrics.csv``.
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import dataclasses
import functools
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import litgpt
import numpy as np
import torch
from litgpt.data import DataModule
from torch.utils.data import DataLoader, Dataset, DistributedSampler

import trellis
from trellis.train.compute import MODEL_KEYS, model_flops_per_token, parameter_count

log = logging.getLogger(__name__)

PRETRAIN_KEYS = (
    "max_tokens",
    "micro_batch_size",
    "global_batch_size",
    "learning_rate",
    "min_lr",
    "warmup_steps",
    "weight_decay",
    "beta1",
    "beta2",
    "max_norm",
    "precision",
    "devices",
    "num_nodes",
    "save_interval",
    "log_interval",
    "compile",
    "gradient_checkpointing",
)


def _require(section: dict, keys: tuple[str, ...], name: str) -> None:
    missing = [k for k in keys if k not in section]
    if missing:
        raise KeyError(f"config section {name!r} is missing key(s) {missing}")


# --------------------------------------------------------------------------------------- model


def litgpt_config(model: dict, context_length: int, name: str) -> litgpt.Config:
    """The LLaMA-style LitGPT config for our ``model`` section and a TKDS context length.

    ``name`` must not start with a family LitGPT's HF converter special-cases (falcon, phi, qwen,
    gemma, olmo): the LLaMA weight mapping is chosen from ``mlp_class_name`` only for other names.
    """
    _require(model, MODEL_KEYS, "model")
    lowered = name.lower()
    if lowered.startswith(("falcon", "phi", "qwen", "qwq", "gemma", "olmo")):
        raise ValueError(f"model name {name!r} would select a non-LLaMA weight mapping in LitGPT")
    n_embd, n_head = int(model["n_embd"]), int(model["n_head"])
    if n_embd % n_head:
        raise ValueError(f"model.n_embd ({n_embd}) must be divisible by model.n_head ({n_head})")
    if n_head % int(model["n_query_groups"]):
        raise ValueError(f"model.n_head ({n_head}) must be divisible by model.n_query_groups")
    vocab = int(model["padded_vocab_size"])
    return litgpt.Config(
        name=name,
        block_size=int(context_length),
        n_layer=int(model["n_layer"]),
        n_embd=n_embd,
        n_head=n_head,
        n_query_groups=int(model["n_query_groups"]),
        intermediate_size=int(model["intermediate_size"]),
        # vocab_size == padded_vocab_size: the tokenizer is padded by config, not by LitGPT's
        # padding_multiple, so the HF config and the embedding matrix agree exactly.
        vocab_size=vocab,
        padded_vocab_size=vocab,
        padding_multiple=1,
        norm_class_name="RMSNorm",
        norm_eps=float(model["norm_eps"]),
        mlp_class_name="LLaMAMLP",
        rotary_percentage=1.0,
        rope_base=int(model["rope_base"]),
        parallel_residual=False,
        shared_attention_norm=False,
        bias=False,
        lm_head_bias=False,
    )


# ---------------------------------------------------------------------------------------- data


def _read_manifest(shard_dir: Path) -> dict:
    path = shard_dir / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no TKDS manifest (expected the output of the mix stage)")
    manifest = json.loads(path.read_text())
    for key in ("context_length", "vocab_size", "shards"):
        if key not in manifest:
            raise KeyError(f"{path}: manifest has no {key!r}")
    if not manifest["shards"]:
        raise ValueError(f"{path}: manifest lists no shards")
    for entry in manifest["shards"]:
        for key in ("file", "sequences"):
            if key not in entry:
                raise KeyError(f"{path}: shard entry {entry} has no {key!r}")
    return manifest


class TKDSDataset(Dataset):
    """Sequences ``[start, stop)`` of a shard directory, in manifest order, as int64 tensors.

    Shards are memory-mapped lazily (per process, so DataLoader workers open their own maps and
    nothing large is pickled); a sequence read touches only its own pages.
    """

    def __init__(self, shard_dir: Path, manifest: dict, start: int, stop: int, validate_tokens: bool = False):
        self.shard_dir = Path(shard_dir)
        self.files = [self.shard_dir / s["file"] for s in manifest["shards"]]
        self.counts = [int(s["sequences"]) for s in manifest["shards"]]
        self.offsets = np.cumsum([0] + self.counts).tolist()
        self.context_length = int(manifest["context_length"])
        self.vocab_size = int(manifest["vocab_size"])
        self.validate_tokens = validate_tokens
        if not 0 <= start <= stop <= self.offsets[-1]:
            raise ValueError(f"{shard_dir}: sequence range [{start}, {stop}) outside 0..{self.offsets[-1]}")
        self.start, self.stop = start, stop
        self._maps: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.stop - self.start

    def _shard(self, k: int) -> np.ndarray:
        if k not in self._maps:
            from trellis.tokens.tkds import read_shard

            _, data = read_shard(self.files[k], validate=self.validate_tokens)
            expected = (self.counts[k], self.context_length)
            if tuple(data.shape) != expected:
                raise ValueError(f"{self.files[k]}: holds {tuple(data.shape)} tokens, manifest says {expected}")
            self._maps[k] = data
        return self._maps[k]

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < len(self):
            raise IndexError(index)
        g = self.start + index
        k = bisect.bisect_right(self.offsets, g) - 1
        row = np.asarray(self._shard(k)[g - self.offsets[k]], dtype=np.int64)
        return torch.from_numpy(row)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_maps"] = {}  # memory maps are reopened in each worker
        return state


class ResumableSampler(DistributedSampler):
    """A DistributedSampler (rank-disjoint, seeded per epoch) that can skip what was consumed.

    Being a DistributedSampler also stops Fabric from wrapping it in its own sampler.
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, shuffle: bool, seed: int):
        # drop_last: DistributedSampler would otherwise pad ranks with repeated sequences, so two
        # ranks would train on the same sequence within one epoch.
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=True)
        self.skip = 0

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.skip :])


class ResumableDataLoader(DataLoader):
    """A DataLoader whose position (epoch, batches consumed) is saved in LitGPT's checkpoint.

    Fabric saves any object in the state dict that has ``state_dict``/``load_state_dict``, so a
    resumed run continues with the next unseen batch instead of replaying the epoch's start (a plain
    DataLoader would be pickled whole into the checkpoint and restart at batch 0).
    """

    def __init__(self, dataset: Dataset, sampler: ResumableSampler, **kwargs: Any):
        super().__init__(dataset, sampler=sampler, **kwargs)
        self._epoch = 0
        self._consumed = 0

    def __iter__(self):
        # Fabric sets the sampler's epoch to its own call count (which restarts at 0 on resume);
        # ours, restored from the checkpoint, wins because it is set last.
        self.sampler.set_epoch(self._epoch)
        self.sampler.skip = self._consumed * self.batch_size
        for batch in super().__iter__():
            self._consumed += 1
            yield batch
        self._epoch += 1
        self._consumed = 0

    def state_dict(self) -> dict:
        return {"epoch": self._epoch, "consumed_batches": self._consumed}

    def load_state_dict(self, state: dict) -> None:
        self._epoch = int(state["epoch"])
        self._consumed = int(state["consumed_batches"])


def _world() -> tuple[int, int]:
    """(world size, rank) from torch.distributed, which Fabric initializes before data setup."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size(), torch.distributed.get_rank()
    return 1, 0


class TKDSDataModule(DataModule):
    """LitGPT data module over a TKDS shard directory (``manifest.json`` + ``shard-*.tkds``).

    The validation slice is the last ``n_val`` sequences in manifest order (the mix already shuffled
    globally, so the tail is a random sample): ``ceil(val_fraction × total)`` clamped to at least
    one micro batch per rank and at most ``max_val_sequences``. Training uses everything before it.
    Both are split across ranks without overlap; training is reshuffled each epoch from ``seed``.
    """

    def __init__(
        self,
        shard_dir: str | Path,
        val_fraction: float = 0.01,
        max_val_sequences: int = 1024,
        seed: int = 42,
        num_workers: int = 0,
        validate_tokens: bool = False,
    ):
        super().__init__()
        self.shard_dir = Path(shard_dir)
        self.val_fraction = val_fraction
        self.max_val_sequences = max_val_sequences
        self.seed = seed
        self.num_workers = num_workers
        # The mix stage validated every token when it wrote the shards; rescanning 40 GB at each
        # (re)start of every rank buys nothing, so token validation is opt-in here.
        self.validate_tokens = validate_tokens
        self.manifest = _read_manifest(self.shard_dir)
        self.context_length = int(self.manifest["context_length"])
        self.total_sequences = sum(int(s["sequences"]) for s in self.manifest["shards"])
        self.batch_size = 1
        self.max_seq_length: int | None = None
        self.train_dataset: TKDSDataset | None = None
        self.val_dataset: TKDSDataset | None = None

    def init_args(self) -> dict[str, Any]:
        """The constructor arguments (LitGPT records them in hyperparameters.yaml)."""
        return {
            "shard_dir": str(self.shard_dir),
            "val_fraction": self.val_fraction,
            "max_val_sequences": self.max_val_sequences,
            "seed": self.seed,
            "num_workers": self.num_workers,
            "validate_tokens": self.validate_tokens,
        }

    def connect(self, tokenizer=None, batch_size: int = 1, max_seq_length: int | None = None, **kwargs) -> None:
        self.batch_size = batch_size
        # LitGPT passes the model's max_seq_length; each sequence must hold one more token (the
        # last target), so it can be at most context_length - 1.
        if max_seq_length is not None and max_seq_length > self.context_length - 1:
            raise ValueError(
                f"{self.shard_dir}: max_seq_length {max_seq_length} needs sequences of {max_seq_length + 1} tokens;"
                f" the shards hold {self.context_length} (set train.max_seq_length = context_length - 1)"
            )
        self.max_seq_length = max_seq_length

    def validation_size(self, world_size: int = 1) -> int:
        per_batch = self.batch_size * world_size
        n = math.ceil(self.val_fraction * self.total_sequences)
        n = max(per_batch, min(n, self.max_val_sequences))
        return math.ceil(n / per_batch) * per_batch  # whole batches on every rank

    def setup(self, stage: str = "") -> None:
        world, _ = _world()
        n_val = self.validation_size(world)
        n_train = self.total_sequences - n_val
        if n_train < self.batch_size * world:
            raise ValueError(
                f"{self.shard_dir}: {self.total_sequences} sequences leave {n_train} for training after "
                f"{n_val} held out; need at least one micro batch ({self.batch_size}) per rank ({world})"
            )
        self.train_dataset = TKDSDataset(self.shard_dir, self.manifest, 0, n_train, self.validate_tokens)
        self.val_dataset = TKDSDataset(
            self.shard_dir, self.manifest, n_train, self.total_sequences, self.validate_tokens
        )
        # Open every shard now (header, size and manifest checks are cheap) so a bad shard fails
        # before the model is built, not hours into the run when its first sequence is drawn.
        for k in range(len(self.manifest["shards"])):
            self.train_dataset._shard(k)

    def _loader(self, dataset: TKDSDataset, shuffle: bool) -> ResumableDataLoader:
        if dataset is None:
            raise RuntimeError("TKDSDataModule.setup() must run before the dataloaders are requested")
        world, rank = _world()
        sampler = ResumableSampler(dataset, num_replicas=world, rank=rank, shuffle=shuffle, seed=self.seed)
        return ResumableDataLoader(
            dataset,
            sampler,
            batch_size=self.batch_size,
            drop_last=True,  # fixed batch shapes (compiled graphs, exact token accounting)
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> ResumableDataLoader:
        return self._loader(self.train_dataset, shuffle=True)

    def val_dataloader(self) -> ResumableDataLoader:
        return self._loader(self.val_dataset, shuffle=False)

    def __repr__(self) -> str:
        return f"TKDSDataModule(shard_dir={str(self.shard_dir)!r}, sequences={self.total_sequences})"


# ------------------------------------------------------------------------------------- running


def final_checkpoint(out_dir: str | Path) -> Path:
    """The final LitGPT checkpoint file LitGPT writes at the end of pretraining."""
    return Path(out_dir) / "final" / "lit_model.pth"


def _checkpoint_complete(step_dir: Path) -> bool:
    # LitGPT's save_checkpoint writes lit_model.pth first and model_config.yaml last, so a step
    # directory without model_config.yaml is one a killed job was in the middle of writing.
    return (step_dir / "lit_model.pth").is_file() and (step_dir / "model_config.yaml").is_file()


def _discard_partial_checkpoints(out_dir: Path) -> list[Path]:
    """Move aside step directories a kill left half-written, so resume="auto" skips them."""
    moved = []
    for step_dir in sorted(out_dir.glob("step-*")):
        if step_dir.is_dir() and not _checkpoint_complete(step_dir):
            target = step_dir.with_name(f".partial-{step_dir.name}-{int(time.time())}")
            step_dir.rename(target)
            moved.append(target)
    return moved


def latest_step_checkpoint(out_dir: str | Path) -> Path | None:
    """The checkpoint LitGPT's resume="auto" would pick (highest complete step), or None."""
    steps = [d for d in Path(out_dir).glob("step-*") if d.is_dir() and _checkpoint_complete(d)]
    if not steps:
        return None
    return max(steps, key=lambda d: int(d.name.split("-")[1])) / "lit_model.pth"


def merge_metrics(
    out_dir: str | Path, flops_per_token: float | None = None, peak_flops: float | None = None, world_size: int = 1
) -> Path:
    """Merge LitGPT's per-start CSV logs into ``out_dir/metrics.csv`` (one row per logged step).

    Columns are LitGPT's (``iter``, ``loss``, ``tokens``, ``total_tokens``, ``learning_rate``,
    ``val_loss``, ...; ``step`` is Fabric's 0-based logging step, iter - 1) plus two of ours:

    - ``tokens_per_sec``: tokens trained (all ranks) per second of wall time since the previous
      logged row of the same process start, from LitGPT's ``time`` and ``total_tokens``. It
      includes the validation and checkpoint pauses in between: the rate the run really made.
      (LitGPT's own ThroughputMonitor averages over 5 logged rows and reports nothing before it
      has them, which leaves short runs without a figure.) The first row after a resume has no
      previous row in its process and stays blank.
    - ``mfu``: ``tokens_per_sec × flops_per_token / (peak_flops × world_size)`` (trellis.train.compute)
      when the device's peak is known (a GPU in trellis.train.compute.PEAK_BF16_FLOPS), else blank.

    A resumed run writes a new ``logs/csv/version_N``; its rows from the resume point on replace
    the earlier start's rows for the same step, so the merged file is the run as if never killed.
    """
    out_dir = Path(out_dir)
    versions = sorted(
        (out_dir / "logs" / "csv").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1])
    )
    if not versions:
        raise FileNotFoundError(f"{out_dir}/logs/csv: LitGPT wrote no metrics.csv")
    rows: dict[int, dict[str, str]] = {}
    columns: list[str] = []
    for k, path in enumerate(versions):
        # A fresh start (version 0; a changed run clears old logs) begins at time 0 with 0 tokens.
        previous = (0.0, 0) if k == 0 else None
        started: dict[int, dict[str, str]] = {}  # this start's rows (a step may log twice: train, val)
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                for c in row:
                    if c not in columns:
                        columns.append(c)
                row = {key: v for key, v in row.items() if v not in ("", None)}
                if "loss" in row:  # a training row (validation rows carry only val_loss)
                    now = (float(row["time"]), int(float(row["total_tokens"])))
                    if previous is not None and now[0] > previous[0]:
                        rate = (now[1] - previous[1]) / (now[0] - previous[0])
                        row["tokens_per_sec"] = f"{rate:.2f}"
                        if flops_per_token and peak_flops:
                            row["mfu"] = f"{rate * flops_per_token / (peak_flops * world_size):.4f}"
                    previous = now
                started.setdefault(int(row["step"]), {}).update(row)
        rows.update(started)  # a later start's rows replace what the killed one logged for those steps
    columns += [c for c in ("tokens_per_sec", "mfu") if c not in columns]
    target = out_dir / "metrics.csv"
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    with tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for step in sorted(rows):
            writer.writerow(rows[step])
    os.replace(tmp, target)
    return target


def _device_peak_flops() -> float | None:
    """The dense bf16 peak of the GPU training runs on, if trellis.train.compute knows it."""
    if not torch.cuda.is_available():
        return None
    from trellis.train.compute import peak_flops

    try:
        return peak_flops(torch.cuda.get_device_name())
    except KeyError as err:
        log.warning("no MFU in metrics.csv: %s", err)
        return None


def _reset_if_changed(out_dir: Path, fingerprint: dict) -> None:
    """Start from scratch when ``out_dir`` holds checkpoints of a different run.

    resume="auto" resumes from any step-* directory it finds. That is right after a kill, but wrong
    when Snakemake reruns the job because a parameter or the shards changed: the old checkpoints
    belong to another run. The fingerprint (everything that defines the run) tells them apart.
    """
    path = out_dir / "run_fingerprint.json"
    current = json.loads(json.dumps(fingerprint, sort_keys=True, default=str))
    if path.is_file() and json.loads(path.read_text()) == current:
        return
    stale = [p for p in out_dir.iterdir() if p.name.startswith(("step-", "final", "logs", ".partial-"))]
    if any(p.name.startswith("step-") for p in stale):
        why = "run definition changed since" if path.is_file() else "no run fingerprint beside"
        log.warning("%s: %s the existing checkpoints; discarding them, starting from step 0", out_dir, why)
    for p in stale:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


@contextlib.contextmanager
def _litgpt_argv(argv: list[str]):
    """Give LitGPT's save_hyperparameters a command line describing this run.

    LitGPT records hyperparameters by re-parsing ``sys.argv`` against ``setup``'s signature; under
    Snakemake or pytest sys.argv is theirs and would not parse. We hand it the equivalent
    ``litgpt pretrain`` command line, so hyperparameters.yaml records what actually ran.
    """
    saved = sys.argv
    sys.argv = argv
    try:
        yield
    finally:
        sys.argv = saved


def enable_gradient_checkpointing(model: torch.nn.Module) -> torch.nn.Module:
    """Recompute each transformer block's activations in backward instead of storing them.

    PyTorch's checkpoint wrapper (the one FSDP's activation_checkpointing_policy uses) around
    every LitGPT ``Block``; its state-dict hooks strip the wrapper's prefix, so checkpoints keep
    LitGPT's parameter names and conversion and resume are unaffected. Memory per layer drops to
    the block input; the price is one extra forward pass per step.
    """
    from litgpt.model import Block
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
        CheckpointImpl,
        apply_activation_checkpointing,
        checkpoint_wrapper,
    )

    wrapper = functools.partial(checkpoint_wrapper, checkpoint_impl=CheckpointImpl.NO_REENTRANT)
    apply_activation_checkpointing(model, checkpoint_wrapper_fn=wrapper, check_fn=lambda m: isinstance(m, Block))
    return model


@contextlib.contextmanager
def _litgpt_gradient_checkpointing(enabled: bool):
    """Turn on activation checkpointing inside LitGPT's pretrain loop, which has no switch for it.

    Single device: LitGPT builds the model with ``GPT(config)`` inside ``litgpt.pretrain.main``;
    we hand it a GPT whose blocks are wrapped (the meta-device copy LitGPT builds only to count
    FLOPs stays unwrapped, so its figure remains model FLOPs). Several devices: LitGPT builds an
    FSDPStrategy, whose own ``activation_checkpointing_policy`` does the same per block.
    """
    if not enabled:
        yield
        return
    import litgpt.pretrain as lp
    from litgpt.model import GPT, Block

    def checkpointed_gpt(config):
        model = GPT(config)
        if next(model.parameters()).device.type != "meta":  # FSDP's meta init is handled below
            enable_gradient_checkpointing(model)
        return model

    strategy = lp.FSDPStrategy

    class CheckpointedFSDPStrategy(strategy):  # a subclass: LitGPT isinstance-checks the strategy
        def __init__(self, *args, **kwargs):
            super().__init__(*args, activation_checkpointing_policy={Block}, **kwargs)

    lp.GPT, lp.FSDPStrategy = checkpointed_gpt, CheckpointedFSDPStrategy
    try:
        yield
    finally:
        lp.GPT, lp.FSDPStrategy = GPT, strategy


def _cli_args(prog: str, model_name: str, values: dict[str, Any]) -> list[str]:
    args = [prog, model_name]
    for key, value in values.items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value)
        args += [f"--{key}", str(value)]
    return args


@dataclasses.dataclass
class _Run:
    """Everything LitGPT's pretrain.setup is called with, derived from our config sections."""

    config: Any  # litgpt.Config
    data: TKDSDataModule
    train: Any  # litgpt.args.TrainArgs
    eval: Any  # litgpt.args.EvalArgs
    optimizer: dict
    precision: str
    devices: int
    num_nodes: int
    tokenizer_dir: Path
    out_dir: Path
    seed: int

    @property
    def world(self) -> int:
        return self.devices * self.num_nodes

    def fingerprint(self) -> dict:
        # What defines the run's results. compile and gradient_checkpointing change speed and
        # memory, not the numbers, so toggling them keeps a killed run resumable.
        return {
            "model": self.config.__dict__ | {"hf_config": {}},
            "train": vars(self.train),
            "optimizer": self.optimizer,
            "precision": self.precision,
            "devices": self.devices,
            "num_nodes": self.num_nodes,
            "seed": self.seed,
            "shards": self.data.manifest["shards"],
        }


def _plan(shard_dir, tokenizer_dir, out_dir, model: dict, pretrain: dict, seed: int, arm_name: str) -> _Run:
    """Check the inputs and map our sections onto LitGPT's arguments (no side effects)."""
    from litgpt.args import EvalArgs, TrainArgs

    _require(pretrain, PRETRAIN_KEYS, "pretrain")
    shard_dir, tokenizer_dir, out_dir = Path(shard_dir), Path(tokenizer_dir), Path(out_dir)
    if not (tokenizer_dir / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{tokenizer_dir}: no tokenizer.json (expected a Hugging Face tokenizer directory)")
    data = TKDSDataModule(shard_dir, seed=int(seed))
    ctx = data.context_length
    if int(data.manifest["vocab_size"]) > int(model["padded_vocab_size"]):
        raise ValueError(
            f"{shard_dir}/manifest.json: vocab_size {data.manifest['vocab_size']} exceeds "
            f"model.padded_vocab_size {model['padded_vocab_size']}"
        )
    config = litgpt_config(model, ctx, name=f"trellis-{arm_name}")

    devices, num_nodes = int(pretrain["devices"]), int(pretrain["num_nodes"])
    micro, global_bs = int(pretrain["micro_batch_size"]), int(pretrain["global_batch_size"])
    if global_bs % (micro * devices * num_nodes):
        raise ValueError(
            f"pretrain.global_batch_size ({global_bs}) must be a multiple of micro_batch_size × devices × "
            f"num_nodes ({micro} × {devices} × {num_nodes})"
        )
    save_interval = int(pretrain["save_interval"])
    train = TrainArgs(
        save_interval=save_interval,
        log_interval=int(pretrain["log_interval"]),
        global_batch_size=global_bs,
        micro_batch_size=micro,
        max_tokens=int(pretrain["max_tokens"]),
        lr_warmup_steps=int(pretrain["warmup_steps"]),
        max_norm=float(pretrain["max_norm"]),
        min_lr=float(pretrain["min_lr"]),
        max_seq_length=ctx - 1,  # see the module docstring: ctx tokens -> ctx-1 trained positions
        tie_embeddings=False,
    )
    # Validate as often as we checkpoint, over the whole held-out slice (capped, it is small).
    val_batches = data.max_val_sequences // micro
    eval_args = EvalArgs(
        interval=int(pretrain.get("eval_interval", save_interval)),
        max_iters=int(pretrain.get("eval_iters", max(1, min(100, val_batches)))),
        initial_validation=False,
        final_validation=True,
    )
    optimizer = {
        "class_path": "torch.optim.AdamW",
        "init_args": {
            "lr": float(pretrain["learning_rate"]),
            "weight_decay": float(pretrain["weight_decay"]),
            "betas": [float(pretrain["beta1"]), float(pretrain["beta2"])],
        },
    }
    return _Run(config, data, train, eval_args, optimizer, str(pretrain["precision"]), devices, num_nodes,
                tokenizer_dir, out_dir, int(seed))


def _train(run: _Run, compile_model: bool, gradient_checkpointing: bool) -> None:
    """One process's share of the run: LitGPT's pretrain loop (Fabric sets up the ranks)."""
    from litgpt import pretrain as litgpt_pretrain

    argv = _cli_args(
        "litgpt-pretrain",
        run.config.name,
        {
            "model_config": {f.name: getattr(run.config, f.name) for f in dataclasses.fields(run.config) if f.init},
            "data": {"class_path": f"{TKDSDataModule.__module__}.TKDSDataModule", "init_args": run.data.init_args()},
            "out_dir": str(run.out_dir),
            "precision": run.precision,
            "resume": "auto",
            "tokenizer_dir": str(run.tokenizer_dir),
            "logger_name": "csv",
            "seed": run.seed,
            "devices": run.devices,
            "num_nodes": run.num_nodes,
            "optimizer": run.optimizer,
            "train": {k: v for k, v in vars(run.train).items() if v is not None},
            "eval": {k: v for k, v in vars(run.eval).items() if v is not None},
        },
    )
    # LitGPT 0.5.13 always wraps the model in torch.compile. pretrain.compile: false turns Dynamo
    # off for the run, so the wrapper runs eagerly (CPU demo: no minutes of Inductor compilation).
    compile_ctx = contextlib.nullcontext() if compile_model else torch._dynamo.config.patch(disable=True)
    with _litgpt_argv(argv), compile_ctx, _litgpt_gradient_checkpointing(gradient_checkpointing):
        litgpt_pretrain.setup(
            model_name=run.config.name,
            model_config=run.config,
            out_dir=run.out_dir,
            precision=run.precision,
            resume="auto",  # a rerun after a kill continues from the last step-* checkpoint
            data=run.data,
            train=run.train,
            eval=run.eval,
            optimizer=run.optimizer,
            devices=run.devices,
            num_nodes=run.num_nodes,
            tokenizer_dir=run.tokenizer_dir,
            logger_name="csv",
            seed=run.seed,
        )


def launch_command(devices: int, num_nodes: int, launch_json: str | Path, environ: dict | None = None) -> list[str]:
    """The command that starts one training process per GPU (Fabric then joins them up).

    Under SLURM (the slurm profile gives the job ``devices × num_nodes`` tasks on ``num_nodes``
    nodes) srun starts them; on one machine without SLURM, torchrun. Fabric reads either
    launcher's environment (SLURMEnvironment, TorchElasticEnvironment) and spawns nothing itself,
    which matters: Fabric's own spawning re-executes ``sys.argv``, which inside a Snakemake job is
    not a command that would train. Each process runs ``python -m trellis.train.pretrain LAUNCH_JSON``.
    """
    environ = os.environ if environ is None else environ
    program = ["-m", "trellis.train.pretrain", str(launch_json)]
    if "SLURM_JOB_ID" in environ:
        return ["srun", f"--nodes={num_nodes}", f"--ntasks-per-node={devices}", "--kill-on-bad-exit=1",
                sys.executable] + program
    if num_nodes > 1:
        raise RuntimeError(
            f"pretrain.num_nodes is {num_nodes}: several nodes need SLURM (snakemake --profile profiles/slurm)"
        )
    # torch's own torchrun module, run by this interpreter (not whatever torchrun is first on PATH)
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={devices}"] + program


def _launch(run_args: dict, run: _Run) -> None:
    """Run ``_train`` in ``run.world`` processes through ``launch_command`` and wait for them."""
    path = run.out_dir / "launch.json"
    path.write_text(json.dumps(run_args, indent=2, default=str) + "\n")
    command = launch_command(run.devices, run.num_nodes, path)
    # The children import trellis from where this process did (a job's scripts/trellis link).
    root = str(Path(trellis.__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    log.info("launching %d processes: %s", run.world, " ".join(command))
    subprocess.run(command, env=env, check=True)


def run_pretrain(
    shard_dir: str | Path,
    tokenizer_dir: str | Path,
    out_dir: str | Path,
    model: dict,
    pretrain: dict,
    seed: int,
    arm_name: str,
) -> dict:
    """Pretrain one arm with LitGPT; resume from the last complete checkpoint in ``out_dir``.

    One device trains in this process; several are launched as one process per GPU
    (``launch_command``), after this process alone has prepared ``out_dir`` (so no two ranks
    clean up checkpoints at once). Returns a summary: final checkpoint path, resumed-from
    checkpoint (or None), iterations, tokens, wall time, metrics path.
    """
    run_args = {"shard_dir": str(shard_dir), "tokenizer_dir": str(tokenizer_dir), "out_dir": str(out_dir),
                "model": dict(model), "pretrain": dict(pretrain), "seed": int(seed), "arm_name": arm_name}
    run = _plan(**run_args)
    out_dir = run.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    _reset_if_changed(out_dir, run.fingerprint())
    moved = _discard_partial_checkpoints(out_dir)
    for path in moved:
        log.warning("moved aside a half-written checkpoint (killed mid-save): %s", path)
    resume_from = latest_step_checkpoint(out_dir)
    if resume_from is not None:
        log.info("resuming from %s", resume_from)
    # An old final/ would look finished while a resumed run is still going: remove it first.
    if final_checkpoint(out_dir).parent.exists():
        shutil.rmtree(final_checkpoint(out_dir).parent)

    t0 = time.perf_counter()
    if run.world == 1:
        _train(run, bool(pretrain["compile"]), bool(pretrain["gradient_checkpointing"]))
    else:
        _launch(run_args, run)
    seconds = time.perf_counter() - t0

    final = final_checkpoint(out_dir)
    if not final.is_file():
        raise RuntimeError(f"LitGPT finished without writing {final}")
    ctx = run.data.context_length
    flops_per_token, peak = model_flops_per_token(model, ctx - 1), _device_peak_flops()
    metrics = merge_metrics(out_dir, flops_per_token, peak, run.world)
    state = torch.load(final, map_location="cpu", weights_only=True, mmap=True)
    iters = int(state["iter_num"])
    summary = {
        "arm": arm_name,
        "final_checkpoint": str(final),
        "resumed_from": str(resume_from) if resume_from else None,
        "iter_num": iters,
        "step_count": int(state["step_count"]),
        "tokens": iters * run.train.micro_batch_size * (ctx - 1) * run.world,
        "parameters": parameter_count(model),
        "flops_per_token": flops_per_token,
        "device_peak_flops": peak,
        "world_size": run.world,
        "gradient_checkpointing": bool(pretrain["gradient_checkpointing"]),
        "compile": bool(pretrain["compile"]),
        "seconds": seconds,
        "metrics": str(metrics),
    }
    (out_dir / "pretrain_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _main(argv: list[str]) -> None:
    """Entry of each launched process: ``python -m trellis.train.pretrain OUT_DIR/launch.json``."""
    if len(argv) != 1:
        raise SystemExit("usage: python -m trellis.train.pretrain LAUNCH_JSON (written by run_pretrain)")
    run_args = json.loads(Path(argv[0]).read_text())
    pretrain = run_args["pretrain"]
    _train(_plan(**run_args), bool(pretrain["compile"]), bool(pretrain["gradient_checkpointing"]))


if __name__ == "__main__":
    # Run the trellis.train.pretrain module's copy, not this __main__ one, so the data module's class
    # path in LitGPT's hyperparameters.yaml is importable.
    import importlib

    importlib.import_module("trellis.train.pretrain")._main(sys.argv[1:])
