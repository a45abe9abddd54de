"""Running the pipeline for a range of months, as ``cprof run`` does: ingest, then transform and test.

Runs go through the Dagster instance in the data directory (``dagster_home/``), so ``dagster dev`` shows
their history. Every landing file of the range is located before anything runs: a missing file fails the
run before the warehouse is touched.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dagster import AssetCheckSeverity, AssetKey, DagsterEventType, DagsterInstance, ExecuteInProcessResult

from data_checks.gx_run import validator_for
from pipelines.assets.publish import FIRST_PERIOD_TAG, LAST_PERIOD_TAG
from pipelines.config import Paths, quiet_telemetry
from pipelines.ingest import find_file, months_in_landing
from pipelines.partitions import partition_key
from pipelines.sources import MONTHLY, SNAPSHOTS

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


class PipelineError(Exception):
    """A step of the pipeline failed; the message names the step and what went wrong."""


@dataclass
class RunSummary:
    months: list[str]
    dbt_models: int = 0
    dbt_tests_passed: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    data_docs: Path | None = None


def dagster_instance(paths: Paths) -> DagsterInstance:
    """The persistent Dagster instance under the data directory (telemetry off)."""
    quiet_telemetry()
    paths.dagster_home.mkdir(parents=True, exist_ok=True)
    config = paths.dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(paths.dagster_home)
    return DagsterInstance.get()


def select_months(paths: Paths, first: str | None = None, last: str | None = None) -> list[str]:
    """The months in the landing zone within [first, last], after checking every file of them exists."""
    if not paths.landing.is_dir():
        raise PipelineError(
            f"no landing zone at {paths.landing}: run `cprof generate` or put the source files there"
        )
    found = months_in_landing(paths.landing)
    months = [m for m in found if (first is None or m >= first) and (last is None or m <= last)]
    if not months:
        span = f" between {first or 'the start'} and {last or 'the end'}" if first or last else ""
        raise PipelineError(
            f"no monthly files{span} in {paths.landing} (found: {', '.join(found) or 'none'})"
        )
    for source in SNAPSHOTS:
        find_file(paths.landing, source)
    for month in months:
        for source in MONTHLY:
            find_file(paths.landing, source, month)
    return months


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
DBT_ERRORS_MARKER = "Errors parsed from dbt logs:"


def _readable(message: str) -> str:
    """An error message without colour codes; for dbt, only the errors dbt reported, not the wrapper's prose."""
    message = ANSI_ESCAPE.sub("", message)
    if DBT_ERRORS_MARKER in message:
        message = message.split(DBT_ERRORS_MARKER, 1)[1]
    lines = [line.rstrip() for line in message.strip().splitlines()]
    return "\n".join(line for i, line in enumerate(lines) if line or (i and lines[i - 1]))


def _failure(result: ExecuteInProcessResult, step: str) -> PipelineError:
    """The failed data checks' own reports, else the failed steps' errors."""
    checks = [c.description or c.check_name for c in result.get_asset_check_evaluations() if not c.passed]
    if checks:
        return PipelineError(
            f"{step} failed its data checks; nothing of it was promoted:\n" + "\n".join(checks)
        )
    messages = []
    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_FAILURE and event.step_failure_data:
            error = event.step_failure_data.error
            cause = error.cause if error and error.cause else error
            messages.append(f"{event.step_key}: {_readable(cause.message) if cause else 'failed'}")
    return PipelineError(f"{step} failed: " + ("\n".join(messages) or "see the run in Dagster"))


def _checks_passed(result: ExecuteInProcessResult) -> int:
    return sum(1 for evaluation in result.get_asset_check_evaluations() if evaluation.passed)


def _rows(result: ExecuteInProcessResult) -> dict[str, int]:
    """Rows loaded per source, from the landed assets' materializations."""
    rows: dict[str, int] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        value = materialization.metadata.get("rows")
        if value is not None and materialization.asset_key.path[0] == "landed":
            name = materialization.asset_key.path[-1]
            rows[name] = rows.get(name, 0) + int(value.value)
    return rows


