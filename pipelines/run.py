"""Running the pipeline for a range of months, as ``cprof run`` and ``cprof backfill`` do: one Dagster run of
the ``refresh`` job over the range's partitions (ingest, check, dbt build, CLV, satisfaction, scorecard,
publish).

Runs go through the Dagster instance in the data directory (``dagster_home/``), executed in this process as
``dagster.execute_job`` executes a reconstructable job, but created as runs of the ``pipelines`` code location of
``workspace.yaml`` (pipelines/runtime/dagster_private.py: nothing public does that), so ``dagster dev`` shows
them in its Overview timeline and asset pages like runs it launched. Every landing file of the range is located
before anything runs: a missing file fails the run before the warehouse is touched. The run holds the data
directory's writer lock (pipelines/runtime/lock.py), first fails runs whose process is gone
(pipelines/runtime/monitoring.py), says each step as it happens (pipelines/progress.py) and, at the end, what the
run found (pipelines/run_result.py).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from dagster import (
    AssetCheckSeverity,
    AssetKey,
    DagsterInstance,
    JobDefinition,
    JobExecutionResult,
    MonthlyPartitionsDefinition,
    build_reconstructable_job,
)

from data_checks.gx_run import unchanged_reason, validator_for
from pipelines import run_result
from pipelines.defs.assets.publish import SCENARIOS_JOB
from pipelines.defs.partitions import FULL_REFRESH_TAG, RefreshRange, partition_key, partitions_of, range_tags
from pipelines.engines import open_runtime
from pipelines.landing.history import record_landing_history
from pipelines.landing.inventory import (
    ACCEPT_ROW_DROP_TAG,
    NO_EXTERNAL_LINKS,
    find_file,
    history_start,
    is_absent,
    months_in_landing,
)
from pipelines.landing.sources import EXTENSIONS, MONTHLY, SNAPSHOTS
from pipelines.lib.config import WORKSPACE_YAML, Paths
from pipelines.lib.settings import Settings
from pipelines.progress import ByThread, RunFollower
from pipelines.runtime.dagster_private import create_workspace_run, execute_created_run, instance_of
from pipelines.runtime.instance import plan_ranges_in_one_event, write_dagster_yaml
from pipelines.runtime.lock import data_dir_lock
from pipelines.runtime.monitoring import fail_dead_runs, worker_tags

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
    run_id: str | None = None
    step_windows: dict[str, tuple[float, float]] = field(default_factory=dict)


def dagster_instance(paths: Paths) -> DagsterInstance:
    """The persistent Dagster instance under the data directory (telemetry off), built from its directory: this
    process's environment (``DAGSTER_HOME``) is neither read nor written."""
    plan_ranges_in_one_event()
    return instance_of(write_dagster_yaml(paths.dagster_home).parent)


def select_months(
    paths: Paths,
    first: str | None = None,
    last: str | None = None,
    allow_external_links: bool = NO_EXTERNAL_LINKS,
) -> list[str]:
    """The months in the landing zone within [first, last], after checking every file of them exists (and is not
    a link from outside the data directory, unless ``allow_external_links``: the setting)."""
    if not paths.landing.is_dir():
        raise PipelineError(
            f"no landing zone at {paths.landing}: run `cprof generate` or put the source files there"
        )
    found = months_in_landing(paths.landing, allow_external_links)
    months = [m for m in found if (first is None or m >= first) and (last is None or m <= last)]
    if not months:
        span = f" between {first or 'the start'} and {last or 'the end'}" if first or last else ""
        raise PipelineError(
            f"no monthly files{span} in {paths.landing} (found: {', '.join(found) or 'none'})"
        )
    for source in SNAPSHOTS:
        if not is_absent(paths.landing, source):  # an optional snapshot may be absent; it loads as no rows
            find_file(paths.landing, source, None, allow_external_links)
    for month in months:
        for source in MONTHLY:
            find_file(paths.landing, source, month, allow_external_links)
    return months


def code_location_job(
    settings: tuple[tuple[str, str], ...], job_name: str, without_snapshots: tuple[str, ...] = ()
) -> JobDefinition:
    """A job of the code location bound to the run's settings (as their variables' text,
    ``Settings.to_environ``), as a run of cprof executes it (the data docs built once, after the run;
    ``without_snapshots`` left out of ``refresh``): what ``build_reconstructable_job`` rebuilds."""
    from pipelines.definitions import build_definitions

    defs = build_definitions(
        Settings.from_environ(dict(settings)), defer_docs=True, without_snapshots=frozenset(without_snapshots)
    )
    return defs.resolve_job_def(job_name)


