"""Greedy text generation from a Hugging Face causal LM directory, for the generation benchmarks.

Greedy decoding (no sampling) makes a benchmark score a function of the model and the prompts
alone. Prompts are left-padded so every row of a batch ends where generation starts; only the
newly generated tokens are decoded and returned.

Stopping: a row ends at the tokenizer's eos (or the generation config's), or at the first of the
caller's stop strings (``stop``: e.g. the header of the next few-shot example). Stop strings are
matched on the decoded text by transformers' ``StopStringCriteria`` while generating (so a row
that reached one stops costing compute) and cut off the returned text afterwards, because a stop
string can end in the middle of a token.

A ``StopStringCriteria`` is built once per stop set and kept: building one decodes the whole
vocabulary against the stop strings, and transformers' own cache of that work misses on every
``generate(stop_strings=...)`` call (its key is the vocabulary in ``get_vocab()``'s order, which a
fast tokenizer does not keep from call to call). Per batch that was 0.04 s for the demo's 4k-token
vocabulary and grows with the vocabulary: the study's BFCL multi-turn runs one ``generate`` per
model step.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from trellis.core.logs import progress

if TYPE_CHECKING:
    from transformers import StoppingCriteriaList

log = logging.getLogger(__name__)


class Generator:
    """A loaded model + tokenizer; ``generate`` can be called many times on the same weights."""

    def __init__(self, model_dir: str | os.PathLike, device: str | None = None):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise FileNotFoundError(f"{self.model_dir}: not a Hugging Face model directory (no config.json)")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        # bf16 on GPU halves memory and is how the study's models are trained; fp32 on CPU, where
        # bf16 matmuls are slow and gain nothing.
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=dtype)
        self.model.to(self.device).eval()

        tok = self.tokenizer
        if tok.eos_token_id is None:
            raise ValueError(f"{self.model_dir}: tokenizer has no eos_token; generation could not stop")
        # Padding is masked out, so any id works; eos is the conventional fallback.
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        # Stop at the tokenizer's eos and at whatever the model's generation config declares
        # (a chat model may end its turn with a different special token).
        eos = {tok.eos_token_id}
        gen_eos = getattr(self.model.generation_config, "eos_token_id", None)
        if isinstance(gen_eos, int):
            eos.add(gen_eos)
        elif gen_eos:
            eos.update(gen_eos)
        self.eos_ids = sorted(eos)
        self.max_positions = getattr(self.model.config, "max_position_embeddings", None)
        self._stop_criteria: dict[tuple[str, ...], StoppingCriteriaList] = {}
        self.truncated_rows: list[bool] = []  # per prompt of the last generate() call: cut to fit?

    @property
    def truncated(self) -> int:
        """Prompts cut to fit the context in the last generate() call."""
        return sum(self.truncated_rows)

    def _encode(self, prompt: str, max_prompt_tokens: int | None) -> tuple[list[int], bool]:
        """(token ids, whether they were cut to ``max_prompt_tokens``)."""
        tok = self.tokenizer
        # A chat template usually writes the BOS itself; adding another would shift the model
        # off its training distribution.
        add_special = not (tok.bos_token and prompt.startswith(tok.bos_token))
        ids = tok(prompt, add_special_tokens=add_special)["input_ids"]
        if max_prompt_tokens is not None and len(ids) > max_prompt_tokens:
            # Keep the end: it holds the question and the cue where the answer starts; what is
            # lost is the beginning (in few-shot prompts, the first shot).
            return ids[len(ids) - max_prompt_tokens :], True
        return ids, False

    def _stopping_criteria(self, stop: Sequence[str]) -> StoppingCriteriaList:
        """The stop-string criterion for ``stop``, built on first use (see the module docstring)."""
        from transformers import StoppingCriteriaList, StopStringCriteria

        key = tuple(stop)
        if key not in self._stop_criteria:
            self._stop_criteria[key] = StoppingCriteriaList([StopStringCriteria(self.tokenizer, list(key))])
        return self._stop_criteria[key]

    @torch.inference_mode()
    def generate(
        self, prompts: Sequence[str], max_new_tokens: int, batch_size: int = 8, stop: Sequence[str] = ()
    ) -> list[str]:
        """Greedy continuations (new text only, cut before the first stop string), in input order."""
        stop = [s for s in stop if s]
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.truncated_rows = []
        max_prompt = None
        if self.max_positions:
            max_prompt = self.max_positions - max_new_tokens
            if max_prompt < 1:
                raise ValueError(
                    f"{self.model_dir}: max_new_tokens={max_new_tokens} leaves no room for a prompt in "
                    f"the model's {self.max_positions}-token context"
                )
        encoded_and_cut = [self._encode(p, max_prompt) for p in prompts]
        encoded = [ids for ids, _ in encoded_and_cut]
        self.truncated_rows = [cut for _, cut in encoded_and_cut]
        if self.truncated:
            log.warning(
                "%d of %d prompts were longer than the context and were cut from the left",
                self.truncated,
                len(prompts),
            )
        # Batch prompts of similar length together (less padding); the order is a pure function
        # of the prompts, so results stay deterministic, and outputs go back in input order.
        order = sorted(range(len(encoded)), key=lambda i: (len(encoded[i]), i))
        outputs: list[str] = [""] * len(encoded)
        bar = progress(total=len(encoded), desc="generate", unit="prompts", logger=log)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = max(len(encoded[i]) for i in rows)
            input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
            attention = torch.zeros((len(rows), width), dtype=torch.long)
            for r, i in enumerate(rows):
                ids = encoded[i]
                input_ids[r, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
                attention[r, width - len(ids) :] = 1
            generated = self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=attention.to(self.device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                num_beams=1,
                temperature=None,
                top_p=None,
                top_k=None,
                eos_token_id=self.eos_ids,
                pad_token_id=self.pad_id,
                # The tokenizer too, as with stop_strings: should the model's generation config name
                # stop strings of its own, transformers builds their criterion and ours replaces it.
                **(
                    {"stopping_criteria": self._stopping_criteria(stop), "tokenizer": self.tokenizer}
                    if stop
                    else {}
                ),
            )
            new_tokens = generated[:, width:].cpu()
            for r, i in enumerate(rows):
                ids = new_tokens[r].tolist()
                # Cut at the first stop token: rows that finish early are padded afterwards.
                for k, t in enumerate(ids):
                    if t in self.eos_ids:
                        ids = ids[:k]
                        break
                outputs[i] = cut_at_stop(self.tokenizer.decode(ids, skip_special_tokens=True), stop)
            bar.update(len(rows))
        bar.close()
        return outputs


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to (not including) the earliest occurrence of any stop string."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=len(text))
    return text[:cut]


def generate(
    model_dir: str | os.PathLike,
    prompts: Sequence[str],
    max_new_tokens: int,
    batch_size: int = 8,
    stop: Sequence[str] = (),
) -> list[str]:
    """Greedy continuations of ``prompts`` (only the new text), in input order."""
    return Generator(model_dir).generate(prompts, max_new_tokens, batch_size, stop)
