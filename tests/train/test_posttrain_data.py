"""Post-training data files: generated rows plus public sets (xLAM), fitted to length, and the manifest."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import pytest

from trellis.core import io
from trellis.structured import pools as sp
from trellis.structured import prompts
from trellis.structured.disjoint import check_disjoint, schema_hash
from trellis.structured.examples import build_sft, check_call_answer
from trellis.train import posttrain_data as pd


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

    # the generated rows, in one seeded file order
    def canonical(rows):
        return sorted(json.dumps(r, sort_keys=True) for r in rows)

    assert canonical(rows) == canonical(build_sft(40, 2))
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
    eval_names = set(sp.all_function_names("eval"))
    kept, stats = pd.xlam_examples(xlam_file, eval_names, set())
    assert [k["item"] for k in kept] == ["xlam-0", "xlam-1", "xlam-7", "xlam-8"]
    assert stats["rows"] == 9 and stats["kept"] == 4
    assert stats["skipped"] == {
        "arguments_invalid": 1,
        "evaluation_function": 1,
        "malformed": 1,
        "unknown_function": 1,
        "unsupported_parameter_type": 1,
    }
    assert stats["unsupported_types"] == {"Callable": 1}
    parallel = kept[1]
    assert len(parallel["answer"]) == 2 and [f["name"] for f in parallel["functions"]] == [
        "sum_numbers",
        "get_weather_now",
    ]
    assert parallel["messages"] == prompts.function_call_messages(
        "Sum 1, 2 and weather in Rome", parallel["functions"]
    )
    # a parameter schema an evaluation shows is caught by its hash as well as by name
    hashes = {schema_hash(pd.xlam_function(WEATHER)["parameters"])}
    kept, stats = pd.xlam_examples(xlam_file, set(), hashes)
    assert stats["skipped"]["evaluation_function"] == 5  # every row showing WEATHER: 0, 1 (parallel), 3, 5, 8


def test_xlam_file_errors_are_named(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="x.json"):
        pd.xlam_examples(bad, set(), set())
    bad.write_text('{"query": "a"}')
    with pytest.raises(ValueError, match="JSON array"):
        pd.xlam_examples(bad, set(), set())


def test_build_public_splits_sft_and_dpo(xlam_file):
    spec = {"kind": "xlam", "sft_examples": 2, "dpo_pairs": 2}
    sft, dpo, stats = pd.build_public("xlam", spec, xlam_file, 3, (set(), set()))
    assert len(sft) == 2 and len(dpo) == 2 and stats["kept"] == 5  # the eval name is not excluded here
    assert not {r["item"] for r in sft} & {r["item"] for r in dpo}
    assert all(r["source"] == "xlam" and r["task"] == "function_call" for r in sft + dpo)
    for r in dpo:
        fns = [json.loads(line) for line in r["prompt"][0]["content"].splitlines()[1:-1]]
        expected = json.loads(r["chosen"][0]["content"])
        assert check_call_answer(r["chosen"][0]["content"], fns, expected) is None
        assert check_call_answer(r["rejected"][0]["content"], fns, expected) is not None
    assert pd.build_public("xlam", spec, xlam_file, 3, (set(), set()))[0] == sft  # deterministic
    with pytest.raises(ValueError, match="posttrain.public.xlam"):
        pd.build_public("xlam", dict(spec, sft_examples=5), xlam_file, 3, (set(), set()))


def test_fetch_public_file_offline(xlam_file, tmp_path, monkeypatch):
    import huggingface_hub

    calls = []

    def fake_download(repo_id, filename, revision, repo_type):
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


def test_write_with_public_set_and_tokenizer(xlam_file, tmp_path, monkeypatch):
    monkeypatch.setattr(pd, "eval_function_identities", lambda: (set(sp.all_function_names("eval")), set()))
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
