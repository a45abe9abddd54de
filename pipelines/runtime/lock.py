"""One writer per data directory, and which process a run lives in.

Every run that writes (``cprof run`` and ``cprof backfill``; the refresh job from the UI, the monthly-close
schedule and the landing sensor) holds an exclusive ``flock`` on ``<data>/.cprof.lock`` for as long as it
writes. The file holds the holder's pid, host, command and start time, so a second writer is told who holds it
instead of meeting DuckDB's own ``Could not set lock on file`` error. The kernel drops the lock when its process
dies (a SIGKILL, an out-of-memory kill, a reboot): a crash never leaves the directory locked. Readers of the
publication (``published/current/cprof.duckdb``) take no lock.

The lock is re-entrant within a process: ``cprof run`` takes it before it reads anything, and the Dagster run it
then executes in the same process takes it again (a second ``flock`` on a new descriptor would wait for itself).
``DataDirLock.fd`` is the descriptor holding it, for a child started with ``subprocess.Popen(pass_fds=[fd])``.

A writer's children outlive it by no more than the kernel needs to kill them: dbt, which dagster-dbt starts
without a way to pass descriptors, runs through ``cprof-dbt`` (pipelines/runtime/dbt_child.py), which dies with the
process that started it and holds a shared ``flock`` on ``<data>/.cprof.children.lock`` while it lives. A new
writer, once it holds the directory's lock, takes that lock exclusively (and lets go): it waits until the last
child of an earlier writer has exited, so no child of a killed run writes beside it.

A process is named by (host, pid, start time): the start time tells a live process from a later one that
reused the pid. ``worker_alive`` answers "is this process still there?" for the checks that mark a crashed
run failed (pipelines/runtime/monitoring.py).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

LOCK_NAME = ".cprof.lock"
CHILDREN_LOCK_NAME = ".cprof.children.lock"
CHILDREN_GRACE_SECONDS = 30.0  # how long a new writer waits at least for an earlier writer's children to die


@dataclass(frozen=True)
class Process:
    """A process, named so that a reused pid is not mistaken for it."""

    host: str
    pid: int
    started: float | None  # seconds since the epoch, from /proc; None where /proc is not available

    @classmethod
    def current(cls) -> Process:
        return cls(socket.gethostname(), os.getpid(), process_start_time(os.getpid()))


def process_start_time(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), from /proc on Linux; None if unknown or gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration, ValueError):
        return None
    ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22 of stat(5), after "pid (comm) state ..."
    return round(boot + ticks / os.sysconf("SC_CLK_TCK"), 2)


def worker_alive(host: str, pid: int, started: float | None) -> bool | None:
    """Is the process (host, pid, started) still running? None when it cannot be told from here (another host)."""
    if host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by another user
    if started is None:
        return True
    now_started = process_start_time(pid)
    # another process that reused the pid started later; /proc rounds to clock ticks, hence the tolerance
    return now_started is None or abs(now_started - started) < 1.0


class DataDirLocked(Exception):
    """Another process writes to this data directory; the message names it."""


class WarehouseInUse(DataDirLocked):
    """Another process has the working warehouse file open (a reader: an analyst's DuckDB session, a notebook,
    a BI tool), so no run can write it; the message names that process when DuckDB says which."""


_DUCKDB_LOCK = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


def warehouse_in_use(database: Path, error: Exception) -> WarehouseInUse | None:
    """DuckDB's error on opening ``database`` for writing while another process holds it, in one line; None for
    any other error. DuckDB names the holder's program and pid, and says a read-only open would work when the
    holder is a reader."""
    text = str(error)
    if "Could not set lock on file" not in text:
        return None
    found = _DUCKDB_LOCK.search(text)
    who = "another process"
    if found:
        pid = int(found.group("pid"))
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            command = ""
        command = " ".join(command.split())[:160]  # one line, whatever the command line holds
        who = f"process {pid} ({command or found.group('program')})"
    role = "reading it" if "read-only mode" in text else "holding it open"
    return WarehouseInUse(
        f"the working warehouse {database} is held by another program: {who} is {role}, and DuckDB lets no "
        "one write a file another process has open. Close that session and run again; readers belong on the "
        "publication, published/current/cprof.duckdb, which a run never locks"
    )


def _describe(holder: dict) -> str:
    started = holder.get("started_at") or "?"
    return (
        f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} ({holder.get('command', '?')}), "
        f"holding it since {started}"
    )


@dataclass
class _Held:
    fd: int
    count: int
    holder: dict


_held: dict[Path, _Held] = {}
_guard = threading.Lock()


def read_holder(data_dir: Path) -> dict:
    """What the lock file says about its last holder (empty if there is none)."""
    try:
        return json.loads((data_dir / LOCK_NAME).read_text() or "{}")
    except (OSError, ValueError):
        return {}


def command_line() -> str:
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    return " ".join([name, *sys.argv[1:]])[:200]


@contextmanager
def data_dir_lock(
    data_dir: Path,
    command: str | None = None,
    wait_seconds: float = 0.0,
    say: Callable[[str], None] | None = None,
    poll_seconds: float = 0.5,
) -> Iterator[_Held]:
    """Hold the data directory's writer lock. Fails at once with ``DataDirLocked`` naming the holder, or, with
    ``wait_seconds``, waits that long (saying once, through ``say``, what it waits for) before failing."""
    data_dir = Path(data_dir).resolve()
    with _guard:
        held = _held.get(data_dir)
        if held is not None:  # this process holds it already (cprof, then its in-process Dagster run)
            held.count += 1
    if held is not None:
        try:
            yield held
        finally:
            _release(data_dir)
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_seconds
    told = False
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
            holder = read_holder(data_dir)
            if time.monotonic() >= deadline:
                waited = f" after waiting {wait_seconds:.0f}s" if wait_seconds else ""
                raise DataDirLocked(
                    f"the data directory {data_dir} is being written by another process{waited}: "
                    f"{_describe(holder)}. Wait for it to finish (or `cprof run --wait SECONDS`); "
                    f"the lock file is {data_dir / LOCK_NAME}"
                )
            if not told and say is not None:
                say(
                    f"waiting up to {wait_seconds:.0f}s for the data directory lock, held by {_describe(holder)}"
                )
                told = True
            time.sleep(poll_seconds)
        _wait_for_children(data_dir, max(wait_seconds, CHILDREN_GRACE_SECONDS), poll_seconds)
    except BaseException:
        os.close(fd)
        raise
    me = Process.current()
    holder = {
        "pid": me.pid,
        "host": me.host,
        "process_started": me.started,
        "command": command or command_line(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
    held = _Held(fd=fd, count=1, holder=holder)
    with _guard:
        _held[data_dir] = held
    try:
        yield held
    finally:
        _release(data_dir)


def _wait_for_children(data_dir: Path, wait_seconds: float, poll_seconds: float) -> None:
    """Wait until no child of an earlier writer holds the children lock (see the module's docstring)."""
    fd = os.open(data_dir / CHILDREN_LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return  # closing the descriptor lets go of it
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
            if time.monotonic() >= deadline:
                raise DataDirLocked(
                    f"a child process of an earlier writer of {data_dir} (dbt) is still running after "
                    f"{wait_seconds:.0f}s; it holds {data_dir / CHILDREN_LOCK_NAME} (see `fuser` or `lsof` on it)"
                )
            time.sleep(min(poll_seconds, 0.1))
    finally:
        os.close(fd)


def hold_as_child(data_dir: Path) -> int | None:
    """In a writer's child: hold the children lock (shared) until this process exits; the descriptor, or None
    when the data directory does not exist."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return None
    fd = os.open(data_dir / CHILDREN_LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_SH)  # never waits long: a writer holds it exclusively only to check it is free
    return fd


def _release(data_dir: Path) -> None:
    with _guard:
        held = _held[data_dir]
        held.count -= 1
        if held.count:
            return
        del _held[data_dir]
    # The holder's record stays in the file for the next reader's message; the lock itself goes with the fd.
    os.close(held.fd)
