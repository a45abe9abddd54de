"""Failures reach a person: a run-failure sensor that tells the configured notifiers.

``failure_alerts`` is a run-failure sensor of the code location (it watches every job of it: the refresh runs of
``cprof``, the monthly-close schedule and the landing sensor, and ``check_freshness``, whose run fails when the
publication is late). It is RUNNING by default: the daemon (``dagster dev`` or ``dagster-daemon run``) evaluates
it every 30 s, from where it left off, so failures while the daemon was down are told when it is back.

Each failed run becomes one message, in plain text, that a person can act on: the run, its job and months (the
partition or partition range tags); the step that failed, or, for a killed run, the step it was running; the
root cause (the error the step's code raised, not Dagster's wrapper: a file's line, column and rule; a failed
suite's expectations and sample values; a failed dbt test with the keys that break it); whether the landing
sensor retries the months (attempt n of 3, after when) or, at the last attempt, that it will not (``not retried
(limit 3)``: told once, by the run that reached the limit, with the command to run once the cause is fixed);
the failed steps and checks; the data directory. Notifiers are chosen from the environment when the sensor runs:

* ``CPROF_NOTIFY_LOG=<path>``: one JSON line per failure appended to that file (default: ``<data>/logs/
  failures.jsonl``; always on, so there is a record even when nothing else is configured);
* ``CPROF_NOTIFY_COMMAND="<program> <args>"``: the program runs for each failure (split with ``shlex``, never
  through a shell) with the message on stdin and ``CPROF_ALERT_SUBJECT``, ``CPROF_ALERT_RUN_ID`` and
  ``CPROF_ALERT_JOB`` in its environment; nothing from the run is put into the command line.

A notifier that fails is reported in the sensor's tick log; the others still run.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from dagster import (
    AssetCheckSeverity,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunsFilter,
    run_failure_sensor,
)

from pipelines.defs.automation import LANDING_SENSOR
from pipelines.defs.explain import plain, readable, root_cause, root_error, running_steps
from pipelines.defs.month_state import REFRESH_JOB, month_state, scan_landing
from pipelines.defs.partitions import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)
from pipelines.defs.refresh_requests import RETRY_LIMIT, retry_backoff_seconds
from pipelines.engines.whole_months import months_from
from pipelines.lib.settings import Settings

COMMAND_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class FailedRun:
    """What a person needs to know about a failed run."""

    run_id: str
    job: str
    months: str  # first to last (YYYY-MM), or empty for a run without partitions
    error: str
    failed_steps: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    data_dir: str = ""
    step: str = ""  # the step that failed, or that a killed run was running
    cause: str = ""  # why, in words: the root cause
    retry: list[str] = field(default_factory=list)  # whether the months are retried, per month
    final: bool = False  # a month's retries are exhausted: the sensor leaves it to a person

    @property
    def subject(self) -> str:
        months = f" ({self.months})" if self.months else ""
        step = f" in {self.step}" if self.step else ""
        final = "; not retried (limit reached)" if self.final else ""
        return f"cprof: run {self.run_id[:8]} of {self.job} failed{months}{step}{final}"

    @property
    def body(self) -> str:
        lines = [
            f"Run {self.run_id} of job {self.job} failed.",
            f"Months: {self.months or 'none (not a partitioned run)'}",
        ]
        if self.step:
            lines.append(f"Step: {self.step}")
        if self.cause:
            lines.append("Cause: " + self.cause.replace("\n", "\n  "))
        lines += [f"Retry: {line}" for line in self.retry]
        lines += [f"Data directory: {self.data_dir}", f"Error: {self.error}"]
        lines += [f"Failed step: {step}" for step in self.failed_steps]
        lines += [f"Failed check: {check}" for check in self.failed_checks]
        return plain("\n".join(lines)) + "\n"


class Notifier(Protocol):
    def notify(self, failure: FailedRun) -> None: ...


@dataclass(frozen=True)
class LogNotifier:
    """Appends one JSON line per failure to ``path``."""

    path: Path

    def notify(self, failure: FailedRun) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "subject": failure.subject}
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps({**line, **asdict(failure)}) + "\n")


@dataclass(frozen=True)
class CommandNotifier:
    """Runs ``argv`` with the message on stdin and the subject, run id and job in its environment."""

    argv: Sequence[str]

    def notify(self, failure: FailedRun) -> None:
        env = {
            **os.environ,
            "CPROF_ALERT_SUBJECT": failure.subject,
            "CPROF_ALERT_RUN_ID": failure.run_id,
            "CPROF_ALERT_JOB": failure.job,
        }
        done = subprocess.run(
            list(self.argv),
            input=failure.body,
            text=True,
            env=env,
            capture_output=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"notify command {self.argv[0]} exited {done.returncode}: {done.stderr.strip()[-500:]}"
            )


def configured_notifiers(settings: Settings) -> list[Notifier]:
    """The settings' notifiers: the log (``notify_log``, else <data>/logs/failures.jsonl) always, and the
    ``notify_command`` when set."""
    notifiers: list[Notifier] = [LogNotifier(settings.notify_log or settings.paths.logs / "failures.jsonl")]
    if settings.notify_command:
        notifiers.append(CommandNotifier(list(settings.notify_command)))
    return notifiers


def run_months_label(run: DagsterRun) -> str:
    tags = run.tags
    if ASSET_PARTITION_RANGE_START_TAG in tags:
        first, last = tags[ASSET_PARTITION_RANGE_START_TAG][:7], tags[ASSET_PARTITION_RANGE_END_TAG][:7]
        return first if first == last else f"{first} to {last}"
    if PARTITION_NAME_TAG in tags:
        return tags[PARTITION_NAME_TAG][:7]
    return ""


def describe_failure(
    instance: DagsterInstance, run: DagsterRun, error: str, settings: Settings, now: float | None = None
) -> FailedRun:
    """The failure of ``run``: the failed step (or, for a killed run, the step it was in) and the root cause;
    whether its months are retried; its failed steps and failed asset checks, as its event log records them."""
    steps, causes, failed = [], [], []
    for record in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_FAILURE):
        event = record.dagster_event
        cause = event.step_failure_data.error if event.step_failure_data else None
        said = root_cause(cause, qualified=False) if cause else record.user_message
        steps.append(f"{event.step_key}: {said}")
        failed.append(event.step_key)
        if cause is not None and root_error(cause).cls_name != "DagsterAssetCheckFailedError":
            causes.append(f"{event.step_key}: {said}" if len(failed) > 1 else said)
    checks = []
    for record in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = record.dagster_event.event_specific_data
        if not evaluation.passed:
            name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
            checks.append(f"{name}: {evaluation.description or 'failed'}")
            if evaluation.severity == AssetCheckSeverity.ERROR:
                causes.append(f"{name}: {evaluation.description or 'failed'}")
    step = ", ".join(failed)
    if not failed:  # killed: the steps it had started and not finished
        running = running_steps(instance, run.run_id)
        if running:
            step = (
                f"{', '.join(running)} (running when the run's process died; signal unknown: killed, out of "
                "memory or its machine restarted)"
            )
        causes.append(readable(error))
    retry, final = retry_outlook(instance, run, settings, now)
    return FailedRun(
        run_id=run.run_id,
        job=run.job_name,
        months=run_months_label(run),
        error=plain(error),
        failed_steps=[plain(s) for s in steps],
        failed_checks=[plain(c) for c in checks],
        data_dir=str(settings.data_dir),
        step=step,
        cause=plain("\n".join(dict.fromkeys(causes))),
        retry=retry,
        final=final,
    )


def retry_outlook(
    instance: DagsterInstance, run: DagsterRun, settings: Settings, now: float | None = None
) -> tuple[list[str], bool]:
    """Whether the landing sensor retries the months of a failed refresh, per month, and whether one of them has
    reached its limit (the sensor's ``not retried (limit 3)``), from the same records the sensor decides by."""
    if run.job_name != REFRESH_JOB:
        return [], False
    span = run_months_label(run)
    if not span:
        return [], False
    first, _, last = span.partition(" to ")
    now = time.time() if now is None else now
    status = scan_landing(settings.paths.landing, settings.allow_external_links)
    # As of this run's failure: the runs created after it (a retry already under way, or failed too) do not
    # count, so each failure is told its own attempt, and only the one that reached the limit says so.
    this = instance.get_run_record_by_id(run.run_id)
    runs = [
        record
        for record in instance.get_run_records(filters=RunsFilter(job_name=REFRESH_JOB))
        if this is None or record.create_timestamp <= this.create_timestamp
    ]
    sensing = landing_sensor_running(instance)
    said, final = [], False
    for month in months_from(first, last or first):
        if month not in status.complete_months():
            continue
        state = month_state(instance, month, status.files[month], runs)
        command = f"`cprof run --from {month} --to {month}`"
        if state.running:
            said.append(f"{month}: being refreshed by run {state.running}")
        elif state.reason is None:
            said.append(f"{month}: published since; nothing to retry")
        elif state.failures >= RETRY_LIMIT:
            final = True
            said.append(
                f"{month}: not retried (limit {RETRY_LIMIT}): its last {state.failures} refreshes failed; fix the "
                f"cause and run {command} (or change its files)"
            )
        elif not sensing:
            said.append(
                f"{month}: not retried: the landing sensor is stopped; fix the cause and run {command}, or start "
                "the sensor"
            )
        else:
            at = max(
                now,
                (state.last_failure or now)
                + retry_backoff_seconds(max(state.failures, 1), settings.retry_backoff_seconds),
            )
            said.append(
                f"{month}: the landing sensor retries it, attempt {state.failures + 1} of {RETRY_LIMIT}, after "
                f"{datetime.fromtimestamp(at, UTC):%Y-%m-%d %H:%M:%S} UTC"
            )
    return said, final


def landing_sensor_running(instance: DagsterInstance) -> bool:
    """Whether the landing sensor is switched on in the instance (so the months of a failed run are retried)."""
    # Dagster's public API has no query of a sensor's state by name; the instance's instigator records do.
    from pipelines.runtime.dagster_private import InstigatorType

    return any(
        state.instigator_name == LANDING_SENSOR and state.is_running
        for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
    )


def notify_all(failure: FailedRun, notifiers: Sequence[Notifier]) -> list[str]:
    """Tell every notifier; returns the errors of those that failed (the others still ran)."""
    errors = []
    for notifier in notifiers:
        try:
            notifier.notify(failure)
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:  # the others still run
            errors.append(f"{type(notifier).__name__}: {exc}")
    return errors


def failure_alert_sensor(settings: Settings):
    """The run-failure sensor for the code location of ``settings``."""

    @run_failure_sensor(
        name="failure_alerts",
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="Tells the configured notifiers (CPROF_NOTIFY_LOG, CPROF_NOTIFY_COMMAND; always "
        "<data>/logs/failures.jsonl) about every failed run of this code location, a late publication included.",
    )
    def failure_alerts(context: RunFailureSensorContext) -> None:
        failure = describe_failure(
            context.instance, context.dagster_run, context.failure_event.message or "", settings
        )
        errors = notify_all(failure, configured_notifiers(settings))
        for error in errors:
            context.log.error(f"notifying the failure of run {failure.run_id} failed: {error}")
        context.log.info(f"told {failure.subject}")

    return failure_alerts
