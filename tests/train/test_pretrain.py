"""Pretraining: config and parameter count, the TKDS data module, a tiny LitGPT run, kill/resume."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from trellis.train.compute import parameter_count
from trellis.train.pretrain import (
    TKDSDataModule,
    final_checkpoint,
    litgpt_config,
    run_pretrain,
)
from trellis.train.pretrain.checkpoints import prune_step_checkpoints

ROOT = Path(__file__).resolve().parents[2]

TINY = {
    "n_layer": 2,
    "n_embd": 32,
    "n_head": 4,
    "n_query_groups": 2,
    "intermediate_size": 64,
    "rope_base": 10000,
    "norm_eps": 1e-5,
    "padded_vocab_size": 256,
}
STUDY = {
    "n_layer": 24,
    "n_embd": 1280,
    "n_head": 20,
    "n_query_groups": 10,
    "intermediate_size": 2816,
    "rope_base": 10000,
    "norm_eps": 1e-5,
    "padded_vocab_size": 50304,
}
CTX = 32
VOCAB = 256


def tiny_pretrain(**overrides) -> dict:
    cfg = {
        "max_tokens": 8 * 4 * (CTX - 1),  # 8 iterations of micro batch 4 -> 4 optimizer steps
        "micro_batch_size": 4,
        "global_batch_size": 8,
        "learning_rate": 3e-3,
        "min_lr": 3e-4,
        "warmup_steps": 1,
        "weight_decay": 0.1,
        "beta1": 0.9,
        "beta2": 0.95,
        "max_norm": 1.0,
        "precision": "32-true",
        "devices": 1,
        "num_nodes": 1,
        "save_interval": 2,
        "log_interval": 1,
        "compile": False,
        "gradient_checkpointing": False,
        "keep_checkpoints": None,
    }
    cfg.update(overrides)
    return cfg


def write_shards(
    shard_dir: Path, sequences: int, per_shard: int, ctx: int = CTX, vocab: int = VOCAB
) -> np.ndarray:
    """A TKDS shard directory whose sequence i starts with token i % vocab (to identify it)."""
    shard_dir.mkdir(parents=True)
    rng = np.random.default_rng(0)
    tokens = rng.integers(2, vocab, size=(sequences, ctx), dtype=np.uint16)
    tokens[:, 0] = np.arange(sequences) % vocab
    entries = []
    for k, start in enumerate(range(0, sequences, per_shard)):
        block = tokens[start : start + per_shard]
        path = shard_dir / f"shard-{k:05d}.tkds"
        payload = struct.pack("<4sHHII", b"TKDS", 1, ctx, len(block), vocab) + block.astype("<u2").tobytes()
        path.write_bytes(payload)
        entries.append(
            {"file": path.name, "sequences": len(block), "sha256": hashlib.sha256(payload).hexdigest()}
        )
    manifest = {"context_length": ctx, "vocab_size": vocab, "eos_id": 0, "shards": entries}
    (shard_dir / "manifest.json").write_text(json.dumps(manifest))
    return tokens


def write_tokenizer(tok_dir: Path, vocab: int = VOCAB) -> Path:
    """A Hugging Face tokenizer directory (word-level, ``vocab`` entries, EOS and pad tokens)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["<|endoftext|>", "<|padding|>"] + [f"w{i}" for i in range(vocab - 2)]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<|padding|>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok_dir.mkdir(parents=True)
    tok.save(str(tok_dir / "tokenizer.json"))
    (tok_dir / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "eos_token": "<|endoftext|>",
                "pad_token": "<|padding|>",
                "bos_token": "<|endoftext|>",
                "model_max_length": CTX,
            }
        )
    )
    return tok_dir


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    tokens = write_shards(root / "shards", sequences=100, per_shard=30)
    tok = write_tokenizer(root / "tokenizer")
    return root / "shards", tok, tokens


# ------------------------------------------------------------------------------ config / count


