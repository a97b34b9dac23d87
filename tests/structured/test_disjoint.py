"""The schemas and functions of the SFT/DPO data are disjoint from every evaluation schema and
function, so results on "unseen" schemas mean what they say.

Train side: what the demo's post-training files actually contain (every schema and function
definition in their prompts, parsed back out, real-schema rows included), and the names/hashes
their manifest records. Eval side: the whole locked JSON suite (real_world included), the
extraction and classification benchmarks at the study's sizes, and every function of every BFCL
category the benchmark supports.

Near-duplicates (``trellis.structured.disjoint``'s rule: same normal form, similar property
names, same function name, same source file or family) are checked by ``check_posttrain_files``,
the function the study's build_posttrain_data job runs on its own files; here it runs on the
demo's files, on copies with a planted leak (it must fail, naming the row and the item), and on
any files TRELLIS_POSTTRAIN_DIR points at (e.g. a copy of the study's results/<run>/posttrain).
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest
import yaml

from trellis.core.io import read_jsonl
from trellis.evaluate import bfcl
from trellis.evaluate import classification as cl
from trellis.evaluate import extraction as ex
from trellis.evaluate import json_schema as js
from trellis.evaluate.identities import evaluation_index
from trellis.structured import disjoint as dj
from trellis.structured import pools as sp
from trellis.structured import prompts
from trellis.structured import schema_sources as ss
from trellis.structured.disjoint import check_disjoint, schema_hash, shows_identity
from trellis.structured.examples import build_sft
from trellis.train import posttrain_data

ROOT = Path(__file__).resolve().parents[2]
CONFIG = yaml.safe_load((ROOT / "config/config.yaml").read_text())
STUDY = yaml.safe_load((ROOT / "config/study.yaml").read_text())


def _schema_in(user_content: str) -> dict:
    # json_schema_messages writes "JSON Schema:\n<compact schema>\n\nContent:\n..."
    head = user_content.split("JSON Schema:\n", 1)[1]
    return json.JSONDecoder().raw_decode(head)[0]


def _functions_in(system_content: str) -> list[dict]:
    body = system_content.split("Functions:\n", 1)[1].rsplit("\nReply with ONLY", 1)[0]
    return [json.loads(line) for line in body.splitlines()]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo's post-training files as its build_posttrain_data writes them (without the tokenizer
    fit, which needs the demo's trained tokenizer): (folder, manifest)."""
    d = tmp_path_factory.mktemp("posttrain")
    pt = CONFIG["posttrain"]
    manifest = posttrain_data.write_posttrain_data(
        d / "sft.jsonl",
        d / "dpo.jsonl",
        pt["sft_examples"],
        pt["dpo_pairs"],
        CONFIG["seed"],
        manifest_path=d / "manifest.json",
        real_schemas=pt["real_schemas"],
    )
    return d, manifest


@pytest.fixture(scope="module")
def train(demo):
    """Identities used by the demo's post-training data: (schema names, schema hashes, function names)."""
    d, manifest = demo
    pt = CONFIG["posttrain"]
    hashes, functions = (
        set(manifest["train_pool"]["schema_hashes"]),
        set(manifest["train_pool"]["function_names"]),
    )
    functions |= set(manifest["train_pool_all_function_names"])
    names = set(manifest["train_pool"]["schema_names"])
    n_rows = 0
    for path in (d / "sft.jsonl", d / "dpo.jsonl"):
        for row in read_jsonl(path):
            n_rows += 1
            names.add(row["item"])
            system, user = row["prompt"][0]["content"], row["prompt"][1]["content"]
            if row["task"] == "function_call":
                for f in _functions_in(system):
                    functions.add(f["name"])
                    hashes.add(schema_hash(f["parameters"]))
            else:
                hashes.add(schema_hash(_schema_in(user)))
    real = pt["real_schemas"]["sft_examples"] + pt["real_schemas"]["dpo_pairs"]
    dropped = sum(
        n
        for stage in ("sft", "dpo")
        for c in manifest["disjoint"]["dropped"][stage].values()
        for n in c.values()
    )
    assert n_rows == pt["sft_examples"] + pt["dpo_pairs"] + real - dropped
    assert manifest["real_schemas"]["rows"] == real  # the demo's real-schema rows all pass the rule
    # The whole train pool, beyond what these sizes happened to draw (the study draws more).
    for item in sp.schemas("train", CONFIG["seed"], 400):
        names.add(item["name"])
        hashes.add(schema_hash(item["schema"]))
    return names, hashes, functions


