"""Running one arm's pretraining: plan the run, train in this process or launch one per GPU, sum it up.

``run_pretrain`` is the entry the Snakemake rule calls. ``_plan`` maps our ``model`` and
``pretrain`` sections onto LitGPT's arguments, ``_train`` runs LitGPT's own pretrain loop in one
process, and with several devices ``_launch`` starts one process per GPU through
``launch_command`` (torchrun, or srun under SLURM). Each launched process runs
``python -m trellis.train.pretrain LAUNCH_JSON`` (the package's ``__main__``), which calls
``_main`` here.

How a TKDS sequence maps onto LitGPT's inputs and targets
---------------------------------------------------------
LitGPT's loop slices every batch as ``input_ids = batch[:, :max_seq_length]`` and
``targets = batch[:, 1:max_seq_length + 1]``. A TKDS sequence holds ``context_length`` tokens, so
we run with ``train.max_seq_length = context_length - 1``: each sequence trains
``context_length - 1`` next-token positions (token t predicts token t+1, the last token is only a
target). The model's ``block_size`` is ``context_length`` (RoPE cache and the HF
``max_position_embeddings``), so inference may use the full context. ``max_tokens`` counts trained
positions (``iters × micro_batch × (context_length - 1)``), which is how LitGPT counts them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

import trellis
from trellis.train.compute import model_flops_per_token, parameter_count
from trellis.train.pretrain.checkpoints import (
    _discard_partial_checkpoints,
    _reset_if_changed,
    _retention,
    final_checkpoint,
    latest_step_checkpoint,
    prune_step_checkpoints,
)
from trellis.train.pretrain.data import TKDSDataModule
from trellis.train.pretrain.metrics import _device_peak_flops, merge_metrics
from trellis.train.pretrain.model import (
    PRETRAIN_KEYS,
    _litgpt_gradient_checkpointing,
    _require,
    litgpt_config,
)

log = logging.getLogger(__name__)


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


@contextlib.contextmanager
def _litgpt_checkpoint_retention(keep: int | None):
    """Keep only the newest ``keep`` step checkpoints while LitGPT's loop writes them.

    LitGPT 0.5.13 saves through the module-level ``litgpt.pretrain.save_checkpoint``, looked up at
    call time: ``fit`` for every step checkpoint, ``main`` for ``final/``. Once it returns, the new
    step checkpoint is complete (Fabric's save ends in a barrier, then rank 0 writes
    model_config.yaml last), so rank 0, the rank that writes the files, prunes the older ones there.
    """
    if keep is None:
        yield
        return
    import litgpt.pretrain as lp

    save = lp.save_checkpoint

    def save_and_prune(fabric, state, tokenizer_dir, checkpoint_file):
        save(fabric, state, tokenizer_dir, checkpoint_file)
        step_dir = Path(checkpoint_file).parent
        if fabric.global_rank == 0 and step_dir.name.startswith("step-"):
            prune_step_checkpoints(step_dir.parent, keep)

    lp.save_checkpoint = save_and_prune
    try:
        yield
    finally:
        lp.save_checkpoint = save


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
        # memory, and keep_checkpoints only how many step checkpoints stay on disk, not the
        # numbers: they are not part of it, so changing them keeps a killed run resumable.
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
    _retention(pretrain["keep_checkpoints"])
    shard_dir, tokenizer_dir, out_dir = Path(shard_dir), Path(tokenizer_dir), Path(out_dir)
    if not (tokenizer_dir / "tokenizer.json").is_file():
        raise FileNotFoundError(
            f"{tokenizer_dir}: no tokenizer.json (expected a Hugging Face tokenizer directory)"
        )
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
    return _Run(
        config,
        data,
        train,
        eval_args,
        optimizer,
        str(pretrain["precision"]),
        devices,
        num_nodes,
        tokenizer_dir,
        out_dir,
        int(seed),
    )


def _train(
    run: _Run, compile_model: bool, gradient_checkpointing: bool, keep_checkpoints: int | None
) -> None:
    """One process's share of the run: LitGPT's pretrain loop (Fabric sets up the ranks)."""
    from litgpt import pretrain as litgpt_pretrain

    argv = _cli_args(
        "litgpt-pretrain",
        run.config.name,
        {
            "model_config": {
                f.name: getattr(run.config, f.name) for f in dataclasses.fields(run.config) if f.init
            },
            "data": {
                "class_path": f"{TKDSDataModule.__module__}.TKDSDataModule",
                "init_args": run.data.init_args(),
            },
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
    with (
        _litgpt_argv(argv),
        compile_ctx,
        _litgpt_gradient_checkpointing(gradient_checkpointing),
        _litgpt_checkpoint_retention(keep_checkpoints),
    ):
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


def launch_command(
    devices: int, num_nodes: int, launch_json: str | Path, environ: dict | None = None
) -> list[str]:
    """The command that starts one training process per GPU (Fabric then joins them up).

    Under SLURM (the slurm profile gives the job ``devices × num_nodes`` tasks on ``num_nodes``
    nodes) srun starts them; on one machine without SLURM, torchrun. Fabric reads either
    launcher's environment (SLURMEnvironment, TorchElasticEnvironment) and spawns nothing itself,
    which matters: Fabric's own spawning re-executes ``sys.argv``, which inside a Snakemake job is
    not a command that would train. Each process runs ``python -m trellis.train.pretrain LAUNCH_JSON``
    (the package's ``__main__.py``, which calls ``_main``).
    """
    environ = os.environ if environ is None else environ
    program = ["-m", "trellis.train.pretrain", str(launch_json)]
    if "SLURM_JOB_ID" in environ:
        return [
            "srun",
            f"--nodes={num_nodes}",
            f"--ntasks-per-node={devices}",
            "--kill-on-bad-exit=1",
            sys.executable,
        ] + program
    if num_nodes > 1:
        raise RuntimeError(
            f"pretrain.num_nodes is {num_nodes}: several nodes need SLURM (snakemake --profile "
            "profiles/slurm)"
        )
    # torch's own torchrun module, run by this interpreter (not whatever torchrun is first on PATH)
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={devices}",
    ] + program


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
    run_args = {
        "shard_dir": str(shard_dir),
        "tokenizer_dir": str(tokenizer_dir),
        "out_dir": str(out_dir),
        "model": dict(model),
        "pretrain": dict(pretrain),
        "seed": int(seed),
        "arm_name": arm_name,
    }
    run = _plan(**run_args)
    out_dir = run.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    _reset_if_changed(out_dir, run.fingerprint())
    moved = _discard_partial_checkpoints(out_dir)
    for path in moved:
        log.warning("moved aside a half-written checkpoint (killed mid-save): %s", path)
    # Leftovers of an earlier attempt that kept more (a larger keep_checkpoints) go now.
    prune_step_checkpoints(out_dir, pretrain["keep_checkpoints"])
    resume_from = latest_step_checkpoint(out_dir)
    if resume_from is not None:
        log.info("resuming from %s", resume_from)
    # An old final/ would look finished while a resumed run is still going: remove it first.
    if final_checkpoint(out_dir).parent.exists():
        shutil.rmtree(final_checkpoint(out_dir).parent)

    t0 = time.perf_counter()
    if run.world == 1:
        _train(
            run,
            bool(pretrain["compile"]),
            bool(pretrain["gradient_checkpointing"]),
            pretrain["keep_checkpoints"],
        )
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
    """Entry of each launched process: ``python -m trellis.train.pretrain OUT_DIR/launch.json``.

    The package's ``__main__.py`` calls it, so this module is imported under its own name and the
    data module's class path in LitGPT's hyperparameters.yaml stays importable.
    """
    if len(argv) != 1:
        raise SystemExit("usage: python -m trellis.train.pretrain LAUNCH_JSON (written by run_pretrain)")
    run_args = json.loads(Path(argv[0]).read_text())
    pretrain = run_args["pretrain"]
    _train(
        _plan(**run_args),
        bool(pretrain["compile"]),
        bool(pretrain["gradient_checkpointing"]),
        pretrain["keep_checkpoints"],
    )
