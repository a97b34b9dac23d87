"""What the evaluations show a model: the items post-training data must never show.

Training data must not contain them or a near-duplicate of one (the rule and its index:
``trellis.structured.disjoint``). The evaluation side knows its sets, so the list is built here,
from the benchmarks' own loaders; ``trellis.train.posttrain_data`` drops every candidate row that
shows one, and ``disjoint.check_posttrain_files`` checks the written files against the same index.
"""

from __future__ import annotations

import json
from functools import cache

from trellis.evaluate import bfcl
from trellis.evaluate import classification as cl
from trellis.evaluate import json_schema as js
from trellis.structured import pools as sp
from trellis.structured.disjoint import EvalIndex, EvalItem


def evaluation_items() -> list[EvalItem]:
    """What the evaluations show a model, for the rule: every schema of every locked JSON suite (v1
    and v2, with the source file, family and function each records), every function of every BFCL
    category the benchmark supports (its parameters both as the JSON mode converts them and as
    BFCL writes them, for prompt mode), the eval pool's function names and the classification
    benchmark's schemas."""
    items = []
    for suite in sorted(js.SUITES):
        locked, _ = js.load_locked(suite=suite)
        for e in locked:
            src = e["source"]
            items.append(
                EvalItem(
                    f"{suite} suite {e['id']} ({e['name']})",
                    schema=e["schema"],
                    function=src.get("function"),
                    source=src.get("source") or src.get("package"),
                    file=src.get("file"),
                    family=src.get("family"),
                )
            )
    for category in bfcl.SUPPORTED:
        entries = bfcl.load_category(category)
        if category in bfcl.MULTI_TURN:
            entries = _distinct_docs(entries)
        for entry in entries:
            for f in bfcl.prompt_functions(entry) + entry["functions"]:
                label = f"BFCL {entry['id']} function {f['name']}"
                items.append(EvalItem(label, schema=f.get("parameters"), function=f["name"]))
    items += [EvalItem(f"eval pool function {n}", function=n) for n in sp.all_function_names("eval")]
    items += [EvalItem(f"classification task {t}", schema=cl.schema_for(t)) for t in sorted(cl.TASKS)]
    return items


def _distinct_docs(entries: list[dict]) -> list[dict]:
    """Multi-turn entries reduced to their distinct function docs, each once, under the id of the
    first entry that shows it: every entry shows again the docs of its simulator classes (some
    44,000 docs in 800 entries, under 600 distinct), which would triple the index's size and
    its build time for nothing."""
    first: dict[str, tuple[str, dict]] = {}
    for entry in entries:
        for f in entry["functions"]:  # the prompt's docs and the held-out ones (miss_func)
            first.setdefault(json.dumps(f, sort_keys=True), (entry["id"], f))
    # Each doc both as the JSON mode would convert it and as BFCL writes it, like any entry's.
    return [{"id": id_, "prompt_docs": [f], "functions": [f]} for id_, f in first.values()]


@cache
def evaluation_index() -> EvalIndex:
    """The index of ``evaluation_items`` (built once per process: BFCL's files take seconds)."""
    return EvalIndex(evaluation_items())