def execute_run(
    settings: Settings,
    job_name: str,
    instance: DagsterInstance,
    tags: dict[str, str],
    run_config: dict,
    without_snapshots: frozenset[str] = frozenset(),
    on_created: Callable[[str], None] = lambda run_id: None,
) -> JobExecutionResult:
    """Execute a job of the code location in this process, as ``dagster.execute_job`` does (the job's own executor,
    which takes the data directory's lock), in a run that carries the origin of ``workspace.yaml``'s code location
    (so the UI shows it as one of its runs) and this process's identity."""
    arguments = (tuple(sorted(settings.to_environ().items())), job_name, tuple(sorted(without_snapshots)))
    job = build_reconstructable_job(__name__, code_location_job.__name__, reconstructable_args=arguments)
    run = create_workspace_run(
        WORKSPACE_YAML, code_location_job(*arguments), instance, {**tags, **worker_tags()}, run_config
    )
    on_created(run.run_id)
    return execute_created_run(job, run, instance)


def _check_partitions_cover(months: list[str], monthly: MonthlyPartitionsDefinition) -> None:
    """The run's monthly partitions (``monthly``: from the settings' first_month / last_month, else the span of
    history just recorded from the landing zone) must hold its months: a run of months outside them would fail in
    every step with Dagster's invariant error. Say so before anything runs."""
    keys = set(monthly.get_partition_keys())
    outside = [month for month in months if partition_key(month) not in keys]
    if outside:
        first, last = monthly.get_first_partition_key(), monthly.get_last_partition_key()
        raise PipelineError(
            f"the months {outside[0]}..{outside[-1]} are outside the pipeline's monthly partitions "
            f"({(first or '?')[:7]} to {(last or '?')[:7]}), which ${Settings.variable('first_month')} / "
            f"${Settings.variable('last_month')} bound: unset those bounds or widen them (or run --from / --to "
            "within them)"
        )


# What each job cprof runs does, as its first line says.
JOB_STEPS = {
    "refresh": "ingest and check, dbt build, CLV, satisfaction, scorecard, publish",
    SCENARIOS_JOB: "the scenarios file checked, the scenario marts built and tested against the release, publish",
}


def run_pipeline(
    settings: Settings,
    first: str | None = None,
    last: str | None = None,
    progress: Callable[[str], None] = print,
    full_refresh: bool = False,
    wait_seconds: float = 0.0,
    live: bool = True,
    accept_row_drop: list[str] = (),
) -> RunSummary:
    """Refresh the months first..last (default: every month in the landing zone) in one Dagster run of the
    ``refresh`` job over that partition range: ingest and check the reference snapshots and the months, build
    and test the dbt models incrementally, score the Python marts and publish. Everything, or no publication
    when any blocking check fails. ``full_refresh`` rebuilds every table whole.

    Holds the data directory's writer lock throughout (waiting up to ``wait_seconds`` for another writer), and
    first marks failed any run of the instance whose process is gone. Says each step as it finishes, and with
    ``live`` how long steps go (months ingested, suites, dbt nodes). ``accept_row_drop`` (MONTH or MONTH:SOURCE)
    confirms months whose reload has far fewer rows than their promoted load (run tag cprof/accept_row_drop).
    ``settings``: the process's (pipelines/lib/settings.py), the data directory's among them."""
    paths = settings.paths
    # Without a first month, the run starts at the start of history (the setting first_month, else the landing's).
    links = settings.allow_external_links
    months = select_months(
        paths, first or history_start(paths.landing, settings.first_month, links), last, links
    )
    # The span of the partitions: this run's (built from it below) and the code location's when it next loads.
    record_landing_history(paths.data_dir, allow_external_links=links)
    monthly = partitions_of(settings)
    _check_partitions_cover(months, monthly)
    with data_dir_lock(paths.data_dir, wait_seconds=wait_seconds, say=progress):
        # Every run, however launched, rebuilds and publishes the months awaiting publication with its own
        # (pipelines.defs.partitions.refresh_range); read under the writer lock, to say so up front.
        widened = RefreshRange.of(months, open_runtime(settings)).sentence()
        if widened:
            progress(widened)
        return _run_locked(settings, monthly, months, progress, full_refresh, live, accept_row_drop)


