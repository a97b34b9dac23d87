"""Code benchmarks: execution sandbox, HumanEval and MBPP scoring on known answers, evaluate()."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_json_schema import ScriptedGenerator, make_tiny_model

from trellis.evaluate import code, execution
from trellis.evaluate.dispatch import evaluate
from trellis.structured import prompts

BOOT = {"resamples": 200, "confidence": 0.95}


@pytest.fixture(scope="module")
def humaneval():
    return code.load_humaneval()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model", chat=True)


# ---- the sandbox -------------------------------------------------------------------------------


def test_sandbox_passes_a_program_that_runs_to_its_end_and_fails_assertions():
    assert execution.run_program("assert sum([1, 2]) == 3\n").passed
    failed = execution.run_program("assert 1 + 1 == 3, 'arithmetic'\n")
    assert failed.status == "failed" and "AssertionError: arithmetic" in failed.detail
    # The exit status counts for nothing: a pass is reported by the runner after the tests.
    for early_exit in ("import sys\nsys.exit(0)\n", "import os\nos._exit(0)\n"):
        assert execution.run_program(early_exit).status == "failed"


def test_sandbox_kills_a_program_that_never_ends():
    outcome = execution.run_program("while True:\n    pass\n", execution.Limits(timeout_s=1))
    assert outcome.status == "timeout"


def test_sandbox_has_no_network():
    # Through the socket module and, beneath it, the raw _socket extension (which only a network
    # namespace stops): both must fail, and fail because there is no network.
    via_socket = execution.run_program(
        "import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=2)\n"
    )
    assert via_socket.status == "failed" and "network access is disabled" in via_socket.detail
    raw = execution.run_program(
        "import _socket\ns = _socket.socket()\ns.settimeout(2)\ns.connect(('1.1.1.1', 53))\n"
    )
    if execution.isolation().startswith("network-namespace"):
        assert raw.status == "failed" and "OSError" in raw.detail


def test_sandbox_limits_memory_and_starts_clean(tmp_path, monkeypatch):
    huge = execution.run_program("x = bytearray(8 * 1024 ** 3)\n", execution.Limits(memory_mb=512))
    assert huge.status == "failed" and "MemoryError" in huge.detail
    # No environment leaks in (secrets stay with the evaluator), and cwd is an empty directory.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    assert execution.run_program(
        "import os, sys\nassert 'OPENAI_API_KEY' not in os.environ\nassert os.listdir('.') == []\n"
        "assert sys.stdin.read() == ''\n"  # the runner's job (and its token) came through stdin
    ).passed


def test_sandbox_runs_programs_in_parallel_in_order():
    programs = [f"assert {i} % 2 == 0\n" for i in range(6)]
    outcomes = execution.run_programs(programs, workers=3)
    assert [o.passed for o in outcomes] == [i % 2 == 0 for i in range(6)]
    with pytest.raises(ValueError, match="workers"):
        execution.run_programs(programs, workers=0)


# ---- HumanEval -----------------------------------------------------------------------------------


def test_humaneval_is_the_packaged_set(humaneval):
    assert len(humaneval) == 164
    assert [e["id"] for e in humaneval[:3]] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    assert code.load_humaneval(5) == humaneval[:5]


def test_canonical_humaneval_solutions_pass_in_both_formats(humaneval):
    # Base: the body continuing the prompt; chat: the whole function in a code block.
    for stage in ("base", "sft"):
        scores = code.score_examples(
            humaneval, [code.reference_answer(e, stage) for e in humaneval], {"workers": 2}
        )
        failed = [(e["id"], s["detail"][-200:]) for e, s in zip(humaneval, scores) if not s["passed"]]
        assert not failed, failed


def test_wrong_humaneval_answers_fail(humaneval):
    wrong = {
        "empty body": "    pass\n",
        "wrong constant": "    return 0\n",
        "syntax error": "    return (\n",
    }
    for what, body in wrong.items():
        scores = code.score_examples(humaneval[:40], [body] * 40, {"workers": 2})
        assert not any(s["passed"] for s in scores), what
    # Another problem's correct solution is wrong here.
    swapped = code.score_example(humaneval[0], humaneval[1]["canonical_solution"])
    assert not swapped["passed"]


def test_code_prompts_per_stage(humaneval, tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    e = humaneval[3]
    base = prompts.build_prompt("base", tok, code.messages(e), [], code.completion_prefix(e))
    assert base == e["prompt"]
    chat = prompts.build_prompt("sft", tok, code.messages(e), [], code.completion_prefix(e))
    assert chat.startswith("### System:\n" + prompts.CODE_SYSTEM) and e["prompt"] in chat
    assert chat.endswith("### Assistant:\n")
    assert "\ndef" in prompts.stop_strings("base", code_completion=True)


# ---- MBPP ----------------------------------------------------------------------------------------

MBPP_TASKS = [
    (
        2,
        "Write a function to find the shared elements from the given two lists.",
        "def similar_elements(a, b):\n    return tuple(set(a) & set(b))",
        ["assert set(similar_elements((3, 4, 5, 6), (5, 7, 4, 10))) == set((4, 5))"],
    ),
    (
        3,
        "Write a python function to identify non-prime numbers.",
        "import math\ndef is_not_prime(n):\n    if n < 2:\n        return True\n"
        "    return any(n % i == 0 for i in range(2, int(math.sqrt(n)) + 1))",
        ["assert is_not_prime(2) == False", "assert is_not_prime(10) == True"],
    ),
    (
        11,
        "Write a python function to remove first and last occurrence of a given character.",
        "def remove_Occ(s, ch):\n    s = s.replace(ch, '', 1)\n    i = s.rfind(ch)\n    return s if i < 0 "
        "else s[:i] + s[i + 1:]",
        ["assert remove_Occ('hello', 'l') == 'heo'", "assert remove_Occ('abcda', 'a') == 'bcd'"],
    ),
    (
        12,
        "Write a function to sort a matrix by the sum of its rows.",
        "def sort_matrix(m):\n    return sorted(m, key=sum)",
        ["assert sort_matrix([[1, 2, 3], [2, 4, 5], [1, 1, 1]]) == [[1, 1, 1], [1, 2, 3], [2, 4, 5]]"],
    ),
    (
        13,
        "Write a function that uses a helper module imported in the test setup.",
        "def first_sorted(xs):\n    return heapq.nsmallest(1, xs)[0]",
        ["assert first_sorted([5, 2, 9]) == 2"],
    ),
]


def write_mbpp(tmp_path, sanitized: bool = False):
    """MBPP parquet files in the hub's layout: tasks 2-3 in the prompt split, 11+ in test."""
    files = []
    for split, rows in (("prompt", MBPP_TASKS[:2]), ("test", MBPP_TASKS[2:])):
        records = []
        for task_id, text, solution, tests in rows:
            setup = "import heapq" if task_id == 13 else ""
            if sanitized:
                records.append(
                    {
                        "source_file": "x.jsonl",
                        "task_id": task_id,
                        "prompt": text,
                        "code": solution,
                        "test_imports": [setup] if setup else [],
                        "test_list": tests,
                    }
                )
            else:
                records.append(
                    {
                        "task_id": task_id,
                        "text": text,
                        "code": solution,
                        "test_list": tests,
                        "test_setup_code": setup,
                        "challenge_test_list": [],
                    }
                )
        path = tmp_path / f"{split}-00000-of-00001.parquet"
        pq.write_table(pa.Table.from_pylist(records), path)
        files.append(str(path))
    return files


