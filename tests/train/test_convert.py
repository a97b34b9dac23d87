"""LitGPT -> Hugging Face conversion (logit parity) and the Pythia baseline step arithmetic."""

from __future__ import annotations

import json

import pytest
import torch
from test_pretrain import CTX, TINY, write_tokenizer

from trellis.train.baselines import PYTHIA_SAVED_STEPS, pythia_compute_matched_step
from trellis.train.convert import convert_to_hf, logit_parity, parity_input
from trellis.train.pretrain import litgpt_config


@pytest.fixture
def lit_checkpoint(tmp_path):
    """A LitGPT checkpoint laid out like pretraining's final/ (model + optimizer state)."""
    from litgpt import GPT
    from litgpt.utils import save_config

    torch.manual_seed(0)
    config = litgpt_config(TINY, CTX, name="trellis-test")
    model = GPT(config)
    with torch.no_grad():
        for p in model.parameters():  # norms included: a swapped or dropped tensor must show
            p.normal_(0.0, 0.2)
    ckpt = tmp_path / "final"
    ckpt.mkdir()
    state = {"model": model.state_dict(), "optimizer": {"state": {}, "param_groups": []}, "iter_num": 3}
    torch.save(state, ckpt / "lit_model.pth")
    save_config(config, ckpt)
    return ckpt, write_tokenizer(tmp_path / "tokenizer")


def test_conversion_matches_litgpt_logits(lit_checkpoint, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ckpt, tok_dir = lit_checkpoint
    out = tmp_path / "models" / "curated" / "base"
    report = convert_to_hf(ckpt, tok_dir, out)
    assert report["max_abs_logit_diff"] <= 1e-4
    assert (
        json.loads((out / "conversion.json").read_text())["max_abs_logit_diff"]
        == report["max_abs_logit_diff"]
    )
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()

    hf = AutoModelForCausalLM.from_pretrained(out)
    cfg = hf.config
    assert cfg.model_type == "llama" and not cfg.tie_word_embeddings
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads) == (
        32,
        2,
        4,
        2,
    )
    assert cfg.max_position_embeddings == CTX and cfg.vocab_size == 256
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.eos_token == "<|endoftext|>" and tok.pad_token == "<|padding|>"
    assert cfg.eos_token_id == tok.eos_token_id == 0 and cfg.pad_token_id == tok.pad_token_id == 1

    # Independent re-check on another input, and the parity figure is meaningful (not vacuous).
    ids = torch.arange(20)[None] * 7 % 256
    assert logit_parity(ckpt, out, ids) <= 1e-4
    assert hf(input_ids=ids).logits.abs().max() > 0.1


def test_bad_mapping_fails_loudly_and_leaves_no_output(lit_checkpoint, tmp_path, monkeypatch):
    import litgpt.scripts.convert_lit_checkpoint as conv

    real = conv.copy_weights_llama

    def swapped(config, state, lit_weights, **kwargs):  # gate and up projections exchanged
        real(config, state, lit_weights, **kwargs)
        k = "model.layers.0.mlp."
        state[k + "gate_proj.weight"], state[k + "up_proj.weight"] = (
            state[k + "up_proj.weight"],
            state[k + "gate_proj.weight"],
        )

    monkeypatch.setattr(conv, "copy_weights_llama", swapped)
    ckpt, tok_dir = lit_checkpoint
    out = tmp_path / "hf"
    with pytest.raises(RuntimeError, match="logit diff"):
        convert_to_hf(ckpt, tok_dir, out)
    assert not out.exists() and not list(tmp_path.glob(".hf.tmp-*"))


def test_missing_checkpoint_is_named(tmp_path):
    write_tokenizer(tmp_path / "tok")
    with pytest.raises(FileNotFoundError, match="lit_model.pth"):
        convert_to_hf(tmp_path / "nope", tmp_path / "tok", tmp_path / "out")


def test_parity_input_is_fixed():
    assert torch.equal(parity_input(256, 32), parity_input(256, 32))
    assert parity_input(256, 2048).shape == (2, 64)


def test_pythia_compute_matched_step():
    # 20e9 tokens / 2,097,152 tokens per step = 9536.7 -> nearest saved checkpoint step10000.
    assert pythia_compute_matched_step(20_000_000_000) == 10000
    assert pythia_compute_matched_step(0) == 0
    assert pythia_compute_matched_step(3 * 2_097_152) == 2  # equidistant: the earlier step
    assert pythia_compute_matched_step(300 * 2_097_152) == 256
    assert pythia_compute_matched_step(10**15) == 143000  # beyond training: the final step
    assert PYTHIA_SAVED_STEPS[:11] == (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
    assert (
        PYTHIA_SAVED_STEPS[11] == 1000 and PYTHIA_SAVED_STEPS[-1] == 143000 and len(PYTHIA_SAVED_STEPS) == 154
    )
    with pytest.raises(ValueError):
        pythia_compute_matched_step(-1)