def run_scenarios(
    settings: Settings,
    file: Path | None = None,
    progress: Callable[[str], None] = print,
    wait_seconds: float = 0.0,
    live: bool = True,
) -> RunSummary:
    """Publish the scenarios of the landing zone's scenarios file (with ``file``: that file, first put in the
    landing zone as landing/reference/scenarios.<suffix>, replacing the one there) beside the release's actual
    marts, unchanged: one run of the ``scenarios`` job for the release's last month, which checks and promotes
    the file, rebuilds and tests the scenario marts and publishes them with the release. Refuses while months
    await publication (their refresh publishes the scenarios too). A run with ``file`` that fails puts the
    landing zone's scenarios file back as it was, so the next refresh does not pick up a file that was refused."""
    from pipelines.landing.sources import BY_NAME
    from pipelines.publication.publish import current_database

    paths = settings.paths
    database = current_database(paths.published)
    if not database.exists():
        raise PipelineError(
            f"nothing is published yet in {paths.published}: scenarios are computed against the published "
            "release; run `cprof run` first (it publishes the scenarios of the landing zone too)"
        )
    with duckdb.connect(str(database), read_only=True) as con:
        (last,) = con.execute(
            "select strftime(max(period), '%Y-%m') from marts.customer_profitability"
        ).fetchone()
    if last is None:
        raise PipelineError(f"{database} holds no customer month: run `cprof run` first")
    monthly = partitions_of(settings)
    _check_partitions_cover([last], monthly)
    with data_dir_lock(paths.data_dir, wait_seconds=wait_seconds, say=progress):
        awaiting = open_runtime(settings).months_awaiting_publication() or []
        if awaiting:
            raise PipelineError(
                f"months {', '.join(awaiting)} await publication (a failed run, or a restatement): scenarios "
                "are published only beside actual marts already published. Run `cprof run` first: it publishes "
                "the scenarios too"
            )
        replaced: dict[Path, bytes] = {}
        if file is not None:
            replaced = _put_in_landing(file, paths.landing / "reference", BY_NAME["scenarios"].name, progress)
        try:
            return _run_locked(settings, monthly, [last], progress, False, live, job=SCENARIOS_JOB)
        except BaseException:
            if file is not None:  # a file that fails leaves the landing zone as it found it
                _put_back(paths.landing / "reference", BY_NAME["scenarios"].name, replaced, progress)
            raise


def _put_in_landing(
    file: Path, folder: Path, stem: str, progress: Callable[[str], None]
) -> dict[Path, bytes]:
    """``file`` as ``folder/<stem><suffix>`` (.csv or .parquet), replaced atomically; a file of the other suffix
    there is removed (one file per snapshot). Returns the files it replaced or removed, with their bytes."""
    suffix = file.suffix.lower()
    if suffix not in EXTENSIONS:
        raise PipelineError(f"{file}: a scenarios file is a {' or a '.join(EXTENSIONS)} file")
    if not file.is_file():
        raise PipelineError(f"{file}: no such file")
    replaced = {
        path: path.read_bytes() for path in (folder / f"{stem}{s}" for s in EXTENSIONS) if path.exists()
    }
    _write_atomically(folder / f"{stem}{suffix}", file.read_bytes())
    for path in replaced:
        if path.suffix != suffix:
            path.unlink()
    progress(f"scenario: {file} is now the landing zone's {folder / f'{stem}{suffix}'}")
    return replaced