@pytest.fixture(scope="module")
def evaluation():
    names, hashes, functions = set(), set(), set()
    locked, _ = js.load_locked()
    for e in locked:
        names.add(e["name"])
        hashes.add(schema_hash(e["schema"]))
        if e["source"].get("function"):
            functions.add(e["source"]["function"])
    n_extract = max(CONFIG["evaluate"]["extraction"]["examples"], STUDY["evaluate"]["extraction"]["examples"])
    for seed in {CONFIG["seed"], STUDY["seed"]}:
        for e in ex.build(n_extract, seed):
            names.add(e["name"])
            hashes.add(schema_hash(e["schema"]))
    for task in cl.TASKS:
        names.add(f"classify_{task}")
        hashes.add(schema_hash(cl.schema_for(task)))
    for category in bfcl.SUPPORTED:
        for entry in bfcl.load_category(category):
            for f in bfcl.prompt_functions(entry):
                functions.add(f["name"])
                hashes.add(schema_hash(f["parameters"]))
    return names, hashes, functions


def test_post_training_data_is_disjoint_from_every_evaluation(train, evaluation):
    (tn, th, tf), (en, eh, ef) = train, evaluation
    assert tn and th and tf and en and eh and ef
    check_disjoint(tn, en)  # schema / item names
    check_disjoint(th, eh)  # schema and parameter-schema hashes
    check_disjoint(tf, ef)  # function names (train pool, all of it, vs BFCL and real_world)
    check_disjoint(tf, en)


def test_classification_tasks_differ_from_the_trained_ones():
    trained = {r["item"] for r in build_sft(200, 1) if r["task"] == "classification"}
    assert trained and not trained & {f"classify_{t}" for t in cl.TASKS}
    trained_labels = {
        label
        for r in build_sft(200, 1)
        if r["task"] == "classification"
        for label in _schema_in(r["prompt"][1]["content"])["properties"]["label"]["enum"]
    }
    assert not trained_labels & {label for t in cl.TASKS.values() for label in t["cues"]}


def test_the_check_catches_an_overlap():
    # The test above is only worth something if an overlap is caught: a train function that
    # shares a name with a BFCL function (the train pool once had search_hotels) must fail.
    with pytest.raises(ValueError, match="overlap in 1 item"):
        check_disjoint({"search_hotels", "get_lodge"}, {"search_hotels"})
    assert "search_hotels" not in sp.all_function_names("train")
    prompt = prompts.json_schema_messages("x", {"type": "object"}, "y")[1]["content"]
    assert _schema_in(prompt) == {"type": "object"}


def test_check_disjoint_names_the_overlap():
    with pytest.raises(ValueError, match="get_book"):
        check_disjoint({"get_book", "a"}, {"get_book", "b"})
    check_disjoint({"a"}, {"b"})  # no overlap: no error


def test_a_function_is_shown_by_its_name_or_its_parameter_schema():
    params = {"type": "object", "properties": {"city": {"type": "string"}}}
    f = {"name": "get_weather", "parameters": params}
    assert shows_identity(f, {"get_weather"}, set())
    assert shows_identity(dict(f, name="renamed"), set(), {schema_hash(dict(reversed(params.items())))})
    assert not shows_identity(f, {"other"}, {schema_hash({"type": "object"})})


# --- the near-duplicate rule on written post-training files -------------------------------------