def test_parameter_count_matches_litgpt_model():
    from litgpt import GPT

    config = litgpt_config(TINY, CTX, name="trellis-test")
    model = GPT(config)
    assert parameter_count(TINY) == sum(p.numel() for p in model.parameters())
    assert model.lm_head.weight.data_ptr() != model.transformer.wte.weight.data_ptr()  # untied
    assert config.block_size == CTX and config.padded_vocab_size == 256 and config.vocab_size == 256


def test_study_config_is_the_model_cards_506m():
    from litgpt import GPT

    study = yaml.safe_load((ROOT / "config" / "study.yaml").read_text())
    assert study["model"] == STUDY  # the model card's shape, key by key
    ctx = study["mix"]["context_length"]
    assert parameter_count(study["model"]) == 506_328_320  # the model card's count
    with torch.device("meta"):  # no memory is allocated on the meta device
        model = GPT(litgpt_config(study["model"], ctx, name="trellis-506m"))
    assert sum(p.numel() for p in model.parameters()) == 506_328_320
    assert model.lm_head.weight is not model.transformer.wte.weight  # untied
    c = model.config
    assert (c.block_size, c.n_layer, c.n_embd, c.n_head, c.n_query_groups, c.intermediate_size) == (
        2048,
        24,
        1280,
        20,
        10,
        2816,
    )
    assert (c.norm_class_name, c.mlp_class_name, c.rope_base, c.padded_vocab_size) == (
        "RMSNorm",
        "LLaMAMLP",
        10000,
        50304,
    )


def test_config_rejects_bad_sections():
    with pytest.raises(KeyError, match="n_query_groups"):
        litgpt_config({k: v for k, v in TINY.items() if k != "n_query_groups"}, CTX, "x")
    with pytest.raises(ValueError, match="n_query_groups"):
        litgpt_config(TINY | {"n_query_groups": 3}, CTX, "x")


# --------------------------------------------------------------------------------- data module


def test_datamodule_shapes_and_disjoint_validation(corpus):
    shard_dir, _, tokens = corpus
    dm = TKDSDataModule(shard_dir, val_fraction=0.1, seed=1)
    dm.connect(batch_size=4, max_seq_length=CTX - 1)
    dm.setup()
    n_val = len(dm.val_dataset)
    assert n_val == 12  # ceil(0.1 * 100) = 10, rounded up to whole batches of 4
    assert len(dm.train_dataset) + n_val == 100

    seen_train = []
    for batch in dm.train_dataloader():
        assert batch.shape == (4, CTX) and batch.dtype == torch.int64
        seen_train += batch[:, 0].tolist()
    seen_val = [int(x) for b in dm.val_dataloader() for x in b[:, 0]]
    assert sorted(seen_val) == list(range(100 - n_val, 100))  # the tail, in order
    assert set(seen_train).isdisjoint(seen_val)
    assert len(seen_train) == len(set(seen_train)) == 88  # one epoch, each sequence once
    # Rows come back exactly as written, across shard boundaries (30 per shard).
    assert torch.equal(dm.train_dataset[31], torch.from_numpy(tokens[31].astype(np.int64)))


def test_datamodule_splits_ranks_without_overlap(corpus, monkeypatch):
    shard_dir, _, _ = corpus
    per_rank = []
    for rank in range(2):
        monkeypatch.setattr("trellis.train.pretrain.data._world", lambda rank=rank: (2, rank))
        dm = TKDSDataModule(shard_dir, val_fraction=0.1, seed=3)
        dm.connect(batch_size=4, max_seq_length=CTX - 1)
        dm.setup()
        assert len(dm.val_dataset) == 16  # whole micro batches on both ranks: ceil(10 / 8) * 8
        per_rank.append({int(x) for b in dm.train_dataloader() for x in b[:, 0]})
    assert per_rank[0].isdisjoint(per_rank[1])
    # 84 training sequences: 42 per rank, of which 10 whole batches of 4 are served.
    assert len(per_rank[0]) == len(per_rank[1]) == 40
    assert max(per_rank[0] | per_rank[1]) < 84


