"""Schedules and sensors: the monthly close, and the landing-zone sensor that refreshes a month when its files
are complete or one of them was corrected, or when its last refresh failed.

Both decide from what was published, as the Dagster instance records it (so loads from ``cprof`` and from the UI
count alike), not from the first step of a run. For each month the sensor takes its last publication: the last
materialization of ``published/marts`` for it, or a later publication of other months that published it too (every
run rebuilds and publishes the months awaiting publication: its ``restated_months``), and compares each landing
file with the one the run that published it loaded (the ``files`` metadata of ``landed/<source>``): a file whose
size or modification time differs is a change only when its SHA-256 differs too, so a copied data directory
(times not preserved) requests nothing. A month is requested when it was never published, when a file changed
since, or when a run loaded it after its last publication without publishing it (the run failed or was killed):
it is attempted at most ``RETRY_LIMIT`` times, counted from the failed runs of that month since, each after a
growing wait (``CPROF_RETRY_BACKOFF_SECONDS``, doubled every time), after which it is reported and left to an
operator. A month a run is refreshing now waits for it. Neither reads the warehouse (a run may be writing it, and
even a reader would keep a starting run out): the warehouse's own record of months awaiting publication
(``landed._awaiting_publication``) is what every run, however launched, adds to the months it rebuilds.

The months due are requested as few runs as can be: consecutive months as one range, and ranges separated only by
months that are published and unchanged as one run too (a run rebuilds everything from its first month on anyway:
dbt's reach, CLV, one publication; reloading the months between costs seconds, a second run a whole build); a
month still missing files, waiting for its retry or left to an operator splits them. A month still missing files
is reported by name and left alone. A reference snapshot changed on disk is reported: the next run of any month
loads it and, when it changes or removes rows, restates every month with it. The monthly close requests the
previous month (the run adds the months awaiting publication).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    MonthlyPartitionsDefinition,
    RunRequest,
    RunsFilter,
    ScheduleEvaluationContext,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    schedule,
    sensor,
)

from pipelines.defs.partitions import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
    month_of_key,
    partition_key,
    range_tags,
    shift_month,
)
from pipelines.defs.resources import DataDir
from pipelines.engines.whole_months import months_from, next_month
from pipelines.landing.history import record_landing_history
from pipelines.landing.inventory import NO_EXTERNAL_LINKS, history_start, is_unchanged, landing_inventory
from pipelines.landing.sources import EXTENSIONS, MONTHLY, SNAPSHOTS
from pipelines.lib.settings import Settings

# The monthly close runs at 06:00 UTC on the 3rd, when the ledger of the previous month has closed; the
# published marts are due by 09:00 (pipelines.defs.assets.publish.PUBLISH_DEADLINE_CRON).


@dataclass
class LandingStatus:
    """What the landing zone holds: per month, each monthly source's file and its (bytes, mtime_ns)."""

    files: dict[str, dict[str, tuple[str, int, int]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # files that break the landing spec, in words
    ignored: list[str] = field(default_factory=list)  # hidden and editor files, not loaded

    def missing(self, month: str) -> list[str]:
        return [s.name for s in MONTHLY if s.name not in self.files.get(month, {})]

    def complete_months(self) -> list[str]:
        return [month for month in sorted(self.files) if not self.missing(month)]

    def incomplete_months(self) -> list[str]:
        return [month for month in sorted(self.files) if self.missing(month)]

    def fingerprint(self, months: Iterable[str]) -> str:
        """A short digest of the files of ``months``: a run key that changes when any of them changes."""
        payload = json.dumps({m: self.files[m] for m in months}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _stat(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path), stat.st_size, stat.st_mtime_ns


def scan_landing(landing: Path, allow_external_links: bool = NO_EXTERNAL_LINKS) -> LandingStatus:
    """The landing zone's monthly files; a file whose name breaks the spec is a problem to report (a run would
    fail on it), not an error of the sensor. ``allow_external_links``: the setting."""
    inventory = landing_inventory(landing, allow_external_links)
    status = LandingStatus(
        problems=[f"{path}: {problem}" for path, problem in inventory.problems],
        ignored=[str(path) for path in inventory.ignored],
    )
    for source in MONTHLY:
        for month in inventory.months:
            path = next(
                (p for e in EXTENSIONS if (p := landing / source.name / f"{month}{e}").is_file()), None
            )
            if path is not None:
                status.files.setdefault(month, {})[source.name] = _stat(path)
    return status


PUBLISHED = AssetKey(["published", "marts"])
REFRESH_JOB = "refresh"
RETRY_LIMIT = (
    3  # failed refreshes of a month, since it was last published, after which it is left to an operator
)
UNFINISHED = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


def retry_backoff_seconds(failures: int, base: float) -> float:
    """How long after its last failed refresh a month is retried, after ``failures`` failures (1, 2, ...):
    ``base`` (the setting retry_backoff_seconds) after the first, doubled after each further one."""
    return base * 2 ** (failures - 1)


def _last(instance: DagsterInstance, key: AssetKey, month: str | None, before: float | None = None):
    """The last materialization record of ``key`` (for ``month``), before the time ``before`` if given."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(
            asset_key=key,
            asset_partitions=[partition_key(month)] if month else None,
            before_timestamp=before,
        ),
        limit=1,
    ).records
    return records[0] if records else None


def _files(record, month: str | None) -> dict | None:
    """What a landed/<source> materialization record says it loaded (``files`` metadata) for ``month``."""
    materialization = record.asset_materialization if record else None
    files = materialization.metadata.get("files") if materialization else None
    return (files.value or {}).get(month or "snapshot") if files is not None else None


def _published_at(instance: DagsterInstance, month: str) -> float | None:
    """When ``month`` was last published: by a run of it, or by a later run of other months that published it as
    awaiting publication (``restated_months``: it was released to raw by a run that did not publish it)."""
    record = _last(instance, PUBLISHED, month)
    own = record.timestamp if record else None
    loaded = [_last(instance, AssetKey(["landed", source.name]), month) for source in MONTHLY]
    last_load = max((r.timestamp for r in loaded if r is not None), default=None)
    if last_load is None or (own is not None and own > last_load):
        return own
    later = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=PUBLISHED, after_timestamp=last_load), limit=RESTATED_LOOKUP
    ).records
    restated = [r.timestamp for r in later if month in _restated_months(r)]
    return max([own or 0.0, *restated]) if restated else own


RESTATED_LOOKUP = 200  # publications since a month's last load looked through for one that restated it


def _restated_months(record) -> list[str]:
    """The months awaiting publication that a publication published with its own (its ``restated_months``)."""
    found = record.asset_materialization.metadata.get("restated_months") if record else None
    return list(found.value or []) if found is not None else []


def _recorded(
    instance: DagsterInstance, source: str, month: str | None, before: float | None = None
) -> dict | None:
    """The file the last materialization of landed/<source> (for ``month``, before ``before``) loaded: bytes,
    mtime_ns and sha256."""
    return _files(_last(instance, AssetKey(["landed", source]), month, before), month)


def _changed(recorded: dict | None, found: tuple[str, int, int]) -> bool:
    """Whether the landing file ``found`` differs from the one recorded: size and modification time first,
    then, when one of them differs, its SHA-256 (a copy with new times is the same file)."""
    return recorded is None or not is_unchanged(
        Path(found[0]), recorded.get("bytes"), recorded.get("mtime_ns"), recorded.get("sha256")
    )


def _run_months(tags: dict[str, str]) -> tuple[str, str] | None:
    """The first and last month a refresh run covers, from its tags (None: no partition, all of them)."""
    if PARTITION_NAME_TAG in tags:
        return month_of_key(tags[PARTITION_NAME_TAG]), month_of_key(tags[PARTITION_NAME_TAG])
    if ASSET_PARTITION_RANGE_START_TAG in tags:
        return month_of_key(tags[ASSET_PARTITION_RANGE_START_TAG]), month_of_key(
            tags[ASSET_PARTITION_RANGE_END_TAG]
        )
    return None


def _covers(tags: dict[str, str], month: str) -> bool:
    span = _run_months(tags)
    return span is None or span[0] <= month <= span[1]


def _loaded_after(instance: DagsterInstance, source: str, month: str, published: float) -> bool:
    """Whether a run loaded ``source`` for ``month`` after its last publication: a refresh that did not
    publish."""
    record = _last(instance, AssetKey(["landed", source]), month)
    return record is not None and record.timestamp > published


def changed_snapshots(instance: DagsterInstance, landing: Path) -> list[str]:
    """Reference snapshots on disk that differ from the ones last loaded (never-loaded ones do not count)."""
    changed = []
    for source in SNAPSHOTS:
        path = next(
            (
                landing / "reference" / f"{source.name}{e}"
                for e in EXTENSIONS
                if (landing / "reference" / f"{source.name}{e}").is_file()
            ),
            None,
        )
        recorded = _recorded(instance, source.name, None)
        if path is not None and recorded is not None and _changed(recorded, _stat(path)):
            changed.append(source.name)
    return changed


@dataclass
class MonthState:
    """Why a complete month is (or is not) requested, from the instance."""

    month: str
    reason: str | None = None  # why it needs a refresh; None: published and unchanged
    failures: int = 0  # failed refreshes covering it since it was last published (and its files last changed)
    last_failure: float | None = None  # when the last of them ended
    running: str | None = None  # the run refreshing it now


def month_state(
    instance: DagsterInstance, month: str, files: dict[str, tuple[str, int, int]], runs
) -> MonthState:
    state = MonthState(month)
    published = _published_at(instance, month)
    running = [r for r in runs if r.dagster_run.status in UNFINISHED and _covers(r.dagster_run.tags, month)]
    if running:
        state.running = running[0].dagster_run.run_id
        return state
    if published is None:
        state.reason = "not published yet"
    elif changed := [
        s for s, found in files.items() if _changed(_recorded(instance, s, month, published), found)
    ]:
        state.reason = f"{', '.join(changed)} changed since it was published"
    elif any(_loaded_after(instance, s, month, published) for s in files):
        state.reason = "its last refresh did not publish it"
    if state.reason is None:
        return state
    since = max([published or 0.0, *(found[2] / 1e9 for found in files.values())])
    failed = [
        r
        for r in runs
        if r.dagster_run.status == DagsterRunStatus.FAILURE
        and r.create_timestamp.timestamp() >= since
        and _covers(r.dagster_run.tags, month)
    ]
    state.failures = len(failed)
    if failed:
        state.last_failure = max(r.end_time or r.create_timestamp.timestamp() for r in failed)
    return state


def contiguous(months: list[str]) -> list[list[str]]:
    """Sorted months split into runs of consecutive months."""
    groups: list[list[str]] = []
    for month in sorted(months):
        previous = f"{shift_month(date.fromisoformat(f'{month}-01'), -1):%Y-%m}"
        if groups and groups[-1][-1] == previous:
            groups[-1].append(month)
        else:
            groups.append([month])
    return groups


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


def _refresh_request(group: list[str], run_key: str | None = None) -> RunRequest:
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
        _refresh_request(
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


LANDING_SENSOR = "landing_sensor"


def landing_sensor(partitions: MonthlyPartitionsDefinition) -> SensorDefinition:
    """The landing sensor of the code location whose monthly partitions are ``partitions``."""

    @sensor(
        name=LANDING_SENSOR,
        job_name=REFRESH_JOB,
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.STOPPED,
        description="Watches the landing zone and the publications: when a month's complete set of files has "
        "arrived, one of its files was replaced by a corrected one (by content: SHA-256), or its last refresh "
        "failed, refreshes that month (and the trailing views it feeds; one run for months due apart only by "
        f"published, unchanged ones); a failing month is attempted at most {RETRY_LIMIT} times, with a "
        "growing wait, then reported. Reports the files a month is still waiting for.",
    )
    def _landing_sensor(context: SensorEvaluationContext, data_dir: DataDir):
        # The landing zone's span, recorded for the next load of the code location (its partitions read it).
        record_landing_history(data_dir.paths.data_dir, allow_external_links=data_dir.allow_external_links)
        requests, waiting = refresh_requests(
            context.instance,
            data_dir.paths.landing,
            partitions,
            first_month=data_dir.first_month,
            retry_backoff=data_dir.retry_backoff_seconds,
            allow_external_links=data_dir.allow_external_links,
        )
        for line in waiting:
            context.log.info(line)
        if requests:
            return SensorResult(run_requests=requests)
        blocked = any(line.startswith("nothing loaded until") for line in waiting)
        return SkipReason(
            (
                "the landing zone has files that break its spec"
                if blocked
                else "nothing to request now"
                if waiting
                else "every complete month is published and unchanged"
            )
            + ("; " + "; ".join(waiting) if waiting else "")
        )

    return _landing_sensor


def monthly_close_schedule(refresh_job):
    @schedule(
        job=refresh_job,
        name="monthly_close",
        cron_schedule="0 6 3 * *",
        execution_timezone="UTC",
        description="Monthly close: at 06:00 UTC on the 3rd, after the ledger has closed, refresh the previous "
        "month (ingest, check, dbt build, CLV, satisfaction, scorecard, publish); the run rebuilds and publishes "
        "every month awaiting publication with it (released to raw by a run that did not publish it).",
    )
    def _monthly_close(context: ScheduleEvaluationContext):
        scheduled = context.scheduled_execution_time or datetime.now(UTC)
        # The run rebuilds and publishes the months awaiting publication with it (partitions.refresh_range).
        return _refresh_request([f"{shift_month(scheduled.date().replace(day=1), -1):%Y-%m}"])

    return _monthly_close
