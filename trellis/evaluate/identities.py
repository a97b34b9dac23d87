"""What the evaluations show a model, as identities: function names and schema hashes.

Training data must not contain them (the rule: ``trellis.structured.disjoint``);
``trellis.train.posttrain_data`` drops every public example that shows one. The evaluation side
knows its sets, so the list is built here, from the benchmarks' own loaders.
"""

from __future__ import annotations

from trellis.evaluate import bfcl
from trellis.evaluate import json_schema as js
from trellis.structured import pools as sp
from trellis.structured.disjoint import schema_hash


def eval_function_identities() -> tuple[set[str], set[str]]:
    """Names and parameter-schema hashes of every function or schema an evaluation shows a model.

    The eval pool's functions, the locked JSON suite's schemas (and the functions some were
    taken from) and every supported BFCL category's functions: a public training example that
    uses one of them would make that benchmark item seen (tests/structured/test_disjoint.py's sets).
    """
    names, hashes = set(sp.all_function_names("eval")), set()
    locked, _ = js.load_locked()
    for e in locked:
        hashes.add(schema_hash(e["schema"]))
        if e["source"].get("function"):
            names.add(e["source"]["function"])
    for category in bfcl.SUPPORTED:
        for entry in bfcl.load_category(category):
            for f in bfcl.prompt_functions(entry):
                names.add(f["name"])
                hashes.add(schema_hash(f["parameters"]))
    return names, hashes