def _put_back(folder: Path, stem: str, replaced: dict[Path, bytes], progress: Callable[[str], None]) -> None:
    """The landing zone's scenarios file(s) as they were before :func:`_put_in_landing`."""
    for path in (folder / f"{stem}{s}" for s in EXTENSIONS):
        if path in replaced:
            _write_atomically(path, replaced[path])
        elif path.exists():
            path.unlink()
    progress(
        f"scenario: the landing zone's scenarios file is back as it was ({', '.join(map(str, replaced)) or 'none'})"
    )


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def _run_locked(
    settings: Settings,
    monthly: MonthlyPartitionsDefinition,
    months: list[str],
    progress: Callable[[str], None],
    full_refresh: bool,
    live: bool,
    accept_row_drop: list[str] = (),
    job: str = "refresh",
) -> RunSummary:
    from pipelines.defs.assets.transform import dbt_models

    paths = settings.paths
    open_runtime(settings).check_writable()  # a reader holding the warehouse: one line, before the run starts
    instance = dagster_instance(paths)
    fail_dead_runs(instance, say=progress)
    # Reference snapshots whose files are the ones already validated and promoted stay out of the run: their
    # assets would only confirm that. (The schedule and the sensor run the whole job; its snapshot assets make
    # the same comparison and skip their work.)
    reused = (
        {}
        if full_refresh
        else open_runtime(settings).unchanged_snapshots(paths.landing, settings.allow_external_links)
    )
    validator = validator_for(paths.data_dir, defer_docs=True)
    for name, validated_at in reused.items():  # the run page says why their suites did not run
        validator.skip(name, unchanged_reason(validated_at))
    summary = RunSummary(months=months)
    span = f"{months[0]} to {months[-1]}" if len(months) > 1 else months[0]
    progress(
        f"run: {len(months)} month(s), {span}{', full refresh' if full_refresh else ''}, "
        f"data directory {paths.data_dir}, engine {settings.engine}"
    )
    tags = range_tags(months[0], months[-1])
    if full_refresh:
        tags[FULL_REFRESH_TAG] = "true"
    if accept_row_drop:
        tags[ACCEPT_ROW_DROP_TAG] = ",".join(accept_row_drop)
    if reused:
        progress(f"reference snapshots unchanged since validated and promoted: {', '.join(sorted(reused))}")
    log = paths.logs / "dbt-build.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    progress(f"{job}: {JOB_STEPS[job]}; dbt's log in {log}")
    dbt_step = dbt_models(monthly)
    dbt_nodes = len(dbt_step.keys) + len(dbt_step.check_keys)
    started = time.perf_counter()
    follower: RunFollower | None = None

    def follow(run_id: str) -> None:
        nonlocal follower
        follower = RunFollower(
            paths.dagster_home, run_id, progress, live=live, months=len(months), dbt_nodes=dbt_nodes
        )
        follower.start()

    try:
        # dagster-dbt echoes dbt's own log to stdout: keep it in a file instead of the console.
        with log.open("w") as handle, contextlib.redirect_stdout(ByThread(handle, sys.stdout)):
            result = execute_run(settings, job, instance, tags, QUIET, frozenset(reused), on_created=follow)
        for source, error in run_result.failed_loads(result).items():  # their suites could not run
            validator.load_failed(source, error)
    finally:
        if follower is not None:
            follower.stop()
        summary.data_docs = validator.build_docs()
    summary.seconds["run"] = time.perf_counter() - started
    summary.step_windows = run_result.step_windows(instance, result.run_id)
    summary.seconds.update(run_result.phase_seconds(summary.step_windows))
    # A check's result is its last evaluation of the run: a suite records each month's outcome before it
    # (pipelines.defs.partitions.evaluated_each_month).
    checks = list({(c.asset_key, c.check_name): c for c in result.get_asset_check_evaluations()}.values())
    suites = [c for c in checks if c.check_name == "gx_suite"]
    for line in run_result.ingest_lines(result):
        progress(line)
    skipped = f"; {len(reused)} unchanged reference snapshots not validated again" if reused else ""
    progress(
        f"input checks: {sum(c.passed for c in suites)} of {len(suites)} sources passed their suites "
        f"(one suite per source, validating each month of the run{skipped})"
    )
    if summary.data_docs:
        progress(f"data docs: {summary.data_docs}")
    for line in run_result.said(result):
        progress(line)
    failed_suites = [c for c in suites if not c.passed]
    if failed_suites:
        raise PipelineError(
            f"ingest of {span} failed its data checks; a month reaches raw only whole, so the months of the "
            "failing sources are held out of raw (all their sources) and nothing was published:\n"
            + "\n".join(c.description or c.check_name for c in failed_suites)
            + f"\nfix the file(s) named and run `cprof run --from {months[0]} --to {months[-1]}` again"
        )
    failed = [c for c in checks if not c.passed and c.severity == AssetCheckSeverity.ERROR]
    if failed or not result.success:
        lines = [f"{c.asset_key.to_user_string()}: {c.check_name}" for c in failed[:20]]
        lines += run_result.step_errors(result)
        raise PipelineError(
            f"{job} failed ({len(failed)} test(s) failed); nothing was published:\n"
            + "\n".join(lines)
            + f"\n(dbt's full log: {log})"
        )
    for warning in (c for c in checks if not c.passed and c.severity == AssetCheckSeverity.WARN):
        progress(f"warning: {warning.asset_key.to_user_string()} {warning.check_name}: {warning.description}")
    for line in run_result.notes(result):
        progress(line)
    materialized = [event.asset_key for event in result.get_asset_materialization_events()]
    if AssetKey(["published", "marts"]) not in materialized:
        raise PipelineError(
            "publish did not run: the marts were built but not published; see the run in Dagster"
        )
    summary.dbt_models = len(
        {key for key in materialized if key.path[0] not in ("published", "landed", "raw")}
    )
    summary.dbt_tests_passed = sum(1 for c in checks if c.passed and c.check_name != "gx_suite")
    summary.run_id = result.run_id
    progress(
        f"transform: {summary.dbt_models} models built, {summary.dbt_tests_passed} tests passed "
        f"(dbt build {summary.seconds['dbt build']:.1f}s, CLV {summary.seconds['CLV']:.1f}s)"
    )
    progress(f"published in {summary.seconds['publish']:.1f}s; the run took {summary.seconds['run']:.1f}s")
    return summary
