"""Crashed runs are failed, not stuck; every writing run holds the data directory's lock.

A run worker killed without warning (SIGKILL, an out-of-memory kill, a reboot) cannot report its own failure: the
run stays STARTED in Dagster's run storage, and with ``max_concurrent_runs: 1`` the daemon's queue holds back
every later run. Dagster's run monitoring fails such runs only when the run launcher can check a worker's health,
which the DefaultRunLauncher cannot, and ``cprof``'s runs are executed in its own process, not by a launcher.

So every run records the process it executes in, as run tags (host, pid, process start time): ``cprof`` when it
creates its run, and ``LockedInProcessExecutor`` when a run starts in any run worker (a UI launch, the schedule,
the sensor). Runs launched by the DefaultRunLauncher also report their worker's pid in an engine event, which
covers a worker that dies before its executor starts. ``fail_dead_runs`` marks a STARTED or STARTING run failed,
with the reason, when that process is gone; it runs

* in ``cprof run`` before it starts a run, and
* in the daemon's run monitoring: ``ProcessRunLauncher`` (the DefaultRunLauncher, plus this health check) is the
  run launcher of the instance ``cprof`` writes (pipelines/runtime/instance.py), so the monitoring daemon, every
  ``poll_interval_seconds``, fails such runs, and the queue then starts the next one.

This module is imported by the Dagster webserver and daemon through ``dagster.yaml``: it imports only Dagster
and the standard library (and pipelines/runtime/lock.py and dagster_private.py, which do too).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

from dagster import (
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultRunLauncher,
    Executor,
    RunsFilter,
)

from pipelines.runtime.dagster_private import CheckRunHealthResult, EngineEventData, WorkerStatus
from pipelines.runtime.lock import Process, data_dir_lock, process_start_time, worker_alive

WORKER_TAG = "cprof/worker"  # JSON {"host", "pid", "started"} of the process the run executes in
LOCK_WAIT_TAG = "cprof/lock_wait_seconds"  # how long a Dagster run waits for the data directory's lock
DEFAULT_RUN_LOCK_WAIT_SECONDS = 900.0
READ_ONLY_JOBS = frozenset({"check_freshness"})  # jobs that read the publication only: no lock


def worker_tags(process: Process | None = None) -> dict[str, str]:
    process = process or Process.current()
    return {WORKER_TAG: json.dumps({"host": process.host, "pid": process.pid, "started": process.started})}


def run_worker(instance: DagsterInstance, run: DagsterRun) -> Process | None:
    """The process a run executes in: its worker tag, else the pid its run worker reported when it started."""
    if WORKER_TAG in run.tags:
        recorded = json.loads(run.tags[WORKER_TAG])
        return Process(recorded["host"], int(recorded["pid"]), recorded.get("started"))
    grpc = json.loads(run.tags.get("dagster/grpc_info", "{}") or "{}")
    for record in instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT):
        metadata = record.dagster_event.engine_event_data.metadata if record.dagster_event else {}
        if "pid" in metadata and record.user_message.startswith("Started process for"):
            pid = int(metadata["pid"].value)
            # the worker is a child of the code server, on its host; it started before it reported so
            started = process_start_time(pid)
            same = started is not None and started <= record.timestamp + 1.0
            host = (
                Process.current().host
                if grpc.get("host") in (None, "localhost", "127.0.0.1")
                else grpc["host"]
            )
            return Process(host, pid, started if same else record.timestamp)
    return None


def dead_worker_reason(instance: DagsterInstance, run: DagsterRun) -> str | None:
    """Why the run cannot be running any more, or None if its process is alive or cannot be checked from here."""
    worker = run_worker(instance, run)
    if worker is None or worker_alive(worker.host, worker.pid, worker.started) is not False:
        return None
    return (
        f"Run {run.run_id} ({run.job_name}) was {run.status.value} but its process is gone "
        f"(pid {worker.pid} on {worker.host}): it was killed or its machine restarted without reporting an end. "
        "Marked failed so that later runs can start; the months it was refreshing are refreshed by the next "
        "run of them."
    )


def fail_dead_runs(instance: DagsterInstance, say: Callable[[str], None] | None = None) -> list[str]:
    """Mark failed every STARTED or STARTING run whose process is gone (and a run created by a process that died
    before starting it); returns their run ids."""
    failed = []
    records = instance.get_run_records(
        filters=RunsFilter(
            statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.NOT_STARTED]
        )
    )
    for record in records:
        run = record.dagster_run
        if run.status == DagsterRunStatus.NOT_STARTED and WORKER_TAG not in run.tags:
            continue  # being submitted by the daemon or the UI, not ours to judge
        reason = dead_worker_reason(instance, run)
        if reason is None:
            continue
        instance.report_run_failed(run, reason)
        failed.append(run.run_id)
        if say is not None:
            say(f"marked run {run.run_id} failed: its process (pid {run_worker(instance, run).pid}) is gone")
    return failed


class ProcessRunLauncher(DefaultRunLauncher):
    """The DefaultRunLauncher, with the worker health check that Dagster's run monitoring needs: a run whose
    worker process (on this host) is gone is reported FAILED, so the monitoring daemon marks it failed."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        reason = dead_worker_reason(self._instance, run)
        if reason is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(WorkerStatus.FAILED, reason)


class LockedInProcessExecutor(Executor):
    """Dagster's in-process executor, holding the data directory's writer lock while the steps run (jobs in
    ``READ_ONLY_JOBS`` excepted), and recording the run's worker process in its tags. A run started while
    another process writes waits up to the ``cprof/lock_wait_seconds`` tag (default 900 s) and then fails,
    naming the holder."""

    def __init__(self, data_dir: Path, inner: Executor):
        self._data_dir = data_dir
        self._inner = inner

    @property
    def retries(self):
        return self._inner.retries

    @property
    def step_dependency_config(self):
        return self._inner.step_dependency_config

    def execute(self, plan_context, execution_plan) -> Iterator[DagsterEvent]:
        run = plan_context.dagster_run
        instance = plan_context.instance
        instance.add_run_tags(run.run_id, worker_tags())
        if run.job_name in READ_ONLY_JOBS:
            yield from self._inner.execute(plan_context, execution_plan)
            return
        wait = float(run.tags.get(LOCK_WAIT_TAG, DEFAULT_RUN_LOCK_WAIT_SECONDS))
        with data_dir_lock(
            self._data_dir,
            command=f"dagster run {run.run_id} ({run.job_name})",
            wait_seconds=wait,
            say=lambda line: instance.report_engine_event(line, run),
        ) as held:
            taken = f"data directory lock taken: {self._data_dir} (pid {held.holder['pid']})"
            yield DagsterEvent.engine_event(plan_context, taken, EngineEventData())
            yield from self._inner.execute(plan_context, execution_plan)
