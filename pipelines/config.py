"""Where everything lives. One environment variable, ``CPROF_DATA_DIR``, holds all the pipeline writes.

Layout under the data directory::

    landing/            input files: landing/<source>/<YYYY-MM>.csv and landing/reference/<name>.csv
    warehouse.duckdb    the working warehouse (one writer: the pipeline)
    published/          what BI tools read (each release with its HTML report, report/index.html)
    dagster_home/       Dagster's instance (run history, event log)
    logs/               dbt and pipeline logs
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
DATA_DIR_ENV = "CPROF_DATA_DIR"


@dataclass(frozen=True)
class Paths:
    data_dir: Path

    @property
    def landing(self) -> Path:
        return self.data_dir / "landing"

    @property
    def reference(self) -> Path:
        return self.landing / "reference"

    @property
    def warehouse(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def published(self) -> Path:
        return self.data_dir / "published"

    @property
    def dagster_home(self) -> Path:
        return self.data_dir / "dagster_home"

    @property
    def logs(self) -> Path:
        return self.data_dir / "logs"

    @property
    def dbt_target(self) -> Path:
        return self.data_dir / "dbt_target"


def data_dir() -> Path:
    """The data directory: ``$CPROF_DATA_DIR``, or ``data/`` under the project."""
    return Path(os.environ.get(DATA_DIR_ENV) or PROJECT_ROOT / "data").expanduser().resolve()


def paths() -> Paths:
    return Paths(data_dir())


PLANNED_EVENTS_ENV = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"


def quiet_telemetry() -> None:
    """Turn off dbt's and Dagster's usage statistics for this process and its children, and have Dagster
    plan a run over a range of months in one event per asset."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    # A run over a range of months records one "materialization planned" event per asset instead of one per
    # asset and month (2,124 events, 26 s of a 36-month build on SQLite storage). Dagster's trade-off: when
    # such a run fails, its partitions are not marked failed in the UI (the run is).
    os.environ.setdefault(PLANNED_EVENTS_ENV, "true")


# The Dagster instance of a data directory: telemetry off, and one run at a time, because DuckDB allows one
# writer per file (a second run would fail to open the warehouse). For a team, point storage at PostgreSQL
# (see the README).
DAGSTER_YAML = """telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 1
"""


def write_dagster_yaml(dagster_home: Path) -> Path:
    """Write ``dagster.yaml`` in ``dagster_home`` unless one is there (a team's own settings are kept)."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    return config
