"""The rule jobs' garbage-collector setting: fewer collections, cycles still freed, a frozen exit."""

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from trellis.core.gc_tuning import YOUNG_GENERATION_THRESHOLD

SCRIPTS = sorted((Path(__file__).parents[2] / "scripts").glob("*.py"))


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True
    )
    return done.stdout


@pytest.mark.parametrize("tuned", [False, True])
def test_exit_freezes_the_heap_only_when_tuned(tuned):
    # Handlers run last-registered first: this one, registered before tune_gc, runs after it.
    out = _run(
        f"""
        import atexit, gc, os
        atexit.register(lambda: os.write(1, f"frozen={{gc.get_freeze_count()}}".encode()))
        from trellis.core.gc_tuning import tune_gc
        if {tuned}:
            tune_gc()
            tune_gc()  # a second call registers nothing more
        print(*gc.get_threshold(), flush=True)
        """
    )
    thresholds, frozen = out.splitlines()
    assert (int(thresholds.split()[0]) == YOUNG_GENERATION_THRESHOLD) == tuned
    assert (int(frozen.removeprefix("frozen=")) > 0) == tuned


def test_unreachable_cycles_are_still_freed_without_an_explicit_collect():
    out = _run(
        """
        import weakref
        from trellis.core.gc_tuning import tune_gc, YOUNG_GENERATION_THRESHOLD
        tune_gc()

        class Node:
            pass

        freed = 0
        def count(_):
            global freed
            freed += 1

        refs = []
        for _ in range(3 * YOUNG_GENERATION_THRESHOLD):
            a, b = Node(), Node()
            a.other, b.other = b, a  # a cycle: reference counting alone never frees it
            refs.append(weakref.ref(a, count))
            del a, b
        print(freed)
        """
    )
    assert int(out) > 0


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_rule_script_tunes_the_collector_before_its_imports(script):
    body = ast.parse(script.read_text()).body
    if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    first, second = ast.unparse(body[0]), ast.unparse(body[1])
    assert (first, second) == ("from trellis.core.gc_tuning import tune_gc", "tune_gc()"), script
