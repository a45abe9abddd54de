"""Shared fixtures: small generated samples in temporary data directories."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipelines.lib.config import TELEMETRY_OFF, Paths
from pipelines.lib.settings import Settings
from pipelines.runtime.instance import plan_ranges_in_one_event
from pipelines.sample.generate import GenerateConfig, generate
from tests.shared_build import built_once

# As the Makefile does for the commands it runs: usage statistics off for every process the tests start.
for name, value in TELEMETRY_OFF.items():
    os.environ.setdefault(name, value)
plan_ranges_in_one_event()
SMALL = GenerateConfig(customers=120, months=3, start="2024-01", seed=7)


@pytest.fixture(autouse=True)
def _isolated_dagster_home(tmp_path_factory, monkeypatch):
    """No test touches the developer's data directory or Dagster instance."""
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("CPROF_DATA_DIR", str(tmp_path_factory.mktemp("unused_default_data")))


@pytest.fixture(scope="session")
def small_landing(tmp_path_factory) -> Path:
    """A generated landing zone (120 customers, 2024-01..2024-03), shared read-only by tests."""

    def build(directory: Path) -> Path:
        generate(SMALL, directory / "landing")
        return directory / "landing"

    return built_once(tmp_path_factory, "small", build)


@dataclass(frozen=True)
class SampleRun:
    """The run that published the small sample: its data directory, its summary and what it said."""

    paths: Paths
    summary: Any  # pipelines.run.RunSummary (imported inside the fixture: nothing at import reads data)
    progress: list[str]


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory, small_landing: Path) -> SampleRun:
    """The small sample ingested, built and published once, by ``cprof run``'s function; every test that only
    reads a published small sample reads this one (or works on a copy of it)."""
    from pipelines.run import run_pipeline

    def build(directory: Path) -> SampleRun:
        paths = Paths(directory / "data")
        shutil.copytree(small_landing, paths.landing)
        progress: list[str] = []
        summary = run_pipeline(Settings(data_dir=paths.data_dir), progress=progress.append)
        return SampleRun(paths, summary, progress)

    return built_once(tmp_path_factory, "published", build)


@pytest.fixture(scope="session")
def published_sample(sample_run: SampleRun) -> Paths:
    """The small sample ingested, built and published once. Tests read it, or work on a copy of it."""
    return sample_run.paths


@pytest.fixture(scope="session")
def demo_published(tmp_path_factory) -> Paths:
    """The demo (``GenerateConfig()``'s defaults: 2,000 customers, 24 months) generated, built and published
    once, as ``make demo`` does. Tests read it, or work on a copy of it."""
    from pipelines.run import run_pipeline

    def build(directory: Path) -> Paths:
        paths = Paths(directory / "data")
        generate(GenerateConfig(), paths.landing)
        run_pipeline(Settings(data_dir=paths.data_dir), progress=lambda _: None)
        return paths

    return built_once(tmp_path_factory, "demo", build)


@pytest.fixture
def data_paths(tmp_path: Path, small_landing: Path) -> Paths:
    """A fresh data directory whose landing zone is a private copy of the small sample."""
    paths = Paths(tmp_path / "data")
    shutil.copytree(small_landing, paths.landing)
    return paths


def pytest_configure(config):
    os.environ.setdefault("DO_NOT_TRACK", "1")
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        # Every worker builds the code location's definitions (some test modules at collection), which parses
        # the dbt project into dbt_project/target/ when its manifest is missing or stale: two `dbt parse` writing
        # one manifest, or a worker reading it half written. Parsed here, in the process that starts the
        # workers, before them.
        from pipelines.defs.dbt import ensure_manifest

        ensure_manifest()