@pytest.mark.parametrize("sanitized", [False, True])
def test_mbpp_reference_code_passes_and_wrong_code_fails(tmp_path, sanitized):
    files = write_mbpp(tmp_path, sanitized)
    tests = code.load_mbpp(files, "test")
    assert [e["id"] for e in tests] == ["mbpp/11", "mbpp/12", "mbpp/13"]
    good = code.score_examples(tests, [code.reference_answer(e, "sft") for e in tests], {"workers": 2})
    assert all(s["passed"] for s in good), good
    bad = code.score_examples(tests, ["def sort_matrix(m):\n    return m\n"] * 3, {"workers": 2})
    assert not any(s["passed"] for s in bad)
    shots, names = code.mbpp_shots(files, 2)
    assert names == ["mbpp/2", "mbpp/3"] and shots[0][1].startswith("```python\ndef similar_elements")


def test_mbpp_bad_rows_and_missing_splits_are_named(tmp_path):
    path = tmp_path / "test-00000-of-00001.parquet"
    pq.write_table(
        pa.Table.from_pylist([{"task_id": 7, "text": "t", "code": "", "test_list": ["assert 1"]}]), path
    )
    with pytest.raises(ValueError, match=r"test-00000-of-00001.parquet row 0: MBPP task 7"):
        code.load_mbpp([str(path)], "test")
    with pytest.raises(FileNotFoundError, match="no MBPP 'prompt' parquet file"):
        code.mbpp_shots([str(path)], 3)