def test_dataloader_resumes_mid_epoch(corpus):
    shard_dir, _, _ = corpus
    dm = TKDSDataModule(shard_dir, val_fraction=0.1, seed=5)
    dm.connect(batch_size=4, max_seq_length=CTX - 1)
    dm.setup()
    full = [b[:, 0].tolist() for b in dm.train_dataloader()]
    loader = dm.train_dataloader()
    it = iter(loader)
    first = [next(it)[:, 0].tolist() for _ in range(5)]
    state = loader.state_dict()
    assert state == {"epoch": 0, "consumed_batches": 5}
    fresh = dm.train_dataloader()
    fresh.load_state_dict(state)
    rest = [b[:, 0].tolist() for b in fresh]
    assert first + rest == full


def test_datamodule_refuses_too_long_sequences(corpus):
    dm = TKDSDataModule(corpus[0])
    with pytest.raises(ValueError, match="context_length - 1"):
        dm.connect(batch_size=4, max_seq_length=CTX)


def test_datamodule_refuses_a_truncated_shard(tmp_path):
    shard_dir = tmp_path / "shards"
    write_shards(shard_dir, sequences=20, per_shard=10)
    path = shard_dir / "shard-00001.tkds"
    path.write_bytes(path.read_bytes()[:-2])
    dm = TKDSDataModule(shard_dir)
    dm.connect(batch_size=2, max_seq_length=CTX - 1)
    with pytest.raises(ValueError, match="shard-00001.tkds"):
        dm.setup()


def test_datamodule_names_a_missing_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        TKDSDataModule(tmp_path)


# ------------------------------------------------------------------------------- pretrain runs


def test_tiny_pretrain_writes_checkpoint_and_metrics(corpus, tmp_path):
    shard_dir, tok_dir, _ = corpus
    out = tmp_path / "ckpt"
    summary = run_pretrain(shard_dir, tok_dir, out, TINY, tiny_pretrain(), seed=7, arm_name="curated")
    final = final_checkpoint(out)
    assert final.is_file() and summary["final_checkpoint"] == str(final)
    for name in ("model_config.yaml", "tokenizer.json", "tokenizer_config.json", "hyperparameters.yaml"):
        assert (final.parent / name).is_file(), name
    state = torch.load(final, map_location="cpu", weights_only=True)
    assert state["iter_num"] == 8 and state["step_count"] == 4
    assert summary["tokens"] == 8 * 4 * (CTX - 1) and summary["resumed_from"] is None
    with open(out / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    train_rows = [r for r in rows if r.get("loss")]
    # LitGPT logs every log_interval optimizer steps (2 iterations each: global 8 / micro 4).
    assert [int(r["iter"]) for r in train_rows] == [2, 4, 6, 8]
    assert [int(r["tokens"]) for r in train_rows] == [i * 4 * (CTX - 1) for i in (2, 4, 6, 8)]
    assert all(np.isfinite(float(r["loss"])) for r in train_rows)
    assert all(float(r["tokens_per_sec"]) > 0 for r in train_rows)  # every row, even in a short run
    assert not any(r["mfu"] for r in rows)  # a CPU has no known peak: no made-up MFU
    assert any(r.get("val_loss") for r in rows)
    assert (out / "step-00000002" / "lit_model.pth").is_file()


def test_merge_metrics_rates_and_mfu_across_a_resume(tmp_path):
    """Rates come from consecutive rows of one process start; a resumed start's first row has none."""
    from trellis.train.pretrain import merge_metrics

    header = "iter,step,loss,time,total_tokens,val_loss\n"
    first = tmp_path / "logs" / "csv" / "version_0"
    second = tmp_path / "logs" / "csv" / "version_1"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    (first / "metrics.csv").write_text(
        header + "2,1,5.0,2.0,1000,\n4,3,4.0,4.0,3000,\n,3,,,,4.5\n6,5,3.9,9.0,5000,\n"
    )
    # killed after iter 6; resumed from the checkpoint at iter 4: iters 6 and 8 are logged again
    (second / "metrics.csv").write_text(header + "6,5,3.8,3.0,5000,\n8,7,3.5,5.0,9000,\n")
    merge_metrics(tmp_path, flops_per_token=100.0, peak_flops=1000.0, world_size=2)
    with open(tmp_path / "metrics.csv", newline="") as fh:
        rows = {int(r["step"]): r for r in csv.DictReader(fh)}
    assert sorted(rows) == [1, 3, 5, 7]
    assert rows[1]["tokens_per_sec"] == "500.00" and rows[3]["tokens_per_sec"] == "1000.00"
    assert rows[3]["val_loss"] == "4.5" and rows[3]["loss"] == "4.0"
    assert rows[5]["loss"] == "3.8" and rows[5]["tokens_per_sec"] == ""  # the rerun's, no previous row
    assert rows[7]["tokens_per_sec"] == "2000.00"
    assert rows[7]["mfu"] == f"{2000 * 100.0 / (1000.0 * 2):.4f}"


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"training exited ({proc.returncode}) before writing {path}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {path} after {timeout}s")
        time.sleep(0.1)


