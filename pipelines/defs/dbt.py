"""The dbt project as Dagster sees it: the project, its manifest and the CLI resource."""

from __future__ import annotations

import os
import subprocess
import sys
from functools import cached_property
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject
from packaging import version

from pipelines.lib.config import DBT_PROJECT_DIR, telemetry_off
from pipelines.runtime.dbt_child import PARENT_ENV

MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"
_PARSED_FOLDERS = ("models", "macros", "tests", "seeds")


class DbtProjectError(Exception):
    """The dbt project does not parse; the message carries dbt's own explanation."""


def _newest_source_mtime() -> float:
    files = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml"]
    for folder in _PARSED_FOLDERS:
        files.extend(p for p in (DBT_PROJECT_DIR / folder).rglob("*") if p.is_file())
    return max(p.stat().st_mtime for p in files if p.exists())


def dbt_executable() -> str:
    """dbt as installed beside this Python (the virtual environment's): ``cprof-dbt``, which runs that dbt and
    dies with the run that started it (pipelines/runtime/dbt_child.py), else that ``dbt``, else the one on PATH."""
    for name in ("cprof-dbt", "dbt"):
        beside = Path(sys.executable).with_name(name)
        if beside.exists():
            return str(beside)
    return "dbt"


def ensure_manifest() -> Path:
    """Parse the dbt project when its manifest is missing or older than any model, macro or test."""
    if MANIFEST.exists() and MANIFEST.stat().st_mtime >= _newest_source_mtime():
        return MANIFEST
    command = [
        dbt_executable(),
        "parse",
        "--quiet",
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
    ]
    env = {**os.environ, **telemetry_off(os.environ), "DBT_LOG_PATH": str(DBT_PROJECT_DIR / "logs")}
    done = subprocess.run(command, check=False, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise DbtProjectError(
            f"dbt parse failed for {DBT_PROJECT_DIR}:\n{done.stdout}\n{done.stderr}".rstrip()
        )
    return MANIFEST


dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


class DbtCli(DbtCliResource):
    """dagster-dbt's CLI resource without two costs it pays before every dbt invocation that buy this project
    nothing (3.6 s of a one-month refresh at 10M lines):

    * it runs ``dbt --version`` in a subprocess (1.9 s) to learn the version; when the executable is the dbt
      installed beside this Python, the version is the dbt-core imported here;
    * it opens a dbt adapter in this process (1.7 s), used only to fetch row counts or column metadata from
      the warehouse after the build, which these assets do not ask for (dagster-dbt runs without an adapter
      when opening one fails).

    And dbt dies with the run that started it: ``cli`` tells ``cprof-dbt`` (the executable) its parent's pid.
    """

    def cli(self, args, *, environment: dict[str, str] | None = None, **kwargs):
        """dagster-dbt's ``cli``, with ``environment`` added to the dbt process's environment. dagster-dbt gives
        dbt a copy of this process's environment and has no parameter for it (dagster-dbt 0.29): so it is set
        here, the one place that writes this process's environment, only while dbt starts, and restored after."""
        values = {**telemetry_off(os.environ), **(environment or {}), PARENT_ENV: str(os.getpid())}
        saved = {name: os.environ.get(name) for name in values}
        os.environ.update(values)
        try:
            return super().cli(args, **kwargs)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    @cached_property
    def _cli_version(self) -> version.Version:
        if Path(self.dbt_executable).parent == Path(sys.executable).parent:
            from dbt.version import __version__

            return version.parse(__version__)
        return DbtCliResource._cli_version.func(self)

    def _initialize_dbt_core_adapter(self, args):
        return None


def dbt_resource() -> DbtCliResource:
    return DbtCli(project_dir=dbt_project, profiles_dir=str(DBT_PROJECT_DIR), dbt_executable=dbt_executable())