# ---- evaluate() ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["base", "dpo"])
def test_evaluate_humaneval_perfect_and_broken(tiny_model, humaneval, stage):
    by_prompt = {}
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    for e in humaneval[:6]:
        p = prompts.build_prompt(stage, tok, code.messages(e), [], code.completion_prefix(e))
        by_prompt[p] = code.reference_answer(e, stage)
    cfg = {"limit": 6, "max_new_tokens": 64, "timeout_s": 5, "workers": 2}
    perfect = evaluate(
        "humaneval",
        tiny_model,
        stage,
        "curated",
        None,
        cfg,
        BOOT,
        0,
        generator=ScriptedGenerator(tok, by_prompt.__getitem__),
    )
    assert perfect["n"] == 6 and perfect["metrics"]["pass@1"]["value"] == 1.0
    assert perfect["data"]["execution"]["timeout_s"] == 5
    gen = ScriptedGenerator(tok, lambda p: "    return None\n")
    broken = evaluate("humaneval", tiny_model, stage, "curated", None, cfg, BOOT, 0, generator=gen)
    assert broken["metrics"]["pass@1"]["value"] == 0.0
    assert {r["status"] for r in broken["examples"]} == {"failed"}
    assert gen.stop == prompts.stop_strings(stage, code_completion=stage == "base")


def test_evaluate_mbpp_uses_prompt_split_shots_for_base(tmp_path, tiny_model):
    files = write_mbpp(tmp_path)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    tests = {e["text"]: e for e in code.load_mbpp(files)}
    gen = ScriptedGenerator(
        tok,
        lambda p: next(
            code.reference_answer(e, "base")
            for t, e in tests.items()
            if p.rstrip().endswith("Output:") and t in p.split("Input:")[-1]
        ),
    )
    cfg = {"limit": None, "max_new_tokens": 64, "shots": 2}
    result = evaluate(
        "mbpp", tiny_model, "base", "curated", None, cfg, BOOT, 0, generator=gen, data_files=files
    )
    assert result["n"] == 3 and result["metrics"]["pass@1"]["value"] == 1.0
    assert result["generation"]["shots"] == ["mbpp/2", "mbpp/3"]
    assert "similar_elements" in gen.prompts[0]
    with pytest.raises(ValueError, match="needs the downloaded MBPP files"):
        evaluate("mbpp", tiny_model, "base", "curated", None, cfg, BOOT, 0, generator=gen)


def test_evaluate_humaneval_real_tiny_model(tiny_model):
    # The real generator end to end: a random model's code fails, and nothing crashes.
    result = evaluate(
        "humaneval",
        tiny_model,
        "base",
        "curated",
        None,
        {"limit": 3, "max_new_tokens": 16, "timeout_s": 5},
        BOOT,
        0,
    )
    assert result["n"] == 3 and result["metrics"]["pass@1"]["value"] == 0.0
    assert result["timing"]["examples_per_s"] > 0