def test_killed_run_resumes_from_last_checkpoint(corpus, tmp_path, capfd):
    shard_dir, tok_dir, _ = corpus
    out = tmp_path / "ckpt"
    cfg = tiny_pretrain(max_tokens=24 * 4 * (CTX - 1))  # 24 iterations, 12 steps, checkpoint every 2
    # The first attempt runs in a subprocess, slowed per sequence read so the kill lands mid-run,
    # and is SIGKILLed once its first checkpoint is complete (model_config.yaml is written last).
    script = textwrap.dedent(
        f"""
        import time
        from trellis.train.pretrain import run_pretrain
        from trellis.train.pretrain.data import TKDSDataset
        read = TKDSDataset.__getitem__
        TKDSDataset.__getitem__ = lambda self, i: (time.sleep(0.05), read(self, i))[1]
        run_pretrain({str(shard_dir)!r}, {str(tok_dir)!r}, {str(out)!r}, {TINY!r}, {cfg!r}, 7, "curated")
        """
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _wait_for(out / "step-00000002" / "model_config.yaml", proc, timeout=120)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not final_checkpoint(out).exists()
    killed_at = torch.load(out / "step-00000002" / "lit_model.pth", map_location="cpu", weights_only=True)
    assert killed_at["iter_num"] == 4 and killed_at["train_dataloader"] == {"epoch": 0, "consumed_batches": 4}
    done = sorted(int(p.name.split("-")[1]) for p in out.glob("step-*") if (p / "model_config.yaml").exists())

    capfd.readouterr()
    summary = run_pretrain(shard_dir, tok_dir, out, TINY, cfg, seed=7, arm_name="curated")
    printed = capfd.readouterr().out
    resumed = out / f"step-{done[-1]:08d}" / "lit_model.pth"
    assert summary["resumed_from"] == str(resumed)
    assert f"Resuming training from {resumed}" in printed
    state = torch.load(final_checkpoint(out), map_location="cpu", weights_only=True)
    assert state["iter_num"] == 24 and state["step_count"] == 12

    # The rerun's own CSV log starts after the resumed iteration, not at iteration 1.
    versions = sorted((out / "logs" / "csv").glob("version_*/metrics.csv"))
    assert len(versions) == 2
    with open(versions[-1], newline="") as fh:
        rerun_iters = [int(r["iter"]) for r in csv.DictReader(fh) if r.get("iter")]
    assert min(rerun_iters) == 2 * done[-1] + 2  # first iteration logged after the resumed one
    with open(out / "metrics.csv", newline="") as fh:
        merged = [int(r["iter"]) for r in csv.DictReader(fh) if r.get("iter")]
    assert merged == list(range(2, 25, 2))


def _step_names(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith(("step-", "final")))


def test_prune_keeps_the_newest_complete_step_checkpoints(tmp_path, caplog):
    def checkpoint(name: str, complete: bool = True) -> None:
        (tmp_path / name).mkdir()
        (tmp_path / name / "lit_model.pth").write_bytes(b"x")
        if complete:  # LitGPT writes model_config.yaml last
            (tmp_path / name / "model_config.yaml").write_text("{}")

    for step in (2, 4, 8, 10):
        checkpoint(f"step-{step:08d}")
    checkpoint("step-00000006", complete=False)  # a kill's leftover: neither counted nor removed
    checkpoint("step-00000012", complete=False)  # being written: not yet a newer complete one
    checkpoint("final")
    assert prune_step_checkpoints(tmp_path, None) == []  # null keeps everything
    with pytest.raises(ValueError, match="keep_checkpoints"):
        prune_step_checkpoints(tmp_path, 0)  # a killed run must always have one to resume from

    with caplog.at_level("INFO", logger="trellis.train.pretrain.checkpoints"):
        removed = prune_step_checkpoints(tmp_path, 2)
    assert removed == [tmp_path / "step-00000002", tmp_path / "step-00000004"]
    assert all(str(p) in caplog.text for p in removed)
    assert _step_names(tmp_path) == [
        "final",
        "step-00000006",
        "step-00000008",
        "step-00000010",
        "step-00000012",
    ]
    assert prune_step_checkpoints(tmp_path, 2) == []  # nothing more to do
    # K=1: the newest complete one stays, though a newer (incomplete) step-12 exists.
    assert prune_step_checkpoints(tmp_path, 1) == [tmp_path / "step-00000008"]
    assert _step_names(tmp_path) == ["final", "step-00000006", "step-00000010", "step-00000012"]
    assert (tmp_path / "final" / "lit_model.pth").is_file()


def test_keep_checkpoints_prunes_while_training(corpus, tmp_path):
    shard_dir, tok_dir, _ = corpus
    out = tmp_path / "ckpt"
    cfg = tiny_pretrain(save_interval=1, keep_checkpoints=2)  # 4 optimizer steps, a checkpoint each
    run_pretrain(shard_dir, tok_dir, out, TINY, cfg, seed=7, arm_name="curated")
    assert _step_names(out) == ["final", "step-00000003", "step-00000004"]
    import litgpt.pretrain as lp

    assert lp.save_checkpoint.__name__ == "save_checkpoint"  # LitGPT's own again after the run


def test_pruned_run_resumes_from_the_newest_kept_checkpoint(corpus, tmp_path, monkeypatch):
    """Kill a run that keeps 3, resume it keeping 2: it resumes from the newest kept and finishes."""
    import litgpt.pretrain as lp

    shard_dir, tok_dir, _ = corpus
    out = tmp_path / "ckpt"
    cfg = tiny_pretrain(max_tokens=12 * 4 * (CTX - 1), save_interval=1)  # 12 iterations, 6 steps

    class Killed(Exception):
        pass

    save = lp.save_checkpoint

    def killed_at_step_5(fabric, state, tokenizer_dir, checkpoint_file):
        # What a kill between checkpoints leaves: complete step directories up to step 4, no final/.
        if checkpoint_file.parent.name == "step-00000005":
            raise Killed
        save(fabric, state, tokenizer_dir, checkpoint_file)

    with monkeypatch.context() as m:
        m.setattr(lp, "save_checkpoint", killed_at_step_5)
        with pytest.raises(Killed):
            run_pretrain(shard_dir, tok_dir, out, TINY, cfg | {"keep_checkpoints": 3}, 7, "curated")
    assert _step_names(out) == ["step-00000002", "step-00000003", "step-00000004"]

    # keep_checkpoints is not part of the run's definition: the smaller K prunes, then resumes.
    summary = run_pretrain(shard_dir, tok_dir, out, TINY, cfg | {"keep_checkpoints": 2}, 7, "curated")
    assert summary["resumed_from"] == str(out / "step-00000004" / "lit_model.pth")
    assert summary["iter_num"] == 12 and summary["step_count"] == 6  # as an uninterrupted run
    assert _step_names(out) == ["final", "step-00000005", "step-00000006"]


def test_gradient_checkpointing_recomputes_blocks_inside_litgpt():
    import litgpt.pretrain as lp
    from lightning.fabric.strategies import FSDPStrategy
    from litgpt.model import Block
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import CheckpointWrapper

    from trellis.train.pretrain.model import _litgpt_gradient_checkpointing

    config = litgpt_config(TINY, CTX, name="trellis-test")
    plain_keys = list(lp.GPT(config).state_dict())
    with _litgpt_gradient_checkpointing(True):
        model = lp.GPT(config)  # what LitGPT's main() builds
        with torch.device("meta"):
            meta = lp.GPT(config)  # what LitGPT builds to count FLOPs: left alone
        # what LitGPT builds for several devices: FSDP checkpoints every Block itself
        fsdp = lp.FSDPStrategy(
            auto_wrap_policy={Block}, state_dict_type="full", sharding_strategy="HYBRID_SHARD"
        )
    assert isinstance(fsdp, FSDPStrategy) and fsdp._activation_checkpointing_kwargs
    assert lp.GPT.__name__ == "GPT" and lp.FSDPStrategy is FSDPStrategy  # restored afterwards
    assert all(isinstance(b, CheckpointWrapper) for b in model.transformer.h)
    assert not any(isinstance(b, CheckpointWrapper) for b in meta.transformer.h)
    assert list(model.state_dict()) == plain_keys  # checkpoints keep LitGPT's names

    calls = []
    inner = model.transformer.h[0]._checkpoint_wrapped_module
    # A pre-hook: the recomputation stops as soon as it has what backward needs, before a
    # post-forward hook would fire.
    inner.register_forward_pre_hook(lambda *_: calls.append(1))
    model(torch.randint(0, VOCAB, (2, CTX))).sum().backward()
    assert len(calls) == 2  # the block ran again during backward: activations were recomputed


def test_gradient_checkpointing_changes_nothing_but_memory(corpus, tmp_path):
    shard_dir, tok_dir, _ = corpus
    finals = []
    for flag in (False, True):
        out = tmp_path / f"ckpt-{flag}"
        run_pretrain(shard_dir, tok_dir, out, TINY, tiny_pretrain(gradient_checkpointing=flag), 7, "curated")
        with open(out / "metrics.csv", newline="") as fh:
            losses = [float(r["loss"]) for r in csv.DictReader(fh) if r.get("loss")]
        finals.append(
            (losses, torch.load(final_checkpoint(out), map_location="cpu", weights_only=True)["model"])
        )
    (plain_losses, plain), (ckpt_losses, ckpt) = finals
    assert np.allclose(plain_losses, ckpt_losses, rtol=1e-5, atol=1e-6)
    assert list(plain) == list(ckpt)
    for name in plain:
        torch.testing.assert_close(plain[name], ckpt[name], rtol=1e-4, atol=1e-5)


def test_several_devices_launch_one_process_per_gpu():
    from trellis.train.pretrain import launch_command

    slurm = launch_command(4, 2, "/o/launch.json", environ={"SLURM_JOB_ID": "17"})
    assert slurm[:4] == ["srun", "--nodes=2", "--ntasks-per-node=4", "--kill-on-bad-exit=1"]
    assert slurm[4:] == [sys.executable, "-m", "trellis.train.pretrain", "/o/launch.json"]
    local = launch_command(2, 1, "/o/launch.json", environ={})
    assert local == [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=2",
        "-m",
        "trellis.train.pretrain",
        "/o/launch.json",
    ]
    with pytest.raises(RuntimeError, match="SLURM"):
        launch_command(2, 2, "/o/launch.json", environ={})


def test_changed_run_definition_starts_from_scratch(corpus, tmp_path):
    shard_dir, tok_dir, _ = corpus
    out = tmp_path / "ckpt"
    run_pretrain(shard_dir, tok_dir, out, TINY, tiny_pretrain(), seed=7, arm_name="curated")
    summary = run_pretrain(
        shard_dir, tok_dir, out, TINY, tiny_pretrain(learning_rate=1e-3), seed=7, arm_name="curated"
    )
    assert summary["resumed_from"] is None  # other hyperparameters: old checkpoints are not reused
    assert len(list((out / "logs" / "csv").glob("version_*"))) == 1
