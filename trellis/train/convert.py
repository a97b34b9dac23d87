"""Convert a LitGPT pretraining checkpoint into a Hugging Face ``LlamaForCausalLM`` directory.

The weight mapping is LitGPT's own (``litgpt.scripts.convert_lit_checkpoint.copy_weights_llama``:
it splits the fused qkv projection and renames every tensor). We add what LitGPT's converter
leaves out: the HF ``config.json`` (LlamaConfig), safetensors, the tokenizer, and a logit-parity
check so a wrong mapping fails here rather than as mysteriously bad benchmark numbers later.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from trellis.core.io import atomic_directory

log = logging.getLogger(__name__)

# Largest |logit difference| accepted between LitGPT and HF on the same input in fp32. Both
# compute the same function; only summation order differs, so anything above this is a mapping bug.
PARITY_TOLERANCE = 1e-4


def _checkpoint_file(checkpoint_dir: Path) -> Path:
    path = checkpoint_dir / "lit_model.pth"
    if not path.is_file():
        raise FileNotFoundError(
            f"{checkpoint_dir}: no lit_model.pth (expected a LitGPT checkpoint directory)"
        )
    if not (checkpoint_dir / "model_config.yaml").is_file():
        raise FileNotFoundError(f"{checkpoint_dir}: no model_config.yaml beside lit_model.pth")
    return path


def _load_lit_config(checkpoint_dir: Path):
    from litgpt import Config

    _checkpoint_file(checkpoint_dir)  # a clear error naming the directory before anything else
    config = Config.from_file(checkpoint_dir / "model_config.yaml")
    # The HF Llama architecture can only express this LitGPT layout; refuse anything else by name.
    expected = {
        "norm_class_name": "RMSNorm",
        "mlp_class_name": "LLaMAMLP",
        "rotary_percentage": 1.0,
        "parallel_residual": False,
        "bias": False,
        "lm_head_bias": False,
    }
    wrong = {k: getattr(config, k) for k, v in expected.items() if getattr(config, k) != v}
    if wrong:
        raise ValueError(f"{checkpoint_dir}/model_config.yaml: not a LLaMA-style config (differs in {wrong})")
    return config


def hf_state_dict(checkpoint_dir: str | Path) -> dict[str, torch.Tensor]:
    """The checkpoint's weights under HF Llama names, via LitGPT's conversion code."""
    from litgpt.scripts.convert_lit_checkpoint import check_conversion_supported, copy_weights_llama
    from litgpt.utils import lazy_load

    checkpoint_dir = Path(checkpoint_dir)
    path = _checkpoint_file(checkpoint_dir)
    config = _load_lit_config(checkpoint_dir)
    lit_weights = lazy_load(path)
    # Pretraining checkpoints hold {"model", "optimizer", ...}; a bare state dict is accepted too.
    lit_weights = lit_weights.get("model", lit_weights)
    check_conversion_supported(lit_weights)
    state: dict[str, torch.Tensor] = {}
    with torch.inference_mode():
        copy_weights_llama(config, state, lit_weights, untie_weights=False)
    # inference_mode tensors cannot be used for autograd later (SFT); clone them out of it.
    return {k: v.clone() for k, v in state.items()}


def llama_config(checkpoint_dir: str | Path, tokenizer):
    """A transformers LlamaConfig equivalent to the checkpoint's LitGPT config."""
    from transformers import LlamaConfig

    config = _load_lit_config(Path(checkpoint_dir))
    return LlamaConfig(
        vocab_size=config.padded_vocab_size,
        hidden_size=config.n_embd,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.n_layer,
        num_attention_heads=config.n_head,
        num_key_value_heads=config.n_query_groups,
        head_dim=config.head_size,
        hidden_act="silu",
        max_position_embeddings=config.block_size,
        rms_norm_eps=config.norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": float(config.rope_base)},
        attention_bias=False,
        mlp_bias=False,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def _load_tokenizer(tokenizer_dir: Path):
    from transformers import AutoTokenizer

    if not (tokenizer_dir / "tokenizer.json").is_file():
        raise FileNotFoundError(
            f"{tokenizer_dir}: no tokenizer.json (expected a Hugging Face tokenizer directory)"
        )
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    if tokenizer.eos_token is None:
        raise ValueError(f"{tokenizer_dir}: tokenizer has no eos_token")
    if tokenizer.pad_token is None:
        # SFT/DPO and batched evaluation need a pad token; EOS is the conventional stand-in.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def parity_input(vocab_size: int, block_size: int, seed: int = 0) -> torch.Tensor:
    """The fixed input logit_parity uses: two rows of random ids, up to 64 positions."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab_size, (2, min(64, block_size)), generator=g)


@torch.no_grad()
def logit_parity(checkpoint_dir: str | Path, hf_dir: str | Path, token_ids: torch.Tensor) -> float:
    """Max |logit difference| between the LitGPT checkpoint and the HF model, in fp32."""
    from litgpt import GPT
    from litgpt.utils import lazy_load
    from transformers import LlamaForCausalLM

    checkpoint_dir = Path(checkpoint_dir)
    config = _load_lit_config(checkpoint_dir)
    lit = GPT(config)
    weights = lazy_load(_checkpoint_file(checkpoint_dir))
    weights = weights.get("model", weights)
    lit.load_state_dict({k: v.to(torch.float32) if hasattr(v, "to") else v for k, v in weights.items()})
    lit = lit.float().eval()
    hf = LlamaForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32).eval()
    token_ids = torch.as_tensor(token_ids, dtype=torch.long)
    if token_ids.ndim == 1:
        token_ids = token_ids[None]
    lit_logits = lit(token_ids)
    hf_logits = hf(input_ids=token_ids).logits
    if lit_logits.shape != hf_logits.shape:
        raise ValueError(
            f"logit shapes differ: LitGPT {tuple(lit_logits.shape)} vs HF {tuple(hf_logits.shape)}"
        )
    return float((lit_logits - hf_logits).abs().max())


def convert_to_hf(checkpoint_dir: str | Path, tokenizer_dir: str | Path, out_dir: str | Path) -> dict:
    """Write ``out_dir`` as an HF LlamaForCausalLM directory (config, safetensors, tokenizer).

    The directory is built under a temporary name and renamed into place only after the logit
    parity check passed, so a failed or killed conversion never leaves a plausible model behind.
    Returns the report also written to ``out_dir/conversion.json``.
    """
    from transformers import GenerationConfig, LlamaForCausalLM

    checkpoint_dir, tokenizer_dir, out_dir = Path(checkpoint_dir), Path(tokenizer_dir), Path(out_dir)
    tokenizer = _load_tokenizer(tokenizer_dir)
    hf_config = llama_config(checkpoint_dir, tokenizer)
    state = hf_state_dict(checkpoint_dir)
    dtype = next(iter(state.values())).dtype  # keep the training dtype (fp32 or bf16) on disk

    model = LlamaForCausalLM(hf_config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{checkpoint_dir}: converted weights do not fit LlamaForCausalLM "
            f"(missing {sorted(missing)}, unexpected {sorted(unexpected)})"
        )
    model = model.to(dtype)
    model.config.dtype = dtype
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )

    with atomic_directory(out_dir) as tmp:
        model.save_pretrained(str(tmp))  # safetensors (the only format transformers 5 writes)
        tokenizer.save_pretrained(str(tmp))
        del model
        token_ids = parity_input(hf_config.vocab_size, hf_config.max_position_embeddings)
        diff = logit_parity(checkpoint_dir, tmp, token_ids)
        report = {
            "checkpoint": str(checkpoint_dir / "lit_model.pth"),
            "tokenizer": str(tokenizer_dir),
            "max_abs_logit_diff": diff,
            "tolerance": PARITY_TOLERANCE,
            "parity_input_shape": list(token_ids.shape),
            "dtype": str(dtype).removeprefix("torch."),
            "parameters": sum(v.numel() for v in state.values()),
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        }
        if not diff <= PARITY_TOLERANCE:  # also catches NaN
            raise RuntimeError(
                f"{checkpoint_dir}: HF conversion changes the model: max |logit diff| {diff:.3g} > "
                f"{PARITY_TOLERANCE}"
            )
        (tmp / "conversion.json").write_text(json.dumps(report, indent=2) + "\n")
    log.info("converted %s -> %s (max |logit diff| %.2e)", checkpoint_dir, out_dir, diff)
    return report
