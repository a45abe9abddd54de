"""The Dagster instance of a data directory: the ``dagster.yaml`` this project writes under
``<data dir>/dagster_home`` (storage, run launcher, run monitoring, one run at a time) and the process-wide
default by which Dagster plans a range of months in one event.

The webserver and the daemon read the same ``dagster.yaml`` (``make dev`` points DAGSTER_HOME at the directory):
the classes it names (pipelines/runtime/monitoring.py, pipelines/runtime/dagster_private.py) are in this package.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

PLANNED_EVENTS_ENV = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"


def plan_ranges_in_one_event() -> None:
    """Have Dagster plan a run over a range of months in one event per asset. Dagster reads the variable itself,
    in the process that plans the run (cprof's, the code location's), so it is a process-wide default (the
    Makefile exports it too); a value already set is kept."""
    # A run over a range of months records one "materialization planned" event per asset instead of one per
    # asset and month (2,124 events, 26 s of a 36-month build on SQLite storage). Dagster's trade-off: when
    # such a run fails, its partitions are not marked failed in the UI (the run is).
    os.environ.setdefault(PLANNED_EVENTS_ENV, "true")


# The Dagster instance of a data directory: telemetry off, the UI's first-visit pop-ups off, and one run at a
# time, because DuckDB allows one writer per file (a second run would fail to open the warehouse). Run monitoring
# fails a run whose worker process is gone (killed, or its machine restarted): the launcher is Dagster's
# DefaultRunLauncher plus a health check of the worker process (pipelines/runtime/monitoring.py), which the
# DefaultRunLauncher lacks; without it, a killed run stays STARTED and the queue holds back every later run. A
# dead worker is not restarted (max_resume_run_attempts 0): the next run of the months repairs what it left. For
# a team, point storage at PostgreSQL (see docs/OPERATING.md).
_TELEMETRY_YAML = """telemetry:
  enabled: false
"""
_NUX_YAML = """nux:
  enabled: false
"""
_CONCURRENCY_YAML = """concurrency:
  runs:
    max_concurrent_runs: 1
"""
_RUN_MONITORING_YAML = """run_launcher:
  module: {module}
  class: ProcessRunLauncher
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  max_resume_run_attempts: 0
  poll_interval_seconds: 30
"""
# Dagster's SQLite event log (in $DAGSTER_HOME/history/runs, where Dagster keeps it), storing the per-month
# materializations of one asset in one transaction instead of two each (pipelines/runtime/dagster_private.py).
_EVENT_LOG_YAML = """event_log_storage:
  module: {module}
  class: BatchingSqliteEventLogStorage
"""
RUN_MONITORING_YAML = _RUN_MONITORING_YAML.format(module="pipelines.runtime.monitoring")
# Dagster's SQLite event log, in <dagster_home>/history/runs where Dagster keeps it, storing the per-month
# materializations of one asset in one transaction instead of two each (pipelines/runtime/dagster_private.py). Its
# directory is written out: no process need have DAGSTER_HOME in its environment to open it (cprof builds the
# instance from the directory), and a data directory moved or copied gets it rewritten (write_dagster_yaml).
_EVENT_LOG_YAML = """event_log_storage:
  module: {module}
  class: BatchingSqliteEventLogStorage
"""
_EVENT_LOG_DIR_YAML = """  config:
    base_dir: {base_dir}
"""
EVENT_LOG_YAML = _EVENT_LOG_YAML.format(module="pipelines.runtime.dagster_private")
_BASE_YAML = _TELEMETRY_YAML + _NUX_YAML + _CONCURRENCY_YAML + RUN_MONITORING_YAML
# What earlier versions wrote: such a file is brought up to date, a team's own settings are kept. The launcher
# and the storage lived in other modules before (pipelines/defs/monitoring.py, defs/event_storage.py,
# lib/dagster_private.py): a file naming them would stop the webserver, the daemon and cprof.
_MONITORING_BEFORE = _RUN_MONITORING_YAML.format(module="pipelines.defs.monitoring")
_BASE_BEFORE = _TELEMETRY_YAML + _NUX_YAML + _CONCURRENCY_YAML + _MONITORING_BEFORE
PREVIOUS_DAGSTER_YAMLS = (
    _TELEMETRY_YAML + _CONCURRENCY_YAML,
    _TELEMETRY_YAML + _NUX_YAML + _CONCURRENCY_YAML,
    _TELEMETRY_YAML + _CONCURRENCY_YAML + _MONITORING_BEFORE,
    _BASE_BEFORE,
    _BASE_BEFORE + _EVENT_LOG_YAML.format(module="pipelines.defs.event_storage"),
    # the event log's directory left to $DAGSTER_HOME
    _BASE_BEFORE + _EVENT_LOG_YAML.format(module="pipelines.lib.dagster_private"),
)


def event_log_dir(dagster_home: Path) -> Path:
    """Where the instance of ``dagster_home`` keeps its SQLite event log (Dagster's own place for it)."""
    return dagster_home / "history" / "runs"


def dagster_yaml(dagster_home: Path) -> str:
    """The instance configuration this project writes in ``dagster_home``."""
    # A JSON string is a YAML double-quoted scalar: any path, quoted as it is.
    return (
        _BASE_YAML
        + EVENT_LOG_YAML
        + _EVENT_LOG_DIR_YAML.format(base_dir=json.dumps(str(event_log_dir(dagster_home))))
    )


def _written_by_this_project(text: str) -> bool:
    """Whether ``text`` is a dagster.yaml this project wrote: an earlier version's, or this one's for any
    directory (a data directory copied or moved), which differ in the event log's one line."""
    if text in PREVIOUS_DAGSTER_YAMLS:
        return True
    head = dagster_yaml(Path("/")).rpartition("base_dir: ")[0] + "base_dir: "
    return text.startswith(head) and text.endswith("\n") and "\n" not in text[len(head) : -1]


def write_dagster_yaml(dagster_home: Path) -> Path:
    """Write ``dagster.yaml`` in ``dagster_home`` unless one is there (a team's own settings are kept; one that
    this project wrote, an earlier version or for another directory, is brought up to date)."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    wanted = dagster_yaml(dagster_home)
    written = config.read_text() if config.exists() else None
    if written is None or (written != wanted and _written_by_this_project(written)):
        config.write_text(wanted)
    return config


def main(argv: list[str] | None = None) -> int:
    """``python -m pipelines.runtime.instance DAGSTER_HOME``: write the instance's dagster.yaml there (``make dev``
    does, before it starts the webserver and the daemon on that directory)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m pipelines.runtime.instance DAGSTER_HOME", file=sys.stderr)
        return 2
    print(write_dagster_yaml(Path(args[0]).expanduser().resolve()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