def _write_rows(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _planted(demo, tmp_path, row: dict, at: int = 7) -> tuple[Path, Path, Path]:
    """Copies of the demo's files with ``row`` inserted as SFT line ``at`` (1-based)."""
    d, _ = demo
    rows = list(read_jsonl(d / "sft.jsonl"))
    rows.insert(at - 1, row)
    _write_rows(tmp_path / "sft.jsonl", rows)
    shutil.copy(d / "dpo.jsonl", tmp_path / "dpo.jsonl")
    shutil.copy(d / "manifest.json", tmp_path / "manifest.json")
    return tmp_path / "sft.jsonl", tmp_path / "dpo.jsonl", tmp_path / "manifest.json"


def _json_row(schema: dict, item: str = "renamed_thing", origin: dict | None = None) -> dict:
    row = {
        "prompt": prompts.json_schema_messages("Fill in the record.", schema, "Some content."),
        "completion": [{"role": "assistant", "content": "{}"}],
        "task": "json_schema",
        "item": item,
        "source": "generated",
    }
    return row | ({"origin": origin} if origin else {})


@pytest.fixture(scope="module")
def v2_suite():
    locked, _ = js.load_locked(suite="v2")
    return locked


def _renamed(schema: dict) -> dict:
    """The schema with new titles and descriptions everywhere and its keys re-cased (camelCase <->
    snake_case): another schema to schema_hash, the same one to a model."""

    def recase(key: str) -> str:
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in key).lstrip("_")
        return (
            snake
            if snake != key
            else "".join(w.capitalize() if i else w for i, w in enumerate(key.split("_")))
        )

    def walk(node):
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        out = {}
        for k, v in node.items():
            if k in ("title", "description"):
                out[k] = "A thing we made up."
            elif k == "properties":
                out[k] = {recase(p): walk(s) for p, s in v.items()}
            elif k == "required":
                out[k] = [recase(p) for p in reversed(v)]
            else:
                out[k] = walk(v)
        return out

    return walk(schema) | {"title": "Renamed record"}


def test_the_demo_post_training_files_pass_the_check(demo):
    d, manifest = demo
    report = dj.check_posttrain_files(
        d / "sft.jsonl", d / "dpo.jsonl", d / "manifest.json", evaluation_index()
    )
    assert report["rows"] == manifest["sft"]["rows"] + manifest["dpo"]["rows"]
    assert report["real_schema_files"] == sum(
        len(s["files"]) for s in manifest["real_schemas"]["splits"]["train"].values()
    )
    assert report["real_schema_files"] > 0 and report["eval_items"] > 5000


def test_a_planted_v2_schema_renamed_into_sft_data_fails_the_check_naming_it(demo, v2_suite, tmp_path):
    # A suite schema with new titles/descriptions, re-cased keys and required in another order.
    e = next(
        e
        for e in v2_suite
        if e["source"]["source"] == "cloudformation" and len(e["schema"]["properties"]) >= 3
    )
    leak = _renamed(e["schema"])
    assert schema_hash(leak) != schema_hash(e["schema"]) and set(leak["properties"]) != set(
        e["schema"]["properties"]
    )
    files = _planted(demo, tmp_path, _json_row(leak), at=7)
    with pytest.raises(
        dj.LeakError,
        match=rf"sft\.jsonl, line 7, item 'renamed_thing': same_normal_form as v2 suite {e['id']}",
    ):
        dj.check_posttrain_files(*files, evaluation_index())
    # The clean files (the same copies without the planted row) pass.
    d, _ = demo
    shutil.copy(d / "sft.jsonl", files[0])
    dj.check_posttrain_files(*files, evaluation_index())


def test_a_v2_schema_with_one_key_renamed_is_caught_by_its_property_names(demo, v2_suite, tmp_path):
    # One of n keys renamed to an unrelated word: Jaccard (n-1)/(n+1) >= 0.8 from n = 9.
    e = next(e for e in v2_suite if len(e["schema"]["properties"]) >= 9)
    schema = json.loads(json.dumps(e["schema"]))
    first = next(iter(schema["properties"]))
    schema["properties"]["zz_unrelated"] = schema["properties"].pop(first)
    schema["required"] = [k for k in schema.get("required", []) if k != first]
    files = _planted(demo, tmp_path, _json_row(schema), at=1)
    with pytest.raises(
        dj.LeakError,
        match=rf"line 1, item 'renamed_thing': similar_names as v2 suite {e['id']} .*Jaccard 0\.8",
    ):
        dj.check_posttrain_files(*files, evaluation_index())


def test_a_v2_schema_nested_in_a_bigger_one_is_caught(demo, v2_suite, tmp_path):
    e = next(e for e in v2_suite if e["category"] == "nested")
    outer = {"type": "object", "properties": {"job": _renamed(e["schema"]), "owner": {"type": "string"}}}
    files = _planted(demo, tmp_path, _json_row(outer), at=3)
    with pytest.raises(dj.LeakError, match=rf"line 3.*same_normal_form as v2 suite {e['id']} .*nested"):
        dj.check_posttrain_files(*files, evaluation_index())


