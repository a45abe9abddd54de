"""Every CPROF_ setting is read once, at a process's start, into one typed Settings, and validated there: a bad
value fails with one line naming the variable, the value and what is expected, from ``cprof`` and when Dagster
loads the code location, before anything runs. No other module reads a setting from the environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from pipelines.lib.config import PROJECT_ROOT, WORKSPACE_YAML
from pipelines.lib.settings import SettingError, Settings

# Variables the project sets for its own child processes, or a test's hook: not settings a person gives.
NOT_SETTINGS = {
    "CPROF_PERIOD_FROM": "the run's range, set for dbt (pipelines/defs/assets/transform.py)",
    "CPROF_PERIOD_TO": "the run's range, set for dbt",
    "CPROF_DBT_TARGET": "set for dbt from the engine (pipelines/engines/__init__.py)",
    "CPROF_DBT_PARENT": "set for cprof-dbt, the pid of the run (pipelines/defs/dbt.py)",
    "CPROF_SPARK_THRIFT_HOST": "set for dbt from the run's Spark session",
    "CPROF_SPARK_THRIFT_PORT": "set for dbt from the run's Spark session",
    "CPROF_ALERT_SUBJECT": "set for a notify command (pipelines/defs/alerts.py)",
    "CPROF_ALERT_RUN_ID": "set for a notify command",
    "CPROF_ALERT_JOB": "set for a notify command",
    "CPROF_PAUSE_AT": "a test's hook in publishing (pipelines/publication/publish.py)",
    "CPROF_FAIL_AT": "a test's hook between a Spark partition overwrite and its drop (pipelines/engines/spark_warehouse.py)",
}


def _variables() -> set[str]:
    """The variable of every field of Settings."""
    return {declaration.name for declaration in Settings.declarations().values()}


def _named_in_code() -> set[str]:
    found = set()
    for folder in ("pipelines", "data_checks"):
        for path in (PROJECT_ROOT / folder).rglob("*.py"):
            found |= set(re.findall(r"[\"'](CPROF_[A-Z_]+)[\"']", path.read_text()))
    found |= set(
        re.findall(r"env_var\('(CPROF_[A-Z_]+)'", (PROJECT_ROOT / "dbt_project/profiles.yml").read_text())
    )
    return found


def test_every_variable_the_code_reads_is_a_declared_setting():
    named = _named_in_code()
    assert "CPROF_FIRST_MONTH" in named and "CPROF_GX_BATCH_ROWS" in named  # the scan finds them
    assert named - set(NOT_SETTINGS) == _variables(), "make each setting a field of Settings"


def test_a_settings_variable_is_its_field_name():
    """One name per idea: the field ``first_month`` is the variable CPROF_FIRST_MONTH."""
    for name, declaration in Settings.declarations().items():
        assert declaration.name == f"CPROF_{name.upper()}", name


def test_the_settings_table_is_the_settings():
    """docs/settings.md has a row for every field: its variable, name and default (the data directory's said)."""
    table = (PROJECT_ROOT / "docs" / "settings.md").read_text()
    rows = {line.split(" | ")[0].strip("| `") for line in table.splitlines() if line.startswith("| `CPROF_")}
    assert rows == _variables()
    for field in fields(Settings):
        default = "data/ in the project" if field.name == "data_dir" else field.default
        row = f"| `{Settings.variable(field.name)}` | `{field.name}` | {'unset' if default is None else default} |"
        assert row in table, row


BAD = [
    ("CPROF_FIRST_MONTH", "2025-13", "a month, YYYY-MM"),
    ("CPROF_FIRST_MONTH", "2025-1", "a month, YYYY-MM"),
    ("CPROF_LAST_MONTH", "December", "a month, YYYY-MM"),
    ("CPROF_ENGINE", "oracle", "one of duckdb, spark"),
    ("CPROF_DUCKDB_MEMORY_LIMIT", "lots", "a memory size"),
    ("CPROF_GX_BATCH_ROWS", "-1", "a whole number of rows"),
    ("CPROF_RETURN_WINDOW_MONTHS", "3.5", "a whole number of months"),
    ("CPROF_REPORT_MONTHS", "0", "1 or more"),
    ("CPROF_REPORT_CUSTOMERS", "all", "a whole number of customers"),
    ("CPROF_RETRY_BACKOFF_SECONDS", "10m", "a number of seconds"),
    ("CPROF_SPARK_THRIFT", "localhost", "host:port"),
    ("CPROF_SPARK_DRIVER_MEMORY", "2 gigs", "a JVM memory size"),
    ("CPROF_NOTIFY_COMMAND", 'page "on call', "a command line"),
    ("CPROF_MAX_ROW_DROP", "50%", "a fraction between 0 and 1"),
    ("CPROF_MAX_ROW_DROP", "1.5", "a fraction between 0 and 1"),
    ("CPROF_LANDING_QUIET_SECONDS", "-1", "a number of seconds"),
    ("CPROF_ALLOW_EXTERNAL_LINKS", "maybe", "1 or 0"),
]


@pytest.mark.parametrize(("name", "value", "expected"), BAD, ids=[f"{n}={v}" for n, v, _ in BAD])
def test_a_bad_setting_fails_with_one_line_naming_it(name: str, value: str, expected: str):
    with pytest.raises(SettingError) as caught:
        Settings.from_environ({name: value})
    message = str(caught.value)
    assert message.startswith(f"{name}={value!r}: expected ") and expected in message, message
    assert "\n" not in message


def test_good_and_unset_settings_pass_typed():
    assert Settings.from_environ({}) == Settings()
    settings = Settings.from_environ(
        {
            "CPROF_FIRST_MONTH": "2024-01",
            "CPROF_ENGINE": "Spark",
            "CPROF_MAX_ROW_DROP": "0.5",
            "CPROF_GX_BATCH_ROWS": " 10 ",
            "CPROF_NOTIFY_COMMAND": "page 'on call'",
            "CPROF_REPORT_MONTHS": "",  # empty: the default
        }
    )
    assert (settings.first_month, settings.engine, settings.max_row_drop) == ("2024-01", "spark", 0.5)
    assert settings.gx_batch_rows == 10 and settings.notify_command == ("page", "on call")
    assert settings.report_months == Settings().report_months == 24


def test_the_data_directory_may_not_be_a_file(tmp_path: Path):
    a_file = tmp_path / "data"
    a_file.write_text("")
    with pytest.raises(SettingError, match=r"^CPROF_DATA_DIR="):
        Settings.from_environ({"CPROF_DATA_DIR": str(a_file)})


@pytest.mark.parametrize("value", ["2025-13", "2025-1"])
def test_cprof_names_a_bad_month_in_one_line(tmp_path: Path, value: str):
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "--data-dir", str(tmp_path / "data"), "run"],
        env={**os.environ, "CPROF_FIRST_MONTH": value},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"cprof run: error: CPROF_FIRST_MONTH={value!r}: expected a month, YYYY-MM (month 01 to 12), e.g. 2024-01"
    ]


