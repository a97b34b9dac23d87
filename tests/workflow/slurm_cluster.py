"""A real single-node SLURM cluster for the tests, from Debian's slurm-wlm and munge packages.

Everything lives under one temporary directory: a private munge socket and key, slurm.conf and
gres.conf, state, spool, pid and log files. The daemons (munged, slurmctld, slurmd) run in the
foreground as children of the test process, each in its own session, and are stopped by pid.
No cgroups (proctrack/linuxproc, task/none): the cluster reaches into nothing outside its
directory. Two partitions on the one node, `cpu` (the default) and `gpu`, and one generic GPU on a
stand-in device (gres.conf: Name=gpu File=/dev/null), so slurmd reports Gres=gpu:1 and a job that
asks for a GPU gets one allocated (CUDA_VISIBLE_DEVICES=0 in its environment). MinJobAge keeps
finished jobs visible to squeue and scontrol, so no accounting daemon is needed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
PARTITIONS = {"cpu": "cpu", "gpu": "gpu"}


class ClusterError(RuntimeError):
    pass


def _node_line(host: str, memory_cap_mb: int) -> str:
    """This machine's node line as slurmd -C reports it, with less memory and the stand-in GPU."""
    probe = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    line = next(line for line in probe.splitlines() if line.startswith("NodeName="))
    line = re.sub(r"^NodeName=\S+", f"NodeName={host}", line)
    real = int(re.search(r"RealMemory=(\d+)", line).group(1))
    line = re.sub(r"RealMemory=\d+", f"RealMemory={min(real - 1024, memory_cap_mb)}", line)
    return f"{line} Gres=gpu:1 State=UNKNOWN"


def write_config(root: Path, host: str, memory_cap_mb: int = 20000) -> Path:
    conf = root / "slurm.conf"
    for sub in ("state", "spool"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    conf.write_text(
        "\n".join(
            [
                "ClusterName=trellis-test",
                f"SlurmctldHost={host}",
                "SlurmUser=root",
                "SlurmdUser=root",
                "SlurmctldPort=16817",
                "SlurmdPort=16818",
                "AuthType=auth/munge",
                "CredType=cred/munge",
                f"AuthInfo=socket={root}/munge.socket",
                f"StateSaveLocation={root}/state",
                f"SlurmdSpoolDir={root}/spool",
                f"SlurmctldPidFile={root}/slurmctld.pid",
                f"SlurmdPidFile={root}/slurmd.pid",
                f"SlurmctldLogFile={root}/slurmctld.log",
                f"SlurmdLogFile={root}/slurmd.log",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                "SchedulerType=sched/backfill",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core_Memory",
                "GresTypes=gpu",
                "MpiDefault=none",
                "ReturnToService=2",
                "MinJobAge=3600",
                "SlurmdTimeout=300",
                _node_line(host, memory_cap_mb),
                f"PartitionName={PARTITIONS['cpu']} Nodes={host} Default=YES MaxTime=INFINITE State=UP",
                f"PartitionName={PARTITIONS['gpu']} Nodes={host} MaxTime=INFINITE State=UP",
                "",
            ]
        )
    )
    (root / "gres.conf").write_text("Name=gpu File=/dev/null\n")
    return conf


def _srun_shim(root: Path, conf: Path) -> Path:
    """A directory holding an ``srun`` that finds this cluster's config.

    Inside a job, snakemake-executor-plugin-slurm-jobstep (0.6.1) runs the rule under a nested
    srun with every SLURM_* variable but the job's identity removed, SLURM_CONF included. On a
    real cluster srun then finds /etc/slurm/slurm.conf (or the configless DNS record); this
    cluster's config lives in a temporary directory, so its srun is this wrapper, first on PATH.
    """
    bin_dir = root / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "srun"
    shim.write_text(f'#!/bin/sh\nSLURM_CONF={conf} exec {shutil.which("srun")} "$@"\n')
    shim.chmod(0o755)
    return bin_dir


def _start(command: list[str], log: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        command, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env, start_new_session=True
    )


def _logs(root: Path) -> str:
    return "\n".join(
        f"--- {p.name}:\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(root.glob("*.log"))
    )


@contextlib.contextmanager
def single_node_cluster(root: Path, timeout_s: float = 60) -> Iterator[dict[str, str]]:
    """Start munged, slurmctld and slurmd under ``root``; yield the environment that reaches them.

    Raises ClusterError (with the daemons' logs) when a binary is missing or the node does not come
    up idle in time. Every daemon is stopped on exit, whatever happened.
    """
    missing = [
        b for b in (*DAEMONS, "mungekey", "sbatch", "squeue", "scontrol", "sinfo") if not shutil.which(b)
    ]
    if missing:
        raise ClusterError(f"SLURM binaries not found: {missing} (apt-get install slurm-wlm munge)")
    root.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname().split(".")[0]
    conf = write_config(root, host)
    key = root / "munge.key"
    subprocess.run(["mungekey", "--create", f"--keyfile={key}", "--force"], check=True, capture_output=True)
    env = {**os.environ, "SLURM_CONF": str(conf), "PATH": f"{_srun_shim(root, conf)}:{os.environ['PATH']}"}
    procs: dict[str, subprocess.Popen] = {}
    try:
        procs["munged"] = _start(
            [
                "munged",
                "--foreground",
                "--force",
                f"--socket={root}/munge.socket",
                f"--key-file={key}",
                f"--pid-file={root}/munged.pid",
                f"--log-file={root}/munged.log",
                f"--seed-file={root}/munged.seed",
            ],
            root / "munged.out.log",
            env,
        )
        _wait(lambda: (root / "munge.socket").exists(), timeout_s, "munged's socket", root, procs)
        for daemon in ("slurmctld", "slurmd"):
            procs[daemon] = _start([daemon, "-D", "-f", str(conf)], root / f"{daemon}.out.log", env)

        def node_idle() -> bool:
            out = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], capture_output=True, text=True, env=env)
            return out.returncode == 0 and out.stdout.split() and all(s == "idle" for s in out.stdout.split())

        _wait(node_idle, timeout_s, "the node to come up idle", root, procs)
        yield env
    finally:
        for name in reversed(DAEMONS):  # slurmd, slurmctld, munged
            proc = procs.get(name)
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def _wait(ready, timeout_s: float, what: str, root: Path, procs: dict[str, subprocess.Popen]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        dead = [name for name, p in procs.items() if p.poll() is not None]
        if dead:
            raise ClusterError(f"{dead} exited while waiting for {what}:\n{_logs(root)}")
        if ready():
            return
        time.sleep(0.5)
    raise ClusterError(f"timed out after {timeout_s:.0f}s waiting for {what}:\n{_logs(root)}")


def job_records(env: dict) -> list[dict[str, str]]:
    """Every job slurmctld remembers (MinJobAge), as scontrol's key=value fields, one dict a job."""
    out = subprocess.run(
        ["scontrol", "show", "job", "--oneliner"], capture_output=True, text=True, env=env, check=True
    ).stdout
    records = []
    for line in out.splitlines():
        if line.startswith("JobId="):
            records.append(dict(m.groups() for m in re.finditer(r"(\w[\w/:]*)=(\S*)", line)))
    return records
