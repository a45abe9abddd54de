"""``cprof-dbt``: dbt as a child that dies with the process that started it.

dagster-dbt runs dbt as a subprocess (``subprocess.Popen([dbt_executable, ...])``, with no way to pass
``preexec_fn`` or descriptors), and a killed run worker would leave it re-parented and writing the warehouse.
The resource's executable is therefore this launcher (pipelines/defs/dbt.py): when started by a writer (which
puts its pid in ``CPROF_DBT_PARENT``), it asks the kernel to SIGKILL it when its parent dies
(``prctl(PR_SET_PDEATHSIG)``, Linux), exits at once if the parent died before that, holds the data
directory's children lock while it lives (pipelines/runtime/lock.py), and then runs dbt's own command line in this
process: the same dbt-core, its arguments and exit code unchanged.

The kernel sends the signal when the *thread* that started the child ends: dagster-dbt starts dbt in the
step's thread, which waits for dbt's output until it exits, so that thread outlives dbt unless the run dies.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PARENT_ENV = "CPROF_DBT_PARENT"
DATA_DIR_ENV = "CPROF_DATA_DIR"  # as pipelines/lib/config.py names it (not imported: this starts before dbt)
PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """SIGKILL this process when ``parent`` dies; exit now if it already has."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died between our fork and the prctl
        sys.exit(f"cprof-dbt: the process that started dbt (pid {parent}) is gone; not running dbt")


def main() -> None:
    parent = os.environ.get(PARENT_ENV)
    if parent:
        die_with_parent(int(parent))
        if os.environ.get(DATA_DIR_ENV):
            from pipelines.runtime.lock import hold_as_child

            hold_as_child(os.environ[DATA_DIR_ENV])
    from dbt.cli.main import cli

    sys.argv[0] = "dbt"
    sys.exit(cli())


if __name__ == "__main__":
    main()