def test_the_code_location_fails_to_load_naming_the_setting(tmp_path: Path):
    """What the webserver and the daemon meet: the load of workspace.yaml's code location."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", str(WORKSPACE_YAML)],
        env={**os.environ, "CPROF_DATA_DIR": str(tmp_path / "data"), "CPROF_GX_BATCH_ROWS": "1e6"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=PROJECT_ROOT,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "SettingError: CPROF_GX_BATCH_ROWS='1e6': expected a whole number of rows" in output, output


# Every use of the process environment outside pipelines/lib/settings.py, each with why it is there. A new one
# fails the test below (take the setting from the Settings passed in; give a child process its own environment),
# and so does one removed without being struck off (the list stays true).
ENVIRONMENT_USES = {
    # Where a process starts: the settings read once.
    ("pipelines/cli.py", "Settings.from_environ(os.environ)"): "cprof's settings, read once at its start",
    (
        "pipelines/definitions.py",
        "Settings.from_environ(os.environ)",
    ): "the code location's, read once when Dagster's loader calls its entry point (not at import)",
    # Child processes' own environments.
    ("pipelines/defs/dbt.py", "{**os.environ,"): "dbt parse's own environment (a child process)",
    ("pipelines/defs/dbt.py", "os.environ.get(name)"): "dbt's environment around dagster-dbt's cli, restored",
    ("pipelines/defs/dbt.py", "telemetry_off(os.environ), **(env"): "dbt's usage statistics off, unless set",
    ("pipelines/defs/dbt.py", "os.environ.update(values)"): "dagster-dbt's cli has no env parameter",
    ("pipelines/defs/dbt.py", "os.environ.pop(name"): "restoring it",
    ("pipelines/defs/dbt.py", "os.environ[name] ="): "restoring it",
    ("pipelines/defs/alerts.py", "**os.environ,"): "a notify command's own environment (a child process)",
    (
        "pipelines/runtime/dbt_child.py",
        "os.environ.get(PARENT_ENV)",
    ): "cprof-dbt reads what its parent gave it",
    ("pipelines/runtime/dbt_child.py", "os.environ.get(DATA_DIR_ENV)"): "the data directory dbt was given",
    ("pipelines/runtime/dbt_child.py", "os.environ[DATA_DIR_ENV]"): "the data directory dbt was given",
    # Dagster's and the frameworks' own variables, which they read only from the environment, in this process.
    ("pipelines/runtime/dagster_private.py", "os.environ.setdefault(BATCH_SIZE_ENV"): "Dagster's own setting",
    (
        "pipelines/runtime/instance.py",
        "os.environ.setdefault(PLANNED_EVENTS_ENV",
    ): "Dagster reads it itself, in the process that plans a run",
    ("data_checks/gx_run.py", 'os.environ.setdefault("GX_ANALYTICS'): "GX telemetry off",
    # A test's hook.
    ("pipelines/publication/publish.py", "os.environ.get(PAUSE_ENV)"): "a test's fault-injection hook",
    ("pipelines/engines/spark_warehouse.py", "os.environ.get(FAIL_ENV)"): "a test's fault-injection hook",
}


def _environment_uses() -> set[tuple[str, str]]:
    found = set()
    for folder in ("pipelines", "data_checks"):
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py")):
            relative = path.relative_to(PROJECT_ROOT).as_posix()
            if relative == "pipelines/lib/settings.py":
                continue
            for line in path.read_text().splitlines():
                if "os.environ" not in line and "getenv(" not in line:
                    continue
                known = [use for (where, use) in ENVIRONMENT_USES if where == relative and use in line]
                found.add((relative, known[0] if known else line.strip()))
    return found


def test_the_environment_is_read_and_written_only_where_listed():
    """A source scan, as a guard: no module but pipelines/lib/settings.py reads a CPROF_ variable from os.environ,
    and nothing else writes os.environ, except the uses listed (each with its reason)."""
    assert _environment_uses() == set(ENVIRONMENT_USES)


def test_settings_travel_as_text_and_come_back_the_same(tmp_path: Path):
    """What a cprof run hands Dagster to rebuild its job (pipelines/run.py): every field, default or not, as its
    variable's text, read back into equal settings."""
    given = Settings.from_environ(
        {
            "CPROF_DATA_DIR": str(tmp_path / "a dir; with spaces"),
            "CPROF_ENGINE": "spark",
            "CPROF_FIRST_MONTH": "2024-02",
            "CPROF_MAX_ROW_DROP": "0.00001",
            "CPROF_LANDING_QUIET_SECONDS": "2.5",
            "CPROF_NOTIFY_COMMAND": "page 'on call' --now",
            "CPROF_NOTIFY_LOG": str(tmp_path / "alerts.jsonl"),
            "CPROF_GX_BATCH_ROWS": "0",
        }
    )
    assert given.max_row_drop == 0.00001 and given.notify_command == ("page", "on call", "--now")
    for settings in (Settings(), given):
        text = settings.to_environ()
        assert all(isinstance(value, str) for value in text.values())
        assert Settings.from_environ(text) == settings
