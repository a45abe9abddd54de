"""dbt's command line on the project against a test's own warehouse: the one way tests run dbt outside Dagster; and
the dbt command lines a Dagster run started, as its log says."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from pipelines.defs.dbt import dbt_executable
from pipelines.lib.config import DBT_PROJECT_DIR


def run_dbt(data_dir: Path, *args: str, month: str | None = None) -> subprocess.CompletedProcess:
    """dbt's command line ``args`` on the project against the warehouse in ``data_dir`` (its target and logs there
    too), refreshing ``month`` alone (``YYYY-MM-DD``), or with no refresh window without it: the environment's
    ``CPROF_PERIOD_*`` are never passed on."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("CPROF_PERIOD_")}
    if month:
        environment |= {"CPROF_PERIOD_FROM": month, "CPROF_PERIOD_TO": month}
    return subprocess.run(
        [
            dbt_executable(),
            *args,
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(data_dir / "target"),
            "--log-path",
            str(data_dir / "logs"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**environment, "CPROF_DATA_DIR": str(data_dir)},
    )


def dbt_commands(instance, run_id: str) -> list[str]:
    """The dbt command lines the run ``run_id`` of ``instance`` started, in order (dagster-dbt's "Running dbt
    command" log messages)."""
    return [
        record.user_message
        for record in instance.all_logs(run_id)
        if record.user_message.startswith("Running dbt command")
    ]
