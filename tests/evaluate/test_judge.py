"""The LLM judge of extraction answers (trellis/evaluate/judge.py), against the local stand-in of
the OpenAI Batch API (tests/labels/openai_stub.py): nothing here reaches the network.

The stand-in answers as a judge would: it reads the reference fields and the model's answer from
the judge's prompt and calls a field correct when the two state the same value however written
(so a prompt that left either out could not be judged right).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import runpy
import sys
from pathlib import Path

import pytest
import yaml
from test_json_schema import ScriptedGenerator, make_tiny_model  # the tests dir is on sys.path

from trellis.evaluate import extraction as ex
from trellis.evaluate import json_schema
from trellis.evaluate import judge as jd
from trellis.evaluate.dispatch import evaluate
from trellis.labels.openai_common import LabelingStopped
from trellis.report.plan import costs
from trellis.report.tables import headline_table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "labels"))
from openai_stub import OpenAIStub  # noqa: E402  (the labeling tests' stand-in server)

ROOT = Path(__file__).resolve().parents[2]
STUDY = yaml.safe_load((ROOT / "config" / "study.yaml").read_text())
DEMO = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
SECRET = "sk-test-TRELLIS-judge-0123456789-do-not-log-me"
BOOT = {"resamples": 200, "confidence": 0.95}
N = 12
SEED = 5
GARBLE = "extract-0004"  # the stand-in answers malformed JSON about this example (when asked to)


# ---- the model's outputs: right, right but written otherwise, wrong, no JSON -------------------


def _parent(doc, pointer: str):
    """(container, key) of a JSON pointer's target (plain keys: the pool's names need no escaping)."""
    *path, last = pointer[1:].split("/")
    for token in path:
        doc = doc[int(token)] if isinstance(doc, list) else doc[token]
    return doc, last


def restyled(instance: dict) -> dict:
    """The reference with every top-level number written as a string: the same facts, an exact
    mismatch."""
    out = copy.deepcopy(instance)
    for k, v in out.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = str(v)
    return out


def damaged(instance: dict) -> dict:
    """The reference with its first leaf field (in an object) wrong and its second one left out."""
    out = copy.deepcopy(instance)
    in_objects = [p for p in json_schema.leaf_fields(instance) if isinstance(_parent(out, p)[0], dict)]
    container, key = _parent(out, in_objects[0])
    container[key] = "WRONG" if not isinstance(container[key], str) else container[key] + " (not this)"
    container, key = _parent(out, in_objects[1])
    del container[key]
    return out


def model_output(i: int, example: dict) -> str:
    if i == N - 1:
        return "I cannot answer that."  # no JSON: not sent to the judge
    shape = (example["instance"], restyled(example["instance"]), damaged(example["instance"]))[i % 3]
    return json.dumps(shape)


def expected(i: int, example: dict) -> tuple[float, float]:
    """(judged field accuracy, judged record accuracy) a faithful judge gives output i."""
    if i == N - 1:
        return 0.0, 0.0
    if i % 3 in (0, 1):
        return 1.0, 1.0
    n = len(json_schema.leaf_fields(example["instance"]))
    return (n - 2) / n, 0.0


@pytest.fixture(scope="module")
def extraction_results(tmp_path_factory):
    """extraction.json of two arms at SFT, as the evaluate job writes it (dispatch.evaluate)."""
    from transformers import AutoTokenizer

    model = make_tiny_model(tmp_path_factory.mktemp("tiny") / "model", chat=True)
    examples = ex.build(N, SEED)
    by_content = {e["content"]: (i, e) for i, e in enumerate(examples)}

    def scripted(prompt):
        content = max(by_content, key=lambda c: prompt.rfind(c))
        return model_output(*by_content[content])

    out = tmp_path_factory.mktemp("eval")
    paths = {}
    for arm in ("curated", "uncurated"):
        gen = ScriptedGenerator(AutoTokenizer.from_pretrained(model), scripted)
        cfg = {"examples": N, "max_new_tokens": 32}
        result = evaluate("extraction", model, "sft", arm, None, cfg, BOOT, SEED, generator=gen)
        path = out / arm / "sft" / "extraction.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(result))
        paths[arm] = path
    return paths, examples


# ---- the stand-in judge -------------------------------------------------------------------------


def _norm(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value.strip().lower()
    return value


def _fields_and_answer(user: str) -> tuple[list[tuple[str, str, object]], object]:
    refs = user.split("Reference fields:\n", 1)[1].split("\n\nModel answer:\n", 1)
    fields = []
    for line in refs[0].splitlines():
        key, rest = line.split(" ", 1)
        pointer, value = rest.split(" = ", 1)
        fields.append((key, pointer, json.loads(value)))
    return fields, json.loads(refs[1])


def install_judge(stub: OpenAIStub, garble: str | None = None) -> None:
    """Answer every request as a faithful judge reading the prompt would (malformed JSON about
    the example whose text is ``garble``)."""
    state = stub.state

    def answer(body):
        user = body["messages"][-1]["content"]
        with state.lock:
            state.billed[user] += 1
        keys = list(body["response_format"]["json_schema"]["schema"]["properties"]["fields"]["properties"])
        if garble is not None and garble in user:
            content = '{"analysis": "oops'
        else:
            fields, model_answer = _fields_and_answer(user)
            assert [k for k, _, _ in fields] == keys  # the schema asks for exactly the listed fields
            verdicts = {}
            for key, pointer, ref in fields:
                got = json_schema._resolve(model_answer, pointer)
                if ref is None:  # the text gives no value: none in the answer is right
                    verdicts[key] = "correct" if got is json_schema._MISSING or got is None else "incorrect"
                elif got is json_schema._MISSING or got is None:
                    verdicts[key] = "missing"
                else:
                    verdicts[key] = "correct" if _norm(got) == _norm(ref) else "incorrect"
            ok = all(v == "correct" for v in verdicts.values())
            content = json.dumps(
                {
                    "analysis": "all fields match" if ok else "some differ",
                    "fields": verdicts,
                    "verdict": "correct" if ok else "incorrect",
                }
            )
        prompt, completion = state.prompt_tokens(body), state.tokens(content)
        return content, {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    state.answer = answer


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    return SECRET


@pytest.fixture
def stub():
    with OpenAIStub(SECRET, lifetime=60) as s:
        yield s


def settings_for(stub: OpenAIStub, **judge_overrides) -> dict:
    judge_cfg = copy.deepcopy(STUDY["evaluate"]["extraction"]["judge"])
    judge_cfg["request"] = {"base_url": stub.base_url}
    judge_cfg["batch"] = {"poll_seconds": 0.01}
    judge_cfg.update(judge_overrides)
    return jd.judge_settings(judge_cfg, STUDY["labels"], n_jobs=1)


def example_text(examples, example_id: str) -> str:
    return next(e["content"] for e in examples if e["id"] == example_id)


# ---- tests ---------------------------------------------------------------------------------------


def test_verdicts_aggregate_to_the_judged_metrics(tmp_path, key, stub, extraction_results, caplog):
    paths, examples = extraction_results
    install_judge(stub)
    caplog.set_level(logging.DEBUG)
    judged = {}
    for arm, path in paths.items():
        result = jd.judge_extraction(str(path), settings_for(stub), str(tmp_path / f"{arm}.work"), BOOT, SEED)
        out = tmp_path / "eval" / arm / "sft" / "extraction_judged.json"
        out.parent.mkdir(parents=True)
        out.write_text(json.dumps(result))
        judged[arm] = out

    result = json.loads(judged["curated"].read_text())
    assert result["benchmark"] == "extraction_judged" and result["n"] == N
    assert set(result["metrics"]) == set(jd.METRICS)
    want = [expected(i, e) for i, e in enumerate(examples)]
    by_id = {r["id"]: r for r in result["examples"]}
    for (field_acc, record_acc), e in zip(want, examples):
        assert by_id[e["id"]]["scores"] == {
            "judged_field_accuracy": pytest.approx(field_acc),
            "judged_record_accuracy": record_acc,
        }, e["id"]
    assert result["metrics"]["judged_field_accuracy"]["value"] == pytest.approx(sum(f for f, _ in want) / N)
    assert result["metrics"]["judged_record_accuracy"]["value"] == pytest.approx(sum(r for _, r in want) / N)
    m = result["metrics"]["judged_field_accuracy"]
    assert m["ci_low"] <= m["value"] <= m["ci_high"]
    # Exact match undercounts the restyled answers; the judge does not (and agrees on exact matches).
    extraction = json.loads(paths["curated"].read_text())
    assert m["value"] > extraction["metrics"]["field_accuracy"]["value"]
    assert result["judge"]["agreement_on_exact_matches"] == 1.0
    # The output with no JSON was never sent; every other example was asked once.
    assert by_id[examples[-1]["id"]]["judge"] == {"skipped": "no JSON in the output"}
    assert result["judge"]["requests"] == N - 1 and result["judge"]["skipped_no_json"] == 1
    # (billed counts by prompt: both arms ask the same N - 1 prompts, here, once each.)
    assert len(stub.state.billed) == N - 1 and set(stub.state.billed.values()) == {2}
    assert result["judge"]["backend_info"]["billed_usd"] > 0

    # The headline table reads the judged files like any result: rows and paired deltas.
    df = headline_table(sorted(judged.values()), control_arm="uncurated", require_control=True)
    rows = df[df["benchmark"] == "extraction_judged"]
    assert set(rows["kind"]) == {"result", "delta"} and set(rows["metric"]) == set(jd.METRICS)
    assert (rows[rows["kind"] == "delta"]["value"] == 0).all()  # the same outputs in both arms

    # The key went to the stand-in server only: in no log record, result or work file.
    assert stub.state.unauthorized == 0
    assert SECRET not in caplog.text
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert SECRET not in f.read_text(errors="replace"), f

    # A rerun asks nothing again (the manifest has every verdict).
    again = jd.judge_extraction(
        str(paths["curated"]), settings_for(stub), str(tmp_path / "curated.work"), BOOT, SEED
    )
    assert again["metrics"] == result["metrics"]
    assert sum(stub.state.billed.values()) == 2 * (N - 1)


def _snakemake(input, output, params, log, config):
    """The ``snakemake`` object a rule script sees (as in tests/labels/test_openai.py)."""
    from snakemake.iocontainers import Namedlist

    class Job:
        pass

    job = Job()
    job.input, job.output, job.params = (Namedlist(fromdict=d) for d in (input, output, params))
    job.log, job.threads, job.config = Namedlist(fromdict={"log": str(log)}), 1, config
    return job


def test_rule_script_with_the_key_from_dotenv_writes_no_secret(
    tmp_path, monkeypatch, stub, extraction_results
):
    paths, _ = extraction_results
    install_judge(stub)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"OPENAI_API_KEY={SECRET}\n")
    config = copy.deepcopy(STUDY)
    config["evaluate"]["extraction"]["judge"]["request"] = {"base_url": stub.base_url}
    config["evaluate"]["extraction"]["judge"]["batch"] = {"poll_seconds": 0.01}
    judge_cfg = config["evaluate"]["extraction"]["judge"]
    results = tmp_path / "results"
    out = results / "eval" / "curated" / "sft" / "extraction_judged.json"
    runpy.run_path(
        str(ROOT / "scripts" / "judge_extraction.py"),
        init_globals={
            "snakemake": _snakemake(
                {"extraction": str(paths["curated"])},
                {"judged": str(out)},
                {
                    "judge": jd.judge_params(judge_cfg, config["labels"]),
                    "n_jobs": 18,
                    "bootstrap": BOOT,
                    "seed": SEED,
                    "work_dir": str(results / "judge" / "extraction-curated-sft.work"),
                },
                results / "logs" / "judge_extraction.log",
                config,
            )
        },
    )
    assert stub.state.unauthorized == 0  # the key did reach the server
    assert json.loads(out.read_text())["judge"]["requests"] == N - 1
    log = (results / "logs" / "judge_extraction.log").read_text()
    assert "judged_field_accuracy=" in log and f"${judge_cfg['max_cost_usd'] / 18}" in log
    written = [p for p in results.rglob("*") if p.is_file()]
    assert any(p.name == "manifest.json" for p in written)
    for path in written:
        assert b"TRELLIS-judge-0123456789" not in path.read_bytes(), path


def test_new_outputs_are_judged_again(tmp_path, key, stub, extraction_results):
    """Row ids carry a hash of what is asked: a re-evaluated arm never reuses old verdicts."""
    paths, _ = extraction_results
    install_judge(stub)
    work = str(tmp_path / "work")
    jd.judge_extraction(str(paths["curated"]), settings_for(stub), work, BOOT, SEED)
    changed = json.loads(paths["curated"].read_text())
    first = changed["examples"][0]
    first["output"] = json.dumps(damaged(first["reference"]))
    path = tmp_path / "extraction.json"
    path.write_text(json.dumps(changed))
    result = jd.judge_extraction(str(path), settings_for(stub), work, BOOT, SEED)
    assert sum(stub.state.billed.values()) == N  # the N - 1 first ones, then the changed one
    assert result["examples"][0]["scores"]["judged_record_accuracy"] == 0.0


def test_expired_batch_goes_to_the_next_round_and_a_failed_one_stops(tmp_path, key, stub, extraction_results):
    paths, _ = extraction_results
    install_judge(stub)
    stub.state.expire_after = [4]  # the first batch answers 4 requests, then expires
    result = jd.judge_extraction(str(paths["curated"]), settings_for(stub), str(tmp_path / "a"), BOOT, SEED)
    info = result["judge"]["backend_info"]
    assert info["rounds"] == 2 and info["batch_statuses"] == {"completed": 1, "expired": 1}
    assert result["judge"]["unjudged"] == 0 and set(stub.state.billed.values()) == {1}

    # A batch that fails validation stops the job as it stops a label job, naming the judge task.
    stub.state.supported_models = {"some-other-model"}
    with pytest.raises(LabelingStopped, match=r"task extraction_judge-curated-sft: .*model_not_found"):
        jd.judge_extraction(str(paths["curated"]), settings_for(stub), str(tmp_path / "b"), BOOT, SEED)


def test_unjudged_examples_keep_exact_scores_under_a_ceiling(tmp_path, key, stub, extraction_results):
    paths, examples = extraction_results
    install_judge(stub, garble=example_text(examples, GARBLE))
    work = str(tmp_path / "work")
    with pytest.raises(
        jd.UnjudgedCeilingError, match=rf"1 of {N - 1} .*max_unjudged_fraction = 0.0.*{GARBLE}"
    ):
        jd.judge_extraction(
            str(paths["curated"]), settings_for(stub, max_unjudged_fraction=0.0), work, BOOT, SEED
        )
    asked = sum(stub.state.billed.values())
    retries = STUDY["labels"]["request"]["invalid_retries"]
    assert asked == N - 1 + retries  # the garbled one asked again, the others once

    # Under the ceiling: the verdicts already paid for are reused, the unjudged example keeps its
    # exact-match scores.
    result = jd.judge_extraction(
        str(paths["curated"]), settings_for(stub, max_unjudged_fraction=0.5), work, BOOT, SEED
    )
    assert sum(stub.state.billed.values()) == asked
    record = next(r for r in result["examples"] if r["id"] == GARBLE)
    exact = record["exact_field_accuracy"]
    assert record["judge"]["unjudged"].startswith("malformed_json")
    assert record["scores"] == {"judged_field_accuracy": exact, "judged_record_accuracy": float(exact == 1.0)}
    assert result["judge"]["unjudged"] == 1


def test_answers_are_checked_against_their_example():
    prompt = jd.JudgePrompt(6000)
    row = {"fields": [("/a", 1), ("/b", "x")]}
    answer, reason, _ = prompt.parse(
        json.dumps({"analysis": "r", "fields": {"f01": "correct"}, "verdict": "correct"})
    )
    assert reason is None
    assert jd.verdicts(row, answer)[0] is None and "not judged ['f02']" in jd.verdicts(row, answer)[1]
    assert (
        prompt.parse('{"analysis": "r", "fields": {"f01": "maybe"}, "verdict": "correct"}')[1]
        == "schema_invalid"
    )
    assert prompt.parse("{no")[1] == "malformed_json"
    strict = prompt.response_format(row, True)["json_schema"]
    assert strict["strict"] and strict["schema"]["properties"]["fields"]["required"] == ["f01", "f02"]


def test_extraction_results_carry_what_the_judge_reads():
    e = ex.build(1, SEED)[0]
    score = ex.score_example(e, ex.reference_answer(e))
    assert (score["content"], score["schema"], score["reference"]) == (
        e["content"],
        e["schema"],
        e["instance"],
    )
    with pytest.raises(KeyError, match=r"examples\[0\] lacks \['content', 'schema', 'reference'\].*rerun"):
        jd.judge_rows({"benchmark": "extraction", "examples": [{"id": "x", "output": "{}"}]}, "eval/x.json")


def test_config_keys_and_errors():
    assert DEMO["evaluate"]["extraction"]["judge"] is None
    judge_cfg = STUDY["evaluate"]["extraction"]["judge"]
    settings = jd.judge_settings(judge_cfg, STUDY["labels"], n_jobs=18)
    # The judge's own model and prices; labels' request and batch settings otherwise.
    assert settings["prices"] == {"input_per_million": 1.25, "output_per_million": 5.0}
    assert settings["batch"]["max_estimated_cost_usd"] == pytest.approx(judge_cfg["max_cost_usd"] / 18)
    assert settings["batch"]["enqueued_token_limit"] == STUDY["labels"]["batch"]["enqueued_token_limit"]
    assert settings["request"]["max_completion_tokens"] == judge_cfg["max_completion_tokens"]
    assert settings["request"]["seed"] == STUDY["labels"]["request"]["seed"]
    # Operational keys are no rerun trigger; the secret's variable is not a param at all.
    params = jd.judge_params(judge_cfg, STUDY["labels"])
    assert params == jd.judge_params(dict(judge_cfg, max_cost_usd=1, prices={}), STUDY["labels"])
    assert "api_key_env" not in json.dumps(params)
    no_prices = {k: v for k, v in judge_cfg.items() if k != "prices"}
    with pytest.raises(ValueError, match=r"evaluate\.extraction\.judge\.prices is required"):
        jd.judge_settings(no_prices, STUDY["labels"], 18)
    with pytest.raises(ValueError, match=r"evaluate\.extraction\.judge\.backend = 'openai-chat'"):
        jd.judge_settings(dict(judge_cfg, backend="openai-chat"), STUDY["labels"], 18)


class CharEncoding:
    """A stand-in tokenizer (one token a character) so the expected cost is computed here."""

    def encode(self, text: str) -> list[int]:
        return [0] * len(text)


def test_plan_prices_the_judge():
    assert not [r for r in costs(DEMO, encoding=CharEncoding())["rows"] if r["what"] == "LLM judge"]
    enc = CharEncoding()
    row = next(r for r in costs(STUDY, encoding=enc)["rows"] if r["what"] == "LLM judge")
    judge_cfg = STUDY["evaluate"]["extraction"]["judge"]
    jobs = len(STUDY["arms"]) * len(STUDY["evaluate"]["stages"])
    examples = ex.build(STUDY["evaluate"]["extraction"]["examples"], STUDY["seed"])
    prompt = jd.JudgePrompt(STUDY["labels"]["request"]["max_text_chars"])
    tokens = answer = 0
    for e in examples:
        fields = list(json_schema.leaf_fields(e["instance"]).items())
        r = {"content": e["content"], "schema": e["schema"], "fields": fields, "answer": e["instance"]}
        messages = prompt.messages(r)
        schema = prompt.response_format(r, True)["json_schema"]["schema"]
        tokens += (
            sum(len(m["content"]) + 3 for m in messages) + 3 + len(json.dumps(schema, separators=(",", ":")))
        )
        answer += len(jd.example_answer(len(fields)))
    prices = judge_cfg["prices"]
    usd = jobs * (tokens * prices["input_per_million"] + answer * prices["output_per_million"]) / 1e6
    assert math.isclose(row["usd"], usd) and row["gpu_hours"] is None
    assert f"{jobs * len(examples):,} requests" in row["scope"]
    # The study's cap leaves each job room for its first round (counted with o200k_base, which the
    # stand-in server needs too) ...
    study_row = next(r for r in costs(STUDY)["rows"] if r["what"] == "LLM judge")
    assert "o200k_base" in study_row["note"] and "OVER" not in study_row["note"]
    assert study_row["usd"] < STUDY["evaluate"]["extraction"]["judge"]["max_cost_usd"]
    # ... and a cap too small for it is called out.
    low = copy.deepcopy(STUDY)
    low["evaluate"]["extraction"]["judge"]["max_cost_usd"] = 1
    assert (
        "OVER its share"
        in next(r for r in costs(low, encoding=enc)["rows"] if r["what"] == "LLM judge")["note"]
    )


@pytest.mark.workflow
def test_judge_off_leaves_the_dag_unchanged(tmp_path):
    """The demo (judge off) plans no judge job; turning the judge on adds one per arm and stage
    and changes nothing else (the evaluate jobs' params do not carry the judge)."""
    sys.path.insert(0, str(ROOT / "tests" / "workflow"))
    from test_workflow import copy_repo, planned_jobs, snakemake

    workdir = copy_repo(tmp_path / "repo")
    off = planned_jobs(snakemake(workdir, "-n", "--cores", "2").stdout)
    on_cfg = tmp_path / "judge.yaml"
    on_cfg.write_text(
        yaml.safe_dump({"evaluate": {"extraction": {"judge": STUDY["evaluate"]["extraction"]["judge"]}}})
    )
    on = planned_jobs(
        snakemake(workdir, "-n", "--cores", "2", "--configfile", "config/config.yaml", str(on_cfg)).stdout
    )
    assert "judge_extraction" not in off
    arms, stages = len(DEMO["arms"]), len(DEMO["evaluate"]["stages"])
    assert on.pop("judge_extraction") == arms * stages
    assert on == off
