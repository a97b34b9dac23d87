"""Static checks of the workflow's rules and conda envs.

Every rule has a log and a conda env; every env file parses; and every third-party module that
a rule's script imports (directly or through the trellis library, followed transitively) is
provided by that rule's env, so `--sdm conda` runs cannot fail on a missing import.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULE_FILES = sorted((ROOT / "rules").glob("*.smk"))
# Modules provided by packages whose import name and distribution name the metadata cannot map
# (namespace-less or vendored), checked by name instead.
IMPORT_TO_DIST_OVERRIDES = {"yaml": "pyyaml", "sklearn": "scikit-learn"}


def rule_blocks():
    """(rule name, block text) for every rule in rules/*.smk that runs a job, including rules
    made in loops. Target rules (only `input:`, like `all` or `upload`) run nothing and are left out."""
    blocks = []
    for path in RULE_FILES:
        text = path.read_text()
        starts = [
            (m.start(), m.group(1) or m.group(2))
            for m in re.finditer(r"^\s*rule(?: (\w+))?:\n(?:\s+name:\n\s+f?\"([^\"]+)\")?", text, re.M)
        ]
        for (start, name), (end, _) in zip(starts, starts[1:] + [(len(text), None)]):
            block = text[start:end]
            if re.search(r"^\s+output:\n", block, re.M):
                blocks.append((name, block, path))
    return blocks


def directive(block: str, name: str) -> str | None:
    m = re.search(rf"^\s+{name}:\n\s+\"([^\"]+)\"", block, re.M)
    return m.group(1) if m else None


def test_every_rule_has_log_conda_and_script():
    blocks = rule_blocks()
    assert len(blocks) >= 20, [b[0] for b in blocks]
    for name, block, path in blocks:
        assert re.search(r"^\s+log:\n", block, re.M), f"{path.name}: rule {name} has no log:"
        assert directive(block, "conda"), f"{path.name}: rule {name} has no conda:"
        assert directive(block, "script"), f"{path.name}: rule {name} has no script:"


def env_specs(env_file: Path) -> list[str]:
    """Every dependency line of a conda env file, its pip section's included."""
    env = yaml.safe_load(env_file.read_text())
    assert env.get("dependencies"), f"{env_file}: no dependencies"
    return [spec for dep in env["dependencies"] for spec in (dep["pip"] if isinstance(dep, dict) else [dep])]


def env_packages(env_file: Path) -> set[str]:
    return {normalize(re.split(r"[=<>!\[ ]", spec, maxsplit=1)[0]) for spec in env_specs(env_file)}


def normalize(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def module_file(module: str) -> Path | None:
    """The source file of a trellis module, or None for anything else."""
    if module.split(".")[0] != "trellis":
        return None
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def third_party_imports(script: Path) -> set[str]:
    seen_files: set[Path] = set()
    found: set[str] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen_files:
            continue
        seen_files.add(path)
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                local = module_file(module)
                if local:
                    todo.append(local)
                elif top not in sys.stdlib_module_names and top != "trellis":
                    found.add(top)
    return found


def test_env_files_parse():
    envs = sorted((ROOT / "envs").glob("*.yaml"))
    assert envs
    for env in envs:
        assert env_packages(env), env


def exact_pins(specs, where: str) -> dict[str, str]:
    """{distribution: version} of the ``name==version`` lines among ``specs`` (extras and comments
    dropped); a distribution pinned twice must be pinned alike."""
    pins: dict[str, str] = {}
    for spec in specs:
        m = re.match(r"\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*==\s*([^\s#;]+)", spec)
        if m:
            name, version = normalize(m.group(1)), m.group(2)
            assert pins.setdefault(name, version) == version, f"{where}: {name} pinned twice, differently"
    return pins


def test_requirements_pin_what_the_envs_pin():
    """The demo's venv (requirements.txt: the demo, the tests, CI) and the cluster's conda envs hold
    the same versions: every package an env pins, requirements.txt pins to that version, and no two
    envs disagree. A range there would let a fresh install drift from the envs, and the demo's
    outputs with it."""
    required = exact_pins((ROOT / "requirements.txt").read_text().splitlines(), "requirements.txt")
    by_env: dict[str, tuple[str, str]] = {}
    problems = []
    for env_file in sorted((ROOT / "envs").glob("*.yaml")):
        for name, version in exact_pins(env_specs(env_file), env_file.name).items():
            other = by_env.setdefault(name, (version, env_file.name))
            if other[0] != version:
                problems.append(f"{name}: {other[1]} pins {other[0]}, {env_file.name} pins {version}")
            if required.get(name) != version:
                problems.append(
                    f"{name}: {env_file.name} pins {version}, requirements.txt "
                    + (f"pins {required[name]}" if name in required else "does not pin it")
                )
    assert by_env and not problems, "\n".join(sorted(set(problems)))


def test_envs_cover_script_imports():
    dists = importlib.metadata.packages_distributions()
    problems = []
    for name, block, path in rule_blocks():
        env_file = (path.parent / directive(block, "conda")).resolve()
        script = (path.parent / directive(block, "script")).resolve()
        provided = env_packages(env_file)
        for module in sorted(third_party_imports(script)):
            candidates = {normalize(d) for d in dists.get(module, [])}
            if module in IMPORT_TO_DIST_OVERRIDES:
                candidates.add(IMPORT_TO_DIST_OVERRIDES[module])
            if not candidates:
                problems.append(f"rule {name}: cannot map import {module!r} to a distribution")
            elif not candidates & provided:
                problems.append(
                    f"rule {name} ({script.name}) imports {module!r} "
                    f"({'/'.join(sorted(candidates))}) missing from {env_file.name}"
                )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("script", sorted((ROOT / "scripts").glob("*.py")), ids=lambda p: p.name)
def test_every_script_is_used_by_a_rule(script):
    used = {Path(directive(b, "script")).name for _, b, _ in rule_blocks()}
    assert script.name in used, f"{script.name} is run by no rule"
