"""Which refresh runs the landing zone and the last publications call for (``refresh_requests``), and what is
waited for, in words. A month is requested when it was never published, when a file changed since, or when a run
loaded it after its last publication without publishing it (the run failed or was killed): it is attempted at
most ``RETRY_LIMIT`` times, counted from the failed runs of that month since, each after a growing wait
(``retry_backoff_seconds``, the setting, doubled every time), after which it is reported and left to an operator.
A month a run is refreshing now waits for it. The months due are requested as few runs as can be: consecutive
months as one range, and ranges separated only by months that are published and unchanged as one run too (a run
rebuilds everything from its first month on anyway); a month still missing files, waiting for its retry or left
to an operator splits them. Months outside the code location's partitions are reported, not requested.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from dagster import DagsterInstance, MonthlyPartitionsDefinition, RunRequest, RunsFilter

from pipelines.defs.month_state import REFRESH_JOB, changed_snapshots, month_state, scan_landing
from pipelines.defs.partitions import PARTITION_NAME_TAG, contiguous, month_of_key, partition_key, range_tags
from pipelines.engines.whole_months import months_from, next_month
from pipelines.landing.inventory import NO_EXTERNAL_LINKS, history_start
from pipelines.lib.settings import Settings

RETRY_LIMIT = (
    3  # failed refreshes of a month, since it was last published, after which it is left to an operator
)


def retry_backoff_seconds(failures: int, base: float) -> float:
    """How long after its last failed refresh a month is retried, after ``failures`` failures (1, 2, ...):
    ``base`` (the setting retry_backoff_seconds) after the first, doubled after each further one."""
    return base * 2 ** (failures - 1)


def joined(months: list[str], clean: set[str]) -> list[list[str]]:
    """The months due, as the ranges of the runs that refresh them: consecutive months together, and two ranges
    separated only by ``clean`` months (published and unchanged) as one range over them."""
    groups: list[list[str]] = []
    for group in contiguous(months):
        if groups:
            between = months_from(next_month(groups[-1][-1]), group[0])[:-1]
            if all(month in clean for month in between):
                groups[-1] += [*between, *group]
                continue
        groups.append(group)
    return groups


def refresh_request(group: list[str], run_key: str | None = None) -> RunRequest:
    """A run of the refresh job over the months ``group[0]..group[-1]``: a partition, or a partition range. The
    partition's tag is set here, so the request needs no resolving against the job (a schedule's would)."""
    if len(group) == 1:
        key = partition_key(group[0])
        return RunRequest(run_key=run_key, partition_key=key, tags={PARTITION_NAME_TAG: key})
    return RunRequest(run_key=run_key, tags=range_tags(group[0], group[-1]))


def _refresh_runs(instance: DagsterInstance):
    return instance.get_run_records(filters=RunsFilter(job_name=REFRESH_JOB))


def older_months(
    landing: Path,
    months: list[str],
    first_partition: str,
    first_month: str | None,
    allow_external_links: bool = NO_EXTERNAL_LINKS,
) -> tuple[list[str], list[str]]:
    """``months`` (sorted) without those before the partitions' first month, and what is said of those: months
    before the declared start of history are not loaded; older months landed after the code location loaded
    (the start of history moved earlier) wait for a reload, after which they are requested as one backfill run."""
    older = [month for month in months if month < first_partition]
    if not older:
        return months, []
    start = history_start(landing, first_month, allow_external_links) or first_partition
    variable = Settings.variable("first_month")
    before_start = [month for month in older if month < start]
    said = []
    if before_start:
        said.append(
            f"{before_start[0]}..{before_start[-1]}: before the start of history (${variable}={start}), not "
            f"loaded; to backfill them, set ${variable} to {before_start[0]} (or unset it) and reload"
        )
    landed = [month for month in older if month >= start]
    if landed:
        said.append(
            f"{landed[0]}..{landed[-1]}: older months landed, before the partitions (from {first_partition}): "
            "history now starts earlier; reload the code location (Deployment > Reload, or restart `make dev`) "
            "and they are requested as one backfill run, or run "
            f"`cprof backfill --from {landed[0]} --to {landed[-1]}`"
        )
    return [month for month in months if month >= first_partition], said


def newer_months(months: list[str], partitions: MonthlyPartitionsDefinition) -> tuple[list[str], list[str]]:
    """``months`` (sorted) without those after the last month of ``partitions`` when they end (a historic landing
    zone recorded as such), and what is said of those: they wait for a reload of the code location, whose
    partitions then reach them (the sensor recorded the landing zone's new span)."""
    if partitions.end is None:
        return months, []
    last = month_of_key(partitions.get_last_partition_key())
    newer = [month for month in months if month > last]
    if not newer:
        return months, []
    said = (
        f"{newer[0]}..{newer[-1]}: landed after the partitions' last month ({last}); reload the code location "
        "(Deployment > Reload, or restart `make dev`) and they are requested, or run "
        f"`cprof run --from {newer[0]} --to {newer[-1]}`"
    )
    return [month for month in months if month <= last], [said]


def refresh_requests(
    instance: DagsterInstance,
    landing: Path,
    partitions: MonthlyPartitionsDefinition,
    now: float | None = None,
    first_month: str | None = None,
    retry_backoff: float = Settings.retry_backoff_seconds,
    allow_external_links: bool = NO_EXTERNAL_LINKS,
) -> tuple[list[RunRequest], list[str]]:
    """The runs the landing zone and the last publications call for, and what is waited for, in words. Months
    outside ``partitions`` (the code location's) are reported, not requested. ``first_month`` and
    ``retry_backoff``, ``allow_external_links``: the settings of those names (retry_backoff_seconds)."""
    now = time.time() if now is None else now
    status = scan_landing(landing, allow_external_links)
    ignored = [f"ignored (hidden or editor files): {', '.join(status.ignored)}"] if status.ignored else []
    if status.problems:  # every run would fail on them: request nothing until they are fixed
        return [], [
            f"nothing loaded until this file is fixed: {problem}" for problem in status.problems
        ] + ignored
    first_partition = month_of_key(partitions.get_first_partition_key())
    complete, older = older_months(
        landing, status.complete_months(), first_partition, first_month, allow_external_links
    )
    incomplete, _ = older_months(
        landing, status.incomplete_months(), first_partition, first_month, allow_external_links
    )
    complete, newer = newer_months(complete, partitions)
    incomplete, _ = newer_months(incomplete, partitions)
    older += newer
    runs = _refresh_runs(instance)
    due, waiting, clean = [], [], set()
    for month in complete:
        state = month_state(instance, month, status.files[month], runs)
        if state.running:
            waiting.append(f"{month}: being refreshed by run {state.running}")
        elif state.reason is None:
            clean.add(month)
            continue
        elif state.failures >= RETRY_LIMIT:
            waiting.append(
                f"{month}: {state.reason}, and its last {state.failures} refreshes failed: not retried "
                f"(limit {RETRY_LIMIT}); see the failed runs, fix the cause and run `cprof run --from {month} "
                f"--to {month}` (or change its files)"
            )
        elif state.failures and now < state.last_failure + retry_backoff_seconds(
            state.failures, retry_backoff
        ):
            at = datetime.fromtimestamp(
                state.last_failure + retry_backoff_seconds(state.failures, retry_backoff), UTC
            )
            waiting.append(
                f"{month}: {state.reason}; {state.failures} refresh(es) failed, attempt {state.failures + 1} of "
                f"{RETRY_LIMIT} after {at:%Y-%m-%d %H:%M:%S} UTC"
            )
        else:
            due.append((month, state.failures))
    requests = [
        refresh_request(
            group,
            f"{group[0]}..{group[-1]}:{status.fingerprint(group)}:"
            f"retry{max((f for m, f in due if m in group), default=0)}",
        )
        for group in joined([month for month, _ in due], clean)
    ]
    reasons = [f"{month}: requested (attempt {f + 1} of {RETRY_LIMIT})" for month, f in due]
    waiting += [
        f"{month}: waiting for {', '.join(f'{name}/{month}.csv' for name in status.missing(month))}"
        for month in incomplete
    ]
    waiting += older
    waiting += [
        f"reference/{name} changed since it was loaded: the next run of any month loads it, and if it changes or "
        "removes existing rows restates every published month with it (the run names them); to do it now, run "
        f"`cprof run --from {complete[-1] if complete else '<YYYY-MM>'}`"
        for name in changed_snapshots(instance, landing)
    ]
    return requests, reasons + waiting + ignored