def test_a_renamed_bfcl_function_in_sft_data_is_caught(demo, tmp_path):
    entry = next(
        e
        for e in bfcl.load_category("simple")
        if len(bfcl.prompt_functions(e)[0]["parameters"]["properties"]) >= 2
    )
    f = bfcl.prompt_functions(entry)[0]
    renamed = dict(f, name="totally_new_name", description="Something else.")
    row = {
        "prompt": prompts.function_call_messages("Do it.", [renamed]),
        "completion": [{"role": "assistant", "content": "[]"}],
        "task": "function_call",
        "item": "totally_new_name",
        "source": "xlam",
    }
    files = _planted(demo, tmp_path, row, at=2)
    with pytest.raises(
        dj.LeakError, match=rf"line 2, item 'totally_new_name': same_normal_form as BFCL {entry['id']}"
    ):
        dj.check_posttrain_files(*files, evaluation_index())
    # And by name alone, whatever its parameters.
    other = {"name": f["name"], "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}
    row["prompt"] = prompts.function_call_messages("Do it.", [other])
    files = _planted(demo, tmp_path, row, at=2)
    with pytest.raises(dj.LeakError, match=rf"function_name as BFCL .* function {f['name']}"):
        dj.check_posttrain_files(*files, evaluation_index())


def test_a_row_from_a_file_or_family_the_suite_reads_is_caught(demo, v2_suite, tmp_path):
    e = next(e for e in v2_suite if e["source"]["source"] == "schemastore")
    unrelated = {"type": "object", "properties": {"qq_a": {"type": "string"}, "qq_b": {"type": "integer"}}}
    origin = {k: e["source"][k] for k in ("source", "file", "family")}
    files = _planted(demo, tmp_path, _json_row(unrelated, origin=origin))
    with pytest.raises(dj.LeakError, match=rf"same_file as v2 suite {e['id']}"):
        dj.check_posttrain_files(*files, evaluation_index())
    # Another file of the same family (check-jsonschema shares SchemaStore's families).
    files = _planted(
        demo, tmp_path, _json_row(unrelated, origin=origin | {"source": "check-jsonschema", "file": "x.json"})
    )
    with pytest.raises(dj.LeakError, match=r"same_family as v2 suite"):
        dj.check_posttrain_files(*files, evaluation_index())


def test_a_manifest_listing_an_eval_file_fails_the_check(demo, v2_suite, tmp_path):
    e = next(e for e in v2_suite if e["source"]["source"] == "cloudformation")
    d, manifest = demo
    sft, dpo, path = _planted(
        demo, tmp_path, _json_row({"type": "object", "properties": {"qq": {"type": "string"}}})
    )
    _write_rows(sft, list(read_jsonl(d / "sft.jsonl")))
    m = json.loads(json.dumps(manifest))
    train = m["real_schemas"]["splits"]["train"].setdefault("cloudformation", {"families": [], "files": {}})
    train["files"][e["source"]["file"]] = e["source"]["family"]
    path.write_text(json.dumps(m))
    with pytest.raises(
        dj.LeakError,
        match=rf"manifest\.json: real-schema file cloudformation:{e['source']['file']}: same_file",
    ):
        dj.check_posttrain_files(sft, dpo, path, evaluation_index())


def test_a_row_the_check_cannot_read_is_an_error_naming_it(demo, tmp_path):
    row = {"prompt": [{"role": "system", "content": "x"}, {"role": "user", "content": "y"}], "item": "odd"}
    files = _planted(demo, tmp_path, row, at=4)
    with pytest.raises(ValueError, match=r"sft\.jsonl, line 4 \(item 'odd'\): the prompt shows neither"):
        dj.check_posttrain_files(*files, evaluation_index())


@pytest.mark.skipif(not os.environ.get("TRELLIS_POSTTRAIN_DIR"), reason="TRELLIS_POSTTRAIN_DIR not set")
def test_post_training_files_elsewhere_pass_the_check():
    """The study's files (results/<run>/posttrain, or a copy): its build_posttrain_data job runs the
    same check, so this is for data built before the check existed or copied from elsewhere."""
    d = Path(os.environ["TRELLIS_POSTTRAIN_DIR"])
    dj.check_posttrain_files(d / "sft.jsonl", d / "dpo.jsonl", d / "manifest.json", evaluation_index())


# --- the rule's parts ---------------------------------------------------------------------------


def test_the_normal_form_drops_annotations_and_key_style_but_keeps_data():
    a = {
        "title": "A",
        "type": ["string", "null"],
        "properties": {"userName": {"type": "string", "description": "x"}, "title": {"type": "string"}},
        "required": ["userName", "title"],
    }
    b = {
        "type": ["null", "string"],
        "properties": {"user_name": {"type": "string", "default": "bob"}, "Title": {"type": "string"}},
        "required": ["title", "user_name"],
        "description": "other words",
    }
    assert dj.normal_form(a) == dj.normal_form(b) and dj.normal_hash(a) == dj.normal_hash(b)
    assert "title" in dj.normal_form(a)["properties"]  # a property named "title" is data, kept
    # enum values and bounds are the schema's content: a change makes another schema
    assert dj.normal_hash({"enum": ["a", "b"]}) != dj.normal_hash({"enum": ["a", "c"]})
    assert dj.normal_hash({"type": "integer", "maximum": 3}) != dj.normal_hash(
        {"type": "integer", "maximum": 4}
    )


def test_small_name_sets_are_not_compared_by_jaccard():
    idx = dj.EvalIndex([dj.EvalItem("e", schema={"type": "object", "properties": {"a": {}, "b": {}}})])
    assert idx.similar(frozenset({"a", "b"})) is None  # 2 names: only rule 1 applies
    assert idx.schema_leak({"type": "object", "properties": {"a": {"type": "string"}, "b": {}}}) is None
    assert (
        idx.schema_leak({"type": "object", "properties": {"A": {}, "b": {}}, "title": "x"}).kind
        == "same_normal_form"
    )


def test_the_prefix_filtered_index_finds_exactly_what_brute_force_finds():
    rng = random.Random(5)
    vocab = [f"n{i}" for i in range(40)] + ["name", "type", "id", "value"] * 5  # some names are common
    eval_sets = {frozenset(rng.sample(vocab, rng.randint(1, 12))) for _ in range(400)}
    items = [
        dj.EvalItem(f"e{i}", schema={"type": "object", "properties": dict.fromkeys(s, {})})
        for i, s in enumerate(eval_sets)
    ]
    idx = dj.EvalIndex(items)
    labels = {it.label: frozenset(it.schema["properties"]) for it in items}
    for _ in range(600):
        probe = frozenset(rng.sample(vocab, rng.randint(1, 14)))
        brute = max(
            (dj.jaccard(probe, s) for s in labels.values() if len(s) >= dj.MIN_NAMES),
            default=0.0,
        )
        hit = idx.similar(probe)
        if len(probe) < dj.MIN_NAMES or brute < dj.JACCARD_MIN:
            assert hit is None, (probe, hit)
        else:
            assert hit is not None and hit[1] == pytest.approx(brute), (probe, hit, brute)
            assert dj.jaccard(probe, labels[hit[0]]) == pytest.approx(brute)


def test_the_parser_reads_back_what_the_prompt_builders_write():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    fns = [
        {"name": "f", "parameters": schema},
        {"name": "g", "description": "two\nlines? no: one", "parameters": {}},
    ]
    assert dj.shown_in(prompts.json_schema_messages("Do.", schema, "JSON Schema:\nnot this")) == (
        [schema],
        [],
    )
    assert dj.shown_in(prompts.function_call_messages("Call f.", fns)) == ([], fns)


def test_every_real_schema_file_of_the_demo_is_on_the_train_side_and_none_is_the_suites(demo, v2_suite):
    _, manifest = demo
    splits = manifest["real_schemas"]["splits"]
    assert set(splits["train"]) <= {"schemastore", "cloudformation", "check-jsonschema"}
    for source, used in splits["train"].items():
        for file, fam in used["files"].items():
            assert ss.split_of(source, file) == "train" and ss.family(source, file) == fam
            assert file not in splits["eval"].get(source, {}).get("files", {})
        eval_families = {
            f
            for s, e in splits["eval"].items()
            if dj.family_group(s) == dj.family_group(source)
            for f in e["families"]
        }
        assert not set(used["families"]) & eval_families
    assert {e["source"]["file"] for e in v2_suite if e["source"]["source"] == "cloudformation"} == set(
        splits["eval"]["cloudformation"]["files"]
    )
