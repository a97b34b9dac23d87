"""Post-training data files: generated rows, real-schema rows and public sets (xLAM), fitted to length,
the disjointness rule applied, and the manifest."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import pytest

from trellis.core import io
from trellis.evaluate.identities import evaluation_index
from trellis.structured import disjoint as dj
from trellis.structured import pools as sp
from trellis.structured import prompts
from trellis.structured import schema_sources as ss
from trellis.structured.disjoint import EvalIndex, EvalItem, check_disjoint, schema_hash
from trellis.structured.examples import build_sft, check_call_answer
from trellis.train import posttrain_data as pd
from trellis.train import real_schemas as rs

NO_EVAL = EvalIndex([])


def names_index(names) -> EvalIndex:
    return EvalIndex(EvalItem(f"eval function {n}", function=n) for n in names)


def test_write_posttrain_data(tmp_path):
    m = pd.write_posttrain_data(
        tmp_path / "sft.jsonl",
        tmp_path / "dpo.jsonl",
        40,
        20,
        seed=2,
        manifest_path=tmp_path / "manifest.json",
    )
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert on_disk["sft"]["rows"] == 40 and on_disk["dpo"]["rows"] == 20
    for key in ("sft", "dpo"):
        data = (tmp_path / f"{key}.jsonl").read_bytes()
        assert hashlib.sha256(data).hexdigest() == m[key]["sha256"] == on_disk[key]["sha256"]
    rows = io.read_jsonl(tmp_path / "sft.jsonl", required=("prompt", "completion"))

    # the generated rows that pass the disjointness rule, in one seeded file order
    def canonical(rows):
        return sorted(json.dumps(r, sort_keys=True) for r in rows)

    index = evaluation_index()
    clean = [r for r in build_sft(40, 2) if index.row_leak(r) is None]
    assert canonical(rows) == canonical(clean)
    assert sum(m["disjoint"]["dropped"]["sft"].get("generated", {}).values()) == 40 - len(clean)
    assert m["real_schemas"] is None and m["disjoint"]["jaccard_min"] == 0.8
    assert all(r["source"] == "generated" for r in rows) and m["public"] == {}
    assert m["sft"]["tokens"] is None and m["tokenizer"] is None  # no tokenizer given: nothing fitted
    pool = on_disk["train_pool"]
    assert (
        pool["schema_names"]
        and pool["function_names"]
        and len(pool["schema_hashes"]) <= len(pool["schema_names"])
    )
    eval_hashes = {schema_hash(s["schema"]) for s in sp.schemas("eval", 2, 100)}
    check_disjoint(set(pool["schema_hashes"]), eval_hashes)
    check_disjoint(set(pool["function_names"]), set(sp.all_function_names("eval")))
    assert not list(tmp_path.glob(".*tmp*"))


def test_read_jsonl_names_file_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"prompt": []}\n{"x": 1}\n')
    with pytest.raises(KeyError, match=r"bad.jsonl, line 2"):
        io.read_jsonl(p, required=("prompt",))


# --- public sets (xLAM), offline: a local file in the published format stands in for the hub ------


def xlam_row(i, query, tools, answers):
    # The published file stores tools and answers as JSON strings inside a JSON array.
    return {"id": i, "query": query, "tools": json.dumps(tools), "answers": json.dumps(answers)}


WEATHER = {
    "name": "get_weather_now",
    "description": "Current weather.",
    "parameters": {
        "city": {"type": "str", "description": "City name."},
        "units": {"type": "str, optional", "description": "metric or imperial", "default": "metric"},
    },
}
SUM = {
    "name": "sum_numbers",
    "description": "Add numbers.",
    "parameters": {
        "values": {"type": "List[int]", "description": "The numbers."},
        "round_to": {"type": "Optional[int]", "description": "Digits."},
    },
}


@pytest.fixture
def xlam_file(tmp_path):
    eval_name = sp.all_function_names("eval")[0]
    rows = [
        xlam_row(
            0, "Weather in Oslo?", [WEATHER], [{"name": "get_weather_now", "arguments": {"city": "Oslo"}}]
        ),
        xlam_row(
            1,
            "Sum 1, 2 and weather in Rome",
            [SUM, WEATHER],
            [
                {"name": "sum_numbers", "arguments": {"values": [1, 2]}},
                {"name": "get_weather_now", "arguments": {"city": "Rome", "units": "imperial"}},
            ],
        ),
        xlam_row(
            2,
            "Call back",
            [{"name": "cb", "description": "", "parameters": {"fn": {"type": "Callable"}}}],
            [{"name": "cb", "arguments": {"fn": "x"}}],
        ),
        xlam_row(
            3,
            "Eval function",
            [dict(WEATHER, name=eval_name)],
            [{"name": eval_name, "arguments": {"city": "x"}}],
        ),
        xlam_row(4, "Bad argument", [SUM], [{"name": "sum_numbers", "arguments": {"values": "1,2"}}]),
        xlam_row(5, "Unknown function", [WEATHER], [{"name": "get_time", "arguments": {}}]),
        {"id": 6, "query": "no tools"},
        xlam_row(
            7, "Sum 4 and 5", [SUM], [{"name": "sum_numbers", "arguments": {"values": [4, 5], "round_to": 1}}]
        ),
        xlam_row(
            8, "Weather in Lima?", [WEATHER], [{"name": "get_weather_now", "arguments": {"city": "Lima"}}]
        ),
    ]
    path = tmp_path / "xlam_function_calling_60k.json"
    path.write_text(json.dumps(rows))
    return path


def test_xlam_types_become_json_schema():
    assert pd.xlam_parameter_schema("str") == ({"type": "string"}, False)
    assert pd.xlam_parameter_schema("int, optional") == ({"type": "integer"}, True)
    assert pd.xlam_parameter_schema("Optional[float]") == ({"type": "number"}, True)
    assert pd.xlam_parameter_schema("List[Dict[str, Any]]") == (
        {"type": "array", "items": {"type": "object"}},
        False,
    )
    assert pd.xlam_parameter_schema("Callable")[0] is None
    f = pd.xlam_function(SUM)
    assert f["parameters"] == {
        "type": "object",
        "required": ["values"],
        "properties": {
            "values": {"type": "array", "items": {"type": "integer"}, "description": "The numbers."},
            "round_to": {"type": "integer", "description": "Digits."},
        },
    }
    assert pd.xlam_function(WEATHER)["parameters"]["required"] == ["city"]  # units has a default
    with pytest.raises(ValueError, match="cb.fn"):
        pd.xlam_function({"name": "cb", "parameters": {"fn": {"type": "Callable"}}})


def test_xlam_examples_keep_valid_calls_and_count_every_skip(xlam_file):
    kept, stats = pd.xlam_examples(xlam_file, names_index(sp.all_function_names("eval")))
    assert [k["item"] for k in kept] == ["xlam-0", "xlam-1", "xlam-7", "xlam-8"]
    assert stats["rows"] == 9 and stats["kept"] == 4
    assert stats["skipped"] == {
        "arguments_invalid": 1,
        "evaluation_function": 1,
        "malformed": 1,
        "unknown_function": 1,
        "unsupported_parameter_type": 1,
    }
    assert stats["evaluation_rules"] == {"function_name": 1}
    assert stats["unsupported_types"] == {"Callable": 1}
    parallel = kept[1]
    assert len(parallel["answer"]) == 2 and [f["name"] for f in parallel["functions"]] == [
        "sum_numbers",
        "get_weather_now",
    ]
    assert parallel["messages"] == prompts.function_call_messages(
        "Sum 1, 2 and weather in Rome", parallel["functions"]
    )
    # a parameter schema an evaluation shows is caught by its normal form as well as by name: here
    # BFCL-like, with other descriptions and a default (annotations the rule ignores)
    params = pd.xlam_function(WEATHER)["parameters"]
    shown = {
        **params,
        "properties": {k: {"type": "string", "description": "?"} for k in params["properties"]},
    }
    kept, stats = pd.xlam_examples(xlam_file, EvalIndex([EvalItem("BFCL weather", schema=shown)]))
    assert stats["skipped"]["evaluation_function"] == 5  # every row showing WEATHER: 0, 1 (parallel), 3, 5, 8
    assert stats["evaluation_rules"] == {"same_normal_form": 5}
    # ... and by property names: SUM's parameters plus two more (3 of 4 names in common is 0.75,
    # below the rule's 0.8: kept; SUM's own names: caught)
    wider = {"type": "object", "properties": dict.fromkeys(["values", "round_to", "scale", "unit"], {})}
    alike = {"type": "object", "properties": dict.fromkeys(["values", "round_to", "scale"], {})}
    assert (
        pd.xlam_examples(xlam_file, EvalIndex([EvalItem("w", schema=wider)]))[1]["skipped"].get(
            "evaluation_function", 0
        )
        == 0
    )
    sum_with_scale = dict(SUM, parameters=dict(SUM["parameters"], scale={"type": "int", "default": 1}))
    path = xlam_file.with_name("alike.json")
    path.write_text(
        json.dumps(
            [xlam_row(0, "Sum", [sum_with_scale], [{"name": "sum_numbers", "arguments": {"values": [1]}}])]
        )
    )
    assert pd.xlam_examples(path, EvalIndex([EvalItem("a", schema=alike)]))[1]["evaluation_rules"] == {
        "similar_names": 1
    }


def test_xlam_file_errors_are_named(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="x.json"):
        pd.xlam_examples(bad, NO_EVAL)
    bad.write_text('{"query": "a"}')
    with pytest.raises(ValueError, match="JSON array"):
        pd.xlam_examples(bad, NO_EVAL)


def test_build_public_splits_sft_and_dpo(xlam_file):
    spec = {"kind": "xlam", "sft_examples": 2, "dpo_pairs": 2}
    sft, dpo, stats = pd.build_public("xlam", spec, xlam_file, 3, NO_EVAL)
    assert len(sft) == 2 and len(dpo) == 2 and stats["kept"] == 5  # the eval name is not excluded here
    assert not {r["item"] for r in sft} & {r["item"] for r in dpo}
    assert all(r["source"] == "xlam" and r["task"] == "function_call" for r in sft + dpo)
    for r in dpo:
        fns = [json.loads(line) for line in r["prompt"][0]["content"].splitlines()[1:-1]]
        expected = json.loads(r["chosen"][0]["content"])
        assert check_call_answer(r["chosen"][0]["content"], fns, expected) is None
        assert check_call_answer(r["rejected"][0]["content"], fns, expected) is not None
    assert pd.build_public("xlam", spec, xlam_file, 3, NO_EVAL)[0] == sft  # deterministic
    with pytest.raises(ValueError, match="posttrain.public.xlam"):
        pd.build_public("xlam", dict(spec, sft_examples=5), xlam_file, 3, NO_EVAL)


def test_fetch_public_file_offline(xlam_file, tmp_path, monkeypatch):
    import huggingface_hub

    calls = []

    def fake_download(repo_id, filename, revision, repo_type, **hub_options):
        calls.append((repo_id, filename, revision, repo_type))
        return str(xlam_file)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    out = tmp_path / "downloads" / "xlam"
    info = pd.fetch_public_file(
        "Salesforce/xlam-function-calling-60k", "main", "xlam_function_calling_60k.json", out
    )
    assert calls == [
        ("Salesforce/xlam-function-calling-60k", "xlam_function_calling_60k.json", "main", "dataset")
    ]
    assert (out / "xlam_function_calling_60k.json").read_bytes() == xlam_file.read_bytes()
    assert info["sha256"] == hashlib.sha256(xlam_file.read_bytes()).hexdigest()
    assert json.loads((out / "fetch.json").read_text()) == info


@pytest.mark.parametrize("status", [None, 401, 403])
def test_a_gated_public_set_is_refused_with_its_name_variable_and_terms_page(
    hf_hub, monkeypatch, tmp_path, status
):
    """xLAM is gated: without HF_TOKEN nothing is asked; a token the hub refuses is named as such."""
    repo, name = "Salesforce/xlam-function-calling-60k", "xlam_function_calling_60k.json"
    hub = hf_hub({("dataset", repo): {name: b"[]"}}, denied={repo: status} if status else {})
    if status:
        monkeypatch.setenv("HF_TOKEN", "hf_terms_not_accepted")
    with pytest.raises(PermissionError) as err:
        pd.fetch_public_file(repo, "main", name, tmp_path / "xlam", name="xlam", gated=True)
    message = str(err.value)
    assert "posttrain.public 'xlam'" in message and repo in message and "HF_TOKEN" in message
    assert f"https://huggingface.co/datasets/{repo}" in message
    assert "hf_terms_not_accepted" not in message  # the token never reaches a message or log
    assert hub.file_gets() == [] and not (tmp_path / "xlam").exists()
    if status is None:
        assert hub.requests == []  # refused before any request


def test_a_vanished_revision_of_a_public_set_names_its_config_key(hf_hub, tmp_path):
    repo, name = "Salesforce/xlam-function-calling-60k", "xlam_function_calling_60k.json"
    hf_hub({("dataset", repo): {name: b"[]"}}, revisions={"v1.0"})
    with pytest.raises(FileNotFoundError, match=r"posttrain\.public\.xlam\.revision"):
        pd.fetch_public_file(repo, "v0.9", name, tmp_path / "xlam", name="xlam")
    info = pd.fetch_public_file(repo, "v1.0", name, tmp_path / "xlam", name="xlam")
    assert info["bytes"] == 2 and (tmp_path / "xlam" / name).read_bytes() == b"[]"


def word_tokenizer(path):
    """A whitespace word-level Hugging Face tokenizer: one token per word, unknown words included."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({"<|endoftext|>": 0, "<unk>": 1}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", unk_token="<unk>"
    ).save_pretrained(path)
    return path