def run_pipeline(
    paths: Paths,
    first: str | None = None,
    last: str | None = None,
    progress: Callable[[str], None] = print,
) -> RunSummary:
    """Ingest and check the reference snapshots and every month of the range, build and test the dbt models,
    score the Python marts and publish: everything, or nothing when any blocking check fails."""
    from pipelines.definitions import build_definitions

    months = select_months(paths, first, last)
    defs = build_definitions(paths, defer_docs=True)
    instance = dagster_instance(paths)
    summary = RunSummary(months=months)
    progress(f"run: {len(months)} month(s), {months[0]} to {months[-1]}, data directory {paths.data_dir}")

    started = time.perf_counter()
    try:
        result = defs.resolve_job_def("ingest_reference").execute_in_process(
            instance=instance, run_config=QUIET, raise_on_error=False
        )
        if not result.success:
            raise _failure(result, "ingest of the reference snapshots")
        progress(
            f"ingest reference: {', '.join(f'{k} {v:,}' for k, v in _rows(result).items())}; "
            f"{_checks_passed(result)} suites passed"
        )
        job = defs.resolve_job_def("ingest_monthly")
        for month in months:
            month_started = time.perf_counter()
            result = job.execute_in_process(
                instance=instance, partition_key=partition_key(month), run_config=QUIET, raise_on_error=False
            )
            if not result.success:
                raise _failure(result, f"ingest of {month}")
            rows = _rows(result)
            progress(
                f"ingest {month}: {sum(rows.values()):,} rows ({rows.get('order_lines', 0):,} order lines), "
                f"{_checks_passed(result)} suites passed, in {time.perf_counter() - month_started:.1f}s"
            )
    finally:
        summary.data_docs = validator_for(paths.data_dir, defer_docs=True).build_docs()
        if summary.data_docs:
            progress(f"data docs: {summary.data_docs}")
    summary.seconds["ingest"] = time.perf_counter() - started
    progress(
        f"ingest: {len(months)} month(s) loaded, checked and promoted in {summary.seconds['ingest']:.1f}s"
    )

    started = time.perf_counter()
    dbt_log = paths.logs / "dbt-build.log"
    dbt_log.parent.mkdir(parents=True, exist_ok=True)
    progress(f"transform: dbt build (models and their tests), log in {dbt_log}")
    # dagster-dbt echoes dbt's own log to stdout: keep it in a file instead of the console.
    with dbt_log.open("w") as log, contextlib.redirect_stdout(log):
        result = defs.resolve_job_def("transform").execute_in_process(
            instance=instance,
            run_config=QUIET,
            raise_on_error=False,
            tags={FIRST_PERIOD_TAG: months[0], LAST_PERIOD_TAG: months[-1]},
        )
    checks = result.get_asset_check_evaluations()
    failed = [c for c in checks if not c.passed and c.severity == AssetCheckSeverity.ERROR]
    if not result.success:
        raise PipelineError(f"{_failure(result, 'dbt build')}\n(dbt's full log: {dbt_log})")
    if failed:
        names = ", ".join(f"{c.asset_key.to_user_string()}:{c.check_name}" for c in failed[:10])
        raise PipelineError(f"checks failed ({len(failed)}): {names}; details in {dbt_log}")
    for warning in (c for c in checks if not c.passed and c.severity == AssetCheckSeverity.WARN):
        progress(f"warning: {warning.asset_key.to_user_string()} {warning.check_name}: {warning.description}")
    materialized = [event.asset_key for event in result.get_asset_materialization_events()]
    if AssetKey(["published", "marts"]) not in materialized:
        raise PipelineError(
            "publish did not run: the marts were built but not published; see the run in Dagster"
        )
    summary.dbt_models = sum(1 for key in materialized if key.path[0] != "published")
    summary.dbt_tests_passed = len(checks)
    summary.seconds["transform"] = time.perf_counter() - started
    progress(
        f"transform: {summary.dbt_models} models built, {summary.dbt_tests_passed} tests passed, marts published "
        f"in {summary.seconds['transform']:.1f}s"
    )
    return summary
