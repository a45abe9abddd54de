"""What the Dagster instance records of each month, as the landing sensor and the failure alerts read it: the
landing zone's monthly files (``scan_landing``), the month's last publication (the last materialization of
``published/marts`` for it, or a later publication that restated it), the files the run that published it loaded
(the ``files`` metadata of ``landed/<source>``), and the refreshes of it that failed or are under way
(``month_state``). A file whose size or modification time differs from the one published is a change only when
its SHA-256 differs too, so a copied data directory (times not preserved) is not a change. Nothing here reads the
warehouse (a run may be writing it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dagster import AssetKey, AssetRecordsFilter, DagsterInstance, DagsterRunStatus

from pipelines.defs.partitions import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
    month_of_key,
    partition_key,
)
from pipelines.landing.inventory import NO_EXTERNAL_LINKS, is_unchanged, landing_inventory
from pipelines.landing.sources import EXTENSIONS, MONTHLY, SNAPSHOTS


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
UNFINISHED = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


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
