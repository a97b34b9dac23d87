"""UltraChat demo: multi-turn chats in ``data/train_sft-XXXXX-of-YYYYY-<hash>.parquet``.

Imitates HuggingFaceH4/ultrachat_200k's SFT split: rows with ``prompt``, ``prompt_id`` (a sha256
hex digest) and ``messages`` (alternating user/assistant turns, one to three exchanges). Prompts
are about the configured topics; some ask for JSON or a list, so the replies include fenced JSON
and numbered lists as well as prose.
"""

from __future__ import annotations

import hashlib
import json
import random

from trellis.acquire.demo.common import _distribute, _sentence, _topic_terms, _word
from trellis.acquire.demo.vocab import ENTITIES

CHAT_OPENERS = [
    "Can you explain {t} in simple terms?",
    "What are the main benefits of {t}?",
    "Write a short JSON object describing a {e} with three fields.",
    "How should I get started with {t}?",
    "Summarize the debate around {t} in a few sentences.",
]
CHAT_FOLLOWUPS = [
    "Can you give me an example?",
    "How does that compare to {t}?",
    "Could you format that as a list?",
    "What are common mistakes to avoid?",
    "Thanks! One more question: why does it matter?",
]


def _assistant_reply(rng: random.Random, prompt: str, terms: list[str]) -> str:
    if "JSON" in prompt:
        ent = rng.choice(ENTITIES)
        obj = {"id": rng.randint(1, 999), "name": _word(rng), "status": rng.choice(["active", "pending"])}
        return (
            f"Here is a {ent} as JSON:\n\n```json\n{json.dumps(obj, indent=2)}\n```\n\nEach key is a "
            f"field of the {ent}; add more keys as needed."
        )
    if "list" in prompt:
        return "Sure:\n\n" + "\n".join(
            f"{k}. {_sentence(rng, 2, terms)}" for k in range(1, rng.randint(3, 5) + 1)
        )
    return " ".join(_sentence(rng, rng.choice((2, 3)), terms) for _ in range(rng.randint(2, 4)))


def gen_ultrachat(rng: random.Random, n_docs: int, n_files: int, seed: int, topics: list[dict]):
    pool = topics or [{"name": "general", "keywords": ["everyday life", "work", "health", "travel"]}]
    docs = []
    for _ in range(n_docs):
        terms = _topic_terms(rng.choice(pool))
        prompt = rng.choice(CHAT_OPENERS).format(t=rng.choice(terms), e=rng.choice(ENTITIES))
        messages = [
            {"content": prompt, "role": "user"},
            {"content": _assistant_reply(rng, prompt, terms), "role": "assistant"},
        ]
        for _ in range(rng.randint(0, 2)):
            follow = rng.choice(CHAT_FOLLOWUPS).format(t=rng.choice(terms))
            messages += [
                {"content": follow, "role": "user"},
                {"content": _assistant_reply(rng, follow, terms), "role": "assistant"},
            ]
        docs.append(
            {
                "prompt": prompt,
                "prompt_id": hashlib.sha256(f"{prompt}{rng.random()}".encode()).hexdigest(),
                "messages": messages,
            }
        )
    names = [
        f"data/train_sft-{i:05d}-of-{n_files:05d}-{hashlib.sha1(f'{seed}{i}'.encode()).hexdigest()[:16]}.parquet"
        for i in range(n_files)
    ]
    return dict(zip(names, _distribute(rng, docs, n_files)))
