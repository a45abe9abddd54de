"""Whole months: which months of the monthly sources may reach ``raw``, and why the others are held. Engine-free:
each engine (duckdb_ingest, spark_ingest) says what it holds of every source's month as :class:`Partition`s and
releases the months :func:`months_to_release` names, all six sources of a month at once.

A month is *whole* when each monthly source's latest load of it passed its suite. ``raw`` only ever holds whole
months, contiguous: a month is released when it is whole and the months before it (from the first month loaded)
are released or released in the same step; months already in ``raw`` whose latest loads are whole again (a
corrected file) are released again in place; older months (a backward backfill) are released as one block once
every one of them, up to the first month in ``raw``, is whole. A month that is not whole stays as last released
(or absent), and the months after it wait, validated and held out of ``raw`` until it is whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pipelines.landing.inventory import NO_EXTERNAL_LINKS, find_file
from pipelines.landing.sources import BY_NAME, MONTHLY
from pipelines.landing.structure import LandingError


@dataclass(frozen=True)
class Partition:
    """What the warehouse holds of one monthly source's month."""

    source: str
    month: str  # YYYY-MM
    validated: (
        bool | None
    )  # its latest load passed its suite (True), failed it (False), was not validated (None)
    released: bool  # its latest load is what ``raw`` shows
    in_raw: bool  # ``raw`` shows a load of it (the latest, or an earlier one)
    run_id: str | None = None  # the run that validated the latest load, or whose suite failed it
    rows: int = 0  # of the latest load


def next_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    return f"{year + number // 12}-{number % 12 + 1:02d}"


def months_from(first: str, last: str) -> list[str]:
    """The months first..last (YYYY-MM), in order."""
    months, month = [], first
    while month <= last:
        months.append(month)
        month = next_month(month)
    return months


def month_of(period: date) -> str:
    return f"{period:%Y-%m}"


def landing_files(landing: Path, allow_external_links: bool = NO_EXTERNAL_LINKS) -> Callable[[str, str], str]:
    """``file_of(source, month)``: the month's landing file of the source, as a path under ``landing`` (its CSV
    name when there is none, or it is refused: ``allow_external_links``, the setting)."""

    def file_of(source: str, month: str) -> str:
        try:
            return str(find_file(landing, BY_NAME[source], month, allow_external_links).relative_to(landing))
        except LandingError:
            return f"{source}/{month}.csv"

    return file_of


class WholeMonths:
    """The monthly sources' partitions, by month, and what follows from them."""

    def __init__(self, partitions: Iterable[Partition], sources: Iterable[str] | None = None):
        self.sources = list(sources or (source.name for source in MONTHLY))
        self.by_month: dict[str, dict[str, Partition]] = {}
        for partition in partitions:
            self.by_month.setdefault(partition.month, {})[partition.source] = partition

    def whole(self, month: str) -> bool:
        found = self.by_month.get(month, {})
        return all(name in found and found[name].validated is True for name in self.sources)

    def in_raw(self, month: str) -> bool:
        return any(p.in_raw for p in self.by_month.get(month, {}).values())

    def released(self, month: str) -> bool:
        """Whether ``raw`` shows the month's latest loads (nothing of it waits to be released)."""
        found = self.by_month.get(month, {})
        return bool(found) and all(p.released for p in found.values())

    def to_release(self) -> list[str]:
        """The months to release now, in order (see the module's docstring)."""
        loaded = sorted(self.by_month)
        if not loaded:
            return []
        in_raw = [month for month in loaded if self.in_raw(month)]
        release: list[str] = []
        if in_raw:
            older = months_from(loaded[0], in_raw[0])[:-1]
            if older and all(self.whole(month) for month in older):
                release += older
            release += [
                month
                for month in months_from(in_raw[0], in_raw[-1])
                if self.whole(month) and not self.released(month)
            ]
            month = next_month(in_raw[-1])
        else:
            month = loaded[0]
        while self.whole(month):
            release.append(month)
            month = next_month(month)
        return release

    def holdups(self, months: Iterable[str]) -> list[Holdup]:
        """Why each of ``months`` whose latest loads ``raw`` does not show is held (after the releases)."""
        return [self.holdup(month) for month in months if not self.released(month)]

    def holdup(self, month: str) -> Holdup:
        found = self.by_month.get(month, {})
        missing = [
            SourceState(
                name,
                found[name].validated if name in found else None,
                found.get(name) is not None,
                found[name].run_id if name in found else None,
            )
            for name in self.sources
            if name not in found or found[name].validated is not True
        ]
        if missing:
            return Holdup(month, self.in_raw(month), missing)
        loaded = sorted(self.by_month)
        in_raw = [m for m in loaded if self.in_raw(m)]
        # Older months than raw's are released as one block, up to raw's first month: any of them can hold it.
        span = months_from(loaded[0], in_raw[0] if in_raw and month < in_raw[0] else month)
        # a month before it that is neither whole nor in raw keeps it out (one in raw, as last released, does not)
        before = [m for m in span if m != month and not self.whole(m) and not self.in_raw(m)]
        if before:
            return Holdup(month, self.in_raw(month), [], waits_for=self.holdup(before[0]))
        return Holdup(month, self.in_raw(month), [], waits_for=None)

    def held(self) -> list[Holdup]:
        """Every month whose latest loads ``raw`` does not show: what a publication leaves out or shows as last
        released."""
        return self.holdups(sorted(self.by_month))


@dataclass(frozen=True)
class SourceState:
    """A source of a month that is not whole: its latest load failed its suite, was not validated, or is missing."""

    source: str
    validated: bool | None
    loaded: bool
    run_id: str | None


@dataclass(frozen=True)
class Holdup:
    """A month held out of ``raw``: the sources that keep it from being whole, or the earlier month it waits for."""

    month: str
    in_raw: bool  # raw still shows an earlier load of it (it is published as last released)
    sources: list[SourceState]
    waits_for: Holdup | None = None

    def causes(self, file_of) -> list[str]:
        """The reasons, one per source, in words; ``file_of(source, month)`` names the landing file."""
        if not self.sources:
            return self.waits_for.causes(file_of) if self.waits_for else []
        said = []
        for state in self.sources:
            path = file_of(state.source, self.month)
            if not state.loaded:
                said.append(f"{path} was never loaded")
            elif state.validated is False:
                said.append(f"{path} failed its suite in run {state.run_id or '(unknown)'}")
            else:
                said.append(f"{path} was loaded and has not passed its suite yet")
        return said

    def first_month(self) -> str:
        """The month to fix first: this one, or the earlier month it waits for."""
        return self.waits_for.first_month() if self.waits_for else self.month

    def sentence(self, file_of) -> str:
        """What a run says of the month (``file_of(source, month)`` names the landing file)."""
        causes = "; ".join(self.causes(file_of))
        state = "is published as last released" if self.in_raw else "is not published"
        if self.sources:
            return f"{self.month} {state} (held out of raw until whole): {causes}"
        if self.waits_for is not None:
            return f"{self.month} {state}: held out of raw until {self.waits_for.month} is whole ({causes})"
        return f"{self.month} {state}: whole, waiting to be released"

    def remedy(self) -> str:
        """What to do, in words."""
        first = self.first_month()
        return (
            f"fix the file(s) named and run `cprof run --from {first} --to {self.month}` (the sensor retries a "
            "month whose files change)"
        )
