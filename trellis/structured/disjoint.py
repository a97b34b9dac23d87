"""Training and evaluation data stay disjoint: the rule, and the identities it compares.

The study asks whether a model generalizes to *unseen* schemas and function signatures, so
nothing a model is post-trained on or shown as a few-shot example may be something it is
evaluated on. Two items are the same when they share an identity: a name (schema or item
name, function name) or a schema hash (``schema_hash``; a renamed copy of a schema, or of a
function's parameter schema, is still the same schema).

Where the rule is enforced:

- generated data, by construction: the train and eval pools of ``trellis.structured.pools`` are
  built from disjoint entities (checked when that module is imported);
- public post-training sets: ``trellis.train.posttrain_data`` drops every example that shows a
  function an evaluation shows (``shows_identity`` against ``trellis.evaluate.identities``);
- few-shot examples: ``trellis.evaluate.dispatch`` checks that no shot (drawn from the train
  pool) is an evaluated example (``check_disjoint``);
- end to end, on the files post-training reads: ``tests/structured/test_disjoint.py``.
"""

from __future__ import annotations

import hashlib
import json


def schema_hash(schema: dict) -> str:
    """Identity of a schema: sha256 of its canonical JSON (sorted keys, no whitespace)."""
    return hashlib.sha256(json.dumps(schema, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def shows_identity(function: dict, names: set[str], hashes: set[str]) -> bool:
    """Whether a function definition has one of these identities: its name or its parameter schema's hash."""
    return function["name"] in names or schema_hash(function["parameters"]) in hashes


def check_disjoint(train_names: set, eval_names: set) -> None:
    """Raise ValueError naming the overlap if any train identity (name or hash) is an eval one."""
    overlap = set(train_names) & set(eval_names)
    if overlap:
        shown = sorted(overlap)
        raise ValueError(f"train and eval pools overlap in {len(shown)} item(s): {shown[:20]}")