def test_write_with_public_set_and_tokenizer(xlam_file, tmp_path):
    folder = tmp_path / "downloads" / "xlam"
    folder.mkdir(parents=True)
    (folder / xlam_file.name).write_bytes(xlam_file.read_bytes())
    (folder / "fetch.json").write_text(
        json.dumps(
            {
                "repo": "Salesforce/xlam-function-calling-60k",
                "revision": "main",
                "file": xlam_file.name,
                "sha256": "x",
                "bytes": 1,
            }
        )
    )
    public = {
        "xlam": {
            "kind": "xlam",
            "repo": "r",
            "revision": "main",
            "file": xlam_file.name,
            "sft_examples": 3,
            "dpo_pairs": 1,
            "dir": folder,
        }
    }
    tok = word_tokenizer(tmp_path / "tok")
    tokenizer = pd.chat_tokenizer(tok)
    lengths = sorted(
        pd.conversation_tokens(tokenizer, r["prompt"] + r["completion"]) for r in build_sft(30, 2)
    )
    limit = lengths[20]  # some generated rows are longer than this
    m = pd.write_posttrain_data(
        tmp_path / "sft.jsonl",
        tmp_path / "dpo.jsonl",
        30,
        10,
        2,
        public=public,
        tokenizer_dir=tok,
        max_length=limit,
        index=names_index(sp.all_function_names("eval")),
    )
    rows = io.read_jsonl(tmp_path / "sft.jsonl")
    sources = Counter(r["source"] for r in rows)
    assert m["sft"]["sources"] == dict(sources) and m["sft"]["rows"] == len(rows)
    dropped = m["sft"]["dropped_too_long"]
    assert sources["generated"] + dropped.get("generated", 0) == 30
    assert sources["xlam"] + dropped.get("xlam", 0) == 3 and dropped.get("generated", 0) >= 9
    assert all(pd.conversation_tokens(tokenizer, r["prompt"] + r["completion"]) <= limit for r in rows)
    assert m["sft"]["tokens"] == sum(
        pd.conversation_tokens(tokenizer, r["prompt"] + r["completion"]) for r in rows
    )
    assert m["sft"]["mean_tokens"] == pytest.approx(m["sft"]["tokens"] / len(rows))
    assert m["public"]["xlam"]["stats"]["skipped"]["evaluation_function"] == 1
    assert m["public"]["xlam"]["repo"] == "Salesforce/xlam-function-calling-60k"
    assert m["max_length"] == limit and m["tokenizer"] == str(tok)
    assert {r["source"] for r in io.read_jsonl(tmp_path / "dpo.jsonl")} <= {"generated", "xlam"}


