"""Where everything lives. One directory, the data directory (the setting ``data_dir``, ``CPROF_DATA_DIR``:
pipelines/lib/settings.py), holds all the pipeline writes.

Layout under the data directory::

    landing/            input files: landing/<source>/<YYYY-MM>.csv and landing/reference/<name>.csv
    warehouse.duckdb    the working warehouse (one writer: the pipeline)
    published/          what BI tools read (each release with its HTML report, report/index.html)
    dagster_home/       Dagster's instance (run history, event log)
    logs/               dbt and pipeline logs
    .cprof.lock         the writers' lock (pipelines/runtime/lock.py)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
# dbt's profile (dbt_project/profiles.yml) reads the data directory from its own environment under this name.
DATA_DIR_ENV = "CPROF_DATA_DIR"
WORKSPACE_YAML = PROJECT_ROOT / "workspace.yaml"


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

    @property
    def duckdb_spill(self) -> Path:
        """DuckDB's temp_directory for the working warehouse (dbt's profile names the same folder)."""
        return self.data_dir / "duckdb_tmp"


# Usage statistics off, for the child processes the project starts (dbt: pipelines/defs/dbt.py): dbt reads these
# in its own process. In this process Dagster's telemetry is off by the instance's dagster.yaml (below), and the
# Makefile exports the same variables for the commands it runs.
TELEMETRY_OFF = {
    "DO_NOT_TRACK": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DAGSTER_DISABLE_TELEMETRY": "1",
}


def telemetry_off(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of TELEMETRY_OFF that ``environ`` does not set (a person's own value is kept), for a child
    process's environment."""
    return {name: value for name, value in TELEMETRY_OFF.items() if name not in environ}
