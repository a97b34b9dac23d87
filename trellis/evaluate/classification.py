"""Classification with structured output: a text and a label enum -> {"label": ...} as JSON.

The tasks here (customer intent, emotion, stance) and their label sets are evaluation-only: the
SFT/DPO classification tasks (sentiment, urgency in ``trellis.train.posttrain_data``) have other labels
and cue phrases, so every schema here is unseen (tests/structured/test_disjoint.py). The texts name an
entity of the EVAL schema pool and carry one cue phrase of their label, so the gold label follows
from the text. The schema and prompt have the shape of the trained classification task, built
by ``prompts.json_schema_messages``.

Metrics (per example, then means with bootstrap CIs):
- label_accuracy: the output's "label" equals the gold label;
- parse_rate: the output contains a JSON object.
"""

from __future__ import annotations

import random

from trellis.structured import pools as structured_pool
from trellis.structured import prompts

METRICS = ("label_accuracy", "parse_rate")
TASK = "classification"

TASKS = {
    "intent": {
        "instruction": "Classify the intent of this customer message.",
        "template": "Customer message about the {thing}: {cue}.",
        "cues": {
            "refund": [
                "I want my money back",
                "please return the payment to my card",
                "I expect a full reimbursement",
            ],
            "cancellation": [
                "please cancel my booking",
                "I no longer want this, call it off",
                "stop the subscription today",
            ],
            "delivery_status": [
                "where is my parcel right now",
                "when will it be delivered",
                "the tracking page has not moved",
            ],
            "technical_issue": [
                "the app crashes when I log in",
                "the page shows an error code",
                "the upload keeps failing",
            ],
        },
    },
    "emotion": {
        "instruction": "Classify the emotion expressed in this diary entry.",
        "template": "Diary entry about the {thing}: {cue}.",
        "cues": {
            "joy": [
                "I could not stop smiling all day",
                "what a wonderful surprise it was",
                "I felt light and happy",
            ],
            "anger": [
                "I was furious with how it went",
                "it made my blood boil",
                "I slammed the door in rage",
            ],
            "fear": [
                "I was scared of what might happen",
                "my hands were shaking with dread",
                "I lay awake terrified",
            ],
            "sadness": [
                "I cried quietly for an hour",
                "everything felt grey and empty",
                "I miss how it used to be",
            ],
        },
    },
    "stance": {
        "instruction": "Classify the stance of this comment on the proposal.",
        "template": "Comment on the proposal for the {thing}: {cue}.",
        "cues": {
            "support": [
                "I am fully in favour of this plan",
                "count me as a yes",
                "this is exactly what we need",
            ],
            "oppose": ["I am against this plan", "this should be voted down", "I reject this idea entirely"],
            "undecided": [
                "I have not made up my mind",
                "I can see both sides here",
                "I need more details before deciding",
            ],
        },
    },
}


def schema_for(task: str) -> dict:
    labels = sorted(TASKS[task]["cues"])
    return {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": labels}},
        "required": ["label"],
        "additionalProperties": False,
    }


def build(n: int, seed: int) -> list[dict]:
    """``n`` examples, tasks and labels balanced round robin, texts seeded (deterministic)."""
    if n < 1:
        raise ValueError(f"classification needs at least 1 example, got {n}")
    rng = random.Random(f"{seed}|{TASK}")
    # The eval pool's entities ("telescope", "pet patient", ...): no post-training text names them.
    things = structured_pool.entity_labels("eval")
    pairs = [(t, label) for t in sorted(TASKS) for label in sorted(TASKS[t]["cues"])]
    out = []
    for i in range(n):
        task, label = pairs[i % len(pairs)]
        spec = TASKS[task]
        text = spec["template"].format(thing=rng.choice(things), cue=rng.choice(spec["cues"][label]))
        out.append(
            {
                "id": f"classify-{i:04d}",
                "name": f"classify_{task}",
                "task": task,
                "instruction": spec["instruction"],
                "schema": schema_for(task),
                "content": text,
                "label": label,
            }
        )
    return out


def messages(example: dict) -> list[dict]:
    return prompts.json_schema_messages(example["instruction"], example["schema"], example["content"])


def reference_answer(example: dict) -> str:
    return prompts.json_answer({"label": example["label"]})


def score_example(example: dict, generation_text: str) -> dict:
    """{parsed, correct, predicted, error}; an output without a JSON object is scored wrong."""
    value, error = prompts.extract_json(generation_text)
    if error is not None:
        return {"parsed": False, "correct": False, "predicted": None, "error": error}
    if not isinstance(value, dict):
        return {
            "parsed": False,
            "correct": False,
            "predicted": None,
            "error": f"expected a JSON object, got {type(value).__name__}",
        }
    predicted = value.get("label")
    correct = isinstance(predicted, str) and predicted == example["label"]
    error = (
        None
        if correct
        else (
            f"no 'label' key (keys: {sorted(value)[:10]})"
            if "label" not in value
            else f"label {predicted!r} is not {example['label']!r}"
        )
    )
    return {
        "parsed": True,
        "correct": correct,
        "predicted": predicted if isinstance(predicted, (str, int, float, bool)) else None,
        "error": error,
    }


def example_scores(score: dict) -> dict[str, float]:
    return {"label_accuracy": float(score["correct"]), "parse_rate": float(score["parsed"])}


def metrics(scores: list[dict]) -> dict[str, float]:
    if not scores:
        raise ValueError("no scored examples")
    per = [example_scores(s) for s in scores]
    return {m: sum(p[m] for p in per) / len(per) for m in METRICS}