# --- real schemas (train side of schema_sources.split_of) -------------------------------------

REAL = {"sft_examples": 9, "dpo_pairs": 3, "per_family": 1, "max_chars": 1400}


@pytest.fixture(scope="module")
def real_build(tmp_path_factory):
    d = tmp_path_factory.mktemp("real")
    m = pd.write_posttrain_data(
        d / "sft.jsonl", d / "dpo.jsonl", 8, 4, 3, manifest_path=d / "manifest.json", real_schemas=REAL
    )
    return d, m


def test_real_schema_rows_come_from_train_side_families_one_each(real_build):
    d, m = real_build
    sft = [r for r in io.read_jsonl(d / "sft.jsonl") if "origin" in r]
    dpo = [r for r in io.read_jsonl(d / "dpo.jsonl") if "origin" in r]
    assert len(sft) == 9 and len(dpo) == 3 and m["real_schemas"]["rows"] == 12
    families = [(dj.family_group(r["origin"]["source"]), r["origin"]["family"]) for r in sft + dpo]
    assert len(set(families)) == 12  # per_family 1: every row from another family
    for r in sft + dpo:
        o = r["origin"]
        assert r["source"] == o["source"] in rs.SOURCES and o["split"] == "train"
        assert (
            ss.split_of(o["source"], o["file"]) == "train"
            and ss.family(o["source"], o["file"]) == o["family"]
        )
    for r in sft:
        schemas, functions = dj.shown_in(r["prompt"])
        text = r["completion"][0]["content"]
        if r["task"] == "function_call":
            assert check_call_answer(text, functions, json.loads(text)) is None
        else:
            assert r["task"] == "json_schema" and sp.validation_error(json.loads(text), schemas[0]) is None
    for r in dpo:
        schemas, functions = dj.shown_in(r["prompt"])
        rejected = r["rejected"][0]["content"]
        if r["task"] == "function_call":
            assert check_call_answer(rejected, functions, json.loads(r["chosen"][0]["content"])) is not None
    # SFT and DPO never share a schema
    sft_hashes = {schema_hash(s) for r in sft for s in dj.shown_in(r["prompt"])[0]}
    assert not sft_hashes & {schema_hash(s) for r in dpo for s in dj.shown_in(r["prompt"])[0]}
    # the manifest: per source, and the files and families per split
    report = m["real_schemas"]
    assert sum(v["sft_rows"] + v["dpo_rows"] for v in report["sources"].values()) == 12
    assert report["config"] == REAL and sum(report["per_family"].values()) == 12
    train = report["splits"]["train"]
    assert {(s, f) for s, used in train.items() for f in used["files"]} == {
        (r["origin"]["source"], r["origin"]["file"]) for r in sft + dpo
    }
    assert report["splits"]["eval"] == rs.eval_splits_used()
    assert all(len(r["prompt"][0]["content"]) + len(r["prompt"][1]["content"]) <= 1400 for r in sft)
    assert (
        dj.check_posttrain_files(d / "sft.jsonl", d / "dpo.jsonl", d / "manifest.json", evaluation_index())[
            "real_schema_files"
        ]
        == 12
    )


