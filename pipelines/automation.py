"""Schedules and sensors: the monthly close, and the landing-zone sensor that refreshes a month when its files
are complete or one of them was corrected.

The sensor compares each landing file's size and modification time with what the last materialization of
``landed/<source>`` for that month recorded (its ``files`` metadata), so it sees loads from ``cprof`` and from
the UI alike. Months needing a refresh are requested as one run per contiguous range; a month still missing
files is reported by name and left alone. Reference snapshots changed on disk are reported too: they restate
every month, which is a full refresh (``cprof backfill --full-refresh``), not something to start unattended.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    build_schedule_from_partitioned_job,
    sensor,
)

from pipelines.ingest import landing_inventory
from pipelines.partitions import partition_key, range_tags, shift_month
from pipelines.resources import DataDir
from pipelines.sources import EXTENSIONS, MONTHLY, SNAPSHOTS

# The monthly close runs at 06:00 UTC on the 3rd, when the ledger of the previous month has closed; the
# published marts are due by 09:00 (pipelines.assets.publish.PUBLISH_DEADLINE_CRON).


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


def scan_landing(landing: Path) -> LandingStatus:
    """The landing zone's monthly files; a file whose name breaks the spec is a problem to report (a run would
    fail on it), not an error of the sensor."""
    inventory = landing_inventory(landing)
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


def _recorded(instance: DagsterInstance, source: str, month: str | None) -> dict | None:
    """The file the last materialization of landed/<source> (for ``month``) loaded: bytes and mtime_ns."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(
            asset_key=AssetKey(["landed", source]),
            asset_partitions=[partition_key(month)] if month else None,
        ),
        limit=1,
    ).records
    if not records:
        return None
    materialization = records[0].asset_materialization
    files = materialization.metadata.get("files") if materialization else None
    return (files.value or {}).get(month or "snapshot") if files is not None else None


def _changed(recorded: dict | None, found: tuple[str, int, int]) -> bool:
    return recorded is None or (recorded.get("bytes"), recorded.get("mtime_ns")) != found[1:]


def months_to_refresh(instance: DagsterInstance, status: LandingStatus) -> list[str]:
    """Complete months whose files were never loaded, or differ from the ones last loaded (a late correction)."""
    return [
        month
        for month in status.complete_months()
        if any(_changed(_recorded(instance, s, month), found) for s, found in status.files[month].items())
    ]


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


def refresh_requests(instance: DagsterInstance, landing: Path) -> tuple[list[RunRequest], list[str]]:
    """The runs the landing zone calls for, and what it is still waiting for, in words."""
    status = scan_landing(landing)
    ignored = [f"ignored (hidden or editor files): {', '.join(status.ignored)}"] if status.ignored else []
    if status.problems:  # every run would fail on them: request nothing until they are fixed
        return [], [
            f"nothing loaded until this file is fixed: {problem}" for problem in status.problems
        ] + ignored
    requests = [
        RunRequest(
            run_key=f"{group[0]}..{group[-1]}:{status.fingerprint(group)}",
            partition_key=partition_key(group[0]) if len(group) == 1 else None,
            tags={} if len(group) == 1 else range_tags(group[0], group[-1]),
        )
        for group in contiguous(months_to_refresh(instance, status))
    ]
    waiting = [
        f"{month}: waiting for {', '.join(f'{name}/{month}.csv' for name in status.missing(month))}"
        for month in status.incomplete_months()
    ]
    waiting += [
        f"reference/{name} changed since it was loaded: it restates every month; run "
        "`cprof backfill --full-refresh` when intended"
        for name in changed_snapshots(instance, landing)
    ]
    return requests, waiting + ignored


@sensor(
    job_name="refresh",
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.STOPPED,
    description="Watches the landing zone: when a month's complete set of files has arrived, or one of its files "
    "was replaced by a corrected one, refreshes that month (and the trailing views it feeds). Reports the files a "
    "month is still waiting for.",
)
def landing_sensor(context: SensorEvaluationContext, data_dir: DataDir):
    requests, waiting = refresh_requests(context.instance, data_dir.paths.landing)
    for line in waiting:
        context.log.info(line)
    if requests:
        return SensorResult(run_requests=requests)
    blocked = any(line.startswith("nothing loaded until") for line in waiting)
    return SkipReason(
        (
            "the landing zone has files that break its spec"
            if blocked
            else "every complete month is loaded and unchanged"
        )
        + ("; " + "; ".join(waiting) if waiting else "")
    )


def monthly_close_schedule(refresh_job):
    return build_schedule_from_partitioned_job(
        refresh_job,
        name="monthly_close",
        description="Monthly close: at 06:00 UTC on the 3rd, after the ledger has closed, refresh the previous "
        "month (ingest, check, dbt build, CLV, satisfaction, scorecard, publish).",
        minute_of_hour=0,
        hour_of_day=6,
        day_of_month=3,
    )
