"""What the evaluations show a model: the items post-training data is checked against."""

from __future__ import annotations

from trellis.evaluate import bfcl
from trellis.evaluate import json_schema as js
from trellis.evaluate.identities import evaluation_index, evaluation_items
from trellis.structured import pools as sp
from trellis.structured.disjoint import schema_hash


def test_evaluation_items_cover_both_suites_bfcl_and_the_eval_pool():
    items = evaluation_items()
    functions = {i.function for i in items if i.function}
    hashes = {schema_hash(i.schema) for i in items if i.schema is not None}
    assert set(sp.all_function_names("eval")) <= functions
    simple = bfcl.load_category("simple")
    assert {f["name"] for e in simple for f in bfcl.prompt_functions(e)} <= functions
    for suite in js.SUITES:
        locked, _ = js.load_locked(suite=suite)
        assert {schema_hash(e["schema"]) for e in locked} <= hashes, suite
    # The generated train data passes its own filter.
    assert not functions & set(sp.all_function_names("train"))
    assert evaluation_index() is evaluation_index()  # built once per process
