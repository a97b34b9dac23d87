"""The schemas and functions of the SFT/DPO data are disjoint from every evaluation schema and
function, so results on "unseen" schemas mean what they say.

Train side: what the post-training files actually contain (every schema and function definition
in their prompts, parsed back out), and the names/hashes their manifest records. Eval side: the
whole locked JSON suite (real_world included), the extraction and classification benchmarks at
the study's sizes, and every function of every BFCL category the benchmark supports.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from trellis.core.io import read_jsonl
from trellis.evaluate import bfcl
from trellis.evaluate import classification as cl
from trellis.evaluate import extraction as ex
from trellis.evaluate import json_schema as js
from trellis.structured import pools as sp
from trellis.structured import prompts
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
def train(tmp_path_factory):
    """Identities used by the demo's post-training data: (schema names, schema hashes, function names)."""
    d = tmp_path_factory.mktemp("posttrain")
    pt = CONFIG["posttrain"]
    manifest = posttrain_data.write_posttrain_data(
        d / "sft.jsonl", d / "dpo.jsonl", pt["sft_examples"], pt["dpo_pairs"], CONFIG["seed"]
    )
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
    assert n_rows == pt["sft_examples"] + pt["dpo_pairs"]
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
