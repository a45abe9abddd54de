"""Nothing at import reads a setting or data, and nothing writes this process's environment: the settings are read
once where a process starts and travel as arguments (pipelines/lib/settings.py); the Dagster partitions are built
with the definitions, from a Settings (pipelines/definitions.py), not when a module is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pipelines.definitions import build_definitions
from pipelines.lib.config import PROJECT_ROOT, Paths
from pipelines.lib.settings import Settings
from pipelines.run import run_pipeline
from pipelines.runtime.dagster_private import BATCH_SIZE, BATCH_SIZE_ENV
from pipelines.runtime.instance import PLANNED_EVENTS_ENV

# In a fresh interpreter: every module of pipelines/ and data_checks/ imported with a hostile environment and a
# data directory that is a trap, every access to it audited; then the definitions built from explicit settings.
PROBE = r"""
import importlib, json, os, pkgutil, sys
from pathlib import Path

trap = Path(os.environ["CPROF_DATA_DIR"])
touched = []


def audit(event, args):
    if event in ("open", "os.listdir", "os.scandir") and args and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.fsdecode(args[0])
        if path.startswith(str(trap)):
            touched.append(f"{event} {path}")


sys.addaudithook(audit)
imported = []
for package in ("pipelines", "data_checks"):
    root = importlib.import_module(package)
    for module in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        importlib.import_module(module.name)
        imported.append(module.name)

from pipelines.definitions import build_definitions
from pipelines.lib.settings import Settings

settings = Settings(data_dir=Path(sys.argv[1]), first_month="2024-01", last_month="2024-03")
defs = build_definitions(settings)
keys = defs.resolve_job_def("refresh").partitions_def.get_partition_keys()
print(json.dumps({"imported": imported, "touched": touched, "keys": keys}))
"""


def test_importing_every_module_reads_no_setting_and_no_data(tmp_path: Path):
    trap = tmp_path / "trap"
    trap.mkdir()
    # Anything that reads the history of the partitions, or looks at the landing zone, meets a directory where a
    # file should be, and the audit hook names the access anyway.
    (trap / "history.json").mkdir()
    (trap / "landing").mkdir()
    (trap / "landing" / "order_lines").mkdir()
    (trap / "landing" / "order_lines" / "2019-13.csv").mkdir()
    hostile = {
        **{
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("CPROF_", "DAGSTER_HOME"))
        },
        "CPROF_DATA_DIR": str(trap),
        # Every later setting bad: a module that read the settings at import would fail on one of them.
        "CPROF_FIRST_MONTH": "2025-13",
        "CPROF_GX_BATCH_ROWS": "1e6",
        "CPROF_ALLOW_EXTERNAL_LINKS": "maybe",
        "CPROF_ENGINE": "oracle",
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "explicit")],
        env=hostile,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert {
        "pipelines.definitions",
        "pipelines.defs.partitions",
        "pipelines.cli",
        "data_checks.gx_run",
    } <= set(found["imported"])
    assert found["touched"] == []
    assert found["keys"] == ["2024-01-01", "2024-02-01", "2024-03-01"]  # from the explicit settings


def test_a_run_and_the_definitions_leave_this_process_environment_as_it_was(data_paths: Paths, monkeypatch):
    """``cprof run``'s function, in this process, on a data directory other than the environment's, without
    DAGSTER_HOME: it builds its Dagster instance from the data directory and its definitions from its settings,
    and writes nothing into os.environ. Dagster's and GX's own switches, which they read only from the
    environment, are set where a process starts (cprof's main, the Makefile), before this is measured."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv(PLANNED_EVENTS_ENV, "true")
    monkeypatch.setenv(BATCH_SIZE_ENV, BATCH_SIZE)
    monkeypatch.setenv("GX_ANALYTICS_ENABLED", "False")
    before = dict(os.environ)
    settings = Settings(data_dir=data_paths.data_dir)
    summary = run_pipeline(settings, progress=lambda _: None)
    assert summary.months == ["2024-01", "2024-02", "2024-03"]
    assert dict(os.environ) == before
    assert (data_paths.dagster_home / "history" / "runs").is_dir()  # the run's events: the data directory's
    build_definitions(settings).resolve_job_def("refresh")
    assert dict(os.environ) == before