def test_real_schema_rows_are_deterministic(real_build, tmp_path):
    d, m = real_build
    again = pd.write_posttrain_data(
        tmp_path / "sft.jsonl", tmp_path / "dpo.jsonl", 8, 4, 3, real_schemas=REAL
    )
    assert again["sft"]["sha256"] == m["sft"]["sha256"] and again["dpo"]["sha256"] == m["dpo"]["sha256"]


def test_real_schema_selection_passes_over_what_an_evaluation_shows():
    first = rs.select(4, 3, NO_EVAL, 1, 1400).examples
    a, b = first[0], first[1]
    shown_a = a["schema"] if a["task"] == "json_schema" else a["functions"][0]["parameters"]
    # the evaluation shows a's schema under another title, and reads b's file
    index = EvalIndex(
        [
            EvalItem("suite item A", schema=dict(shown_a, title="Another title")),
            EvalItem("suite item B", source=b["origin"]["source"], file=b["origin"]["file"]),
        ]
    )
    sel = rs.select(4, 3, index, 1, 1400)
    assert len(sel.examples) == 4
    items = {e["item"] for e in sel.examples}
    assert a["item"] not in items and b["origin"]["file"] not in {e["origin"]["file"] for e in sel.examples}
    assert (
        sel.dropped["shows_evaluation_same_normal_form"] >= 1
        and sel.dropped["shows_evaluation_same_file"] >= 1
    )


def test_too_few_real_schema_examples_is_an_error_naming_the_key(monkeypatch):
    monkeypatch.setattr(rs, "select", lambda *a, **k: rs.Selection([], Counter(unusable=3), 2))
    with pytest.raises(
        ValueError, match=r"posttrain\.real_schemas asks for sft_examples \+ dpo_pairs = 12.*unusable"
    ):
        pd.build_real_schemas(REAL, 3, NO_EVAL)


def test_function_names_of_real_schemas():
    import random

    name = rs.function_name("AWS::EC2::Instance BlockDeviceMapping", random.Random(1))
    assert name.split("_", 1)[1] == "aws_ec2_instance_block_device_mapping"
    assert name.split("_", 1)[0] in rs._VERBS
    assert len(rs.function_name("x" * 200, random.Random(1))) <= 64
