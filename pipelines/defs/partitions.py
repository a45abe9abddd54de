"""The one monthly partitions definition shared by every partitioned asset: ingest, dbt, the Python marts and
the publication. A run covers one month or a range of months (a Dagster partition range); the assets process
the months of the range in order, in that one run.

The partitions are the months of history, so that Dagster's UI counts as "missing" only the months a run has not
loaded. Their bounds are configuration, never the landing zone (a stray landing file must not stop the code
location): ``CPROF_FIRST_MONTH`` / ``CPROF_LAST_MONTH`` when set, else the span recorded in the data directory
from its landing zone (pipelines/landing/history.py: from the first month landed; to the newest one for a
historic landing zone such as the demo, else to the last complete month, as time goes by), else 2020-01 to the
last complete month. They are built with the definitions, from their :class:`Settings`
(:func:`partitions_of`, in pipelines/definitions.py's ``build_definitions``), and handed to the factories of the
assets, checks and sensor: nothing here reads the environment or the data directory at import. Reload the code
location (restart ``make dev``) after the recorded span moves.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    BackfillPolicy,
    MonthlyPartitionsDefinition,
)

from pipelines.engines.base import PeriodWindow, Warehouse, where_sql
from pipelines.engines.sql import ident
from pipelines.landing.history import bounds, read_history
from pipelines.lib.settings import Settings

# The run tags by which Dagster says which partitions a run covers, by their documented names (Dagster's constants
# for them are in a private module): one partition, or a range (a backfill's single run, cprof's runs).
PARTITION_NAME_TAG = "dagster/partition"
ASSET_PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
ASSET_PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"

# Backfill policies are a beta parameter of @asset in Dagster 1.13; we rely on them knowingly.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`")


def monthly_partitions_for(first: str, last: str | None) -> MonthlyPartitionsDefinition:
    """Monthly partitions from ``first`` (YYYY-MM) to ``last``, or to the last complete month when None."""
    if last is None:
        return MonthlyPartitionsDefinition(start_date=partition_key(first), end_offset=0)
    end = shift_month(date.fromisoformat(partition_key(last)), 1)  # exclusive
    return MonthlyPartitionsDefinition(start_date=partition_key(first), end_date=end.isoformat())


def partitions_of(settings: Settings) -> MonthlyPartitionsDefinition:
    """The monthly partitions of ``settings``: their first_month / last_month, else the span recorded in their
    data directory."""
    return monthly_partitions_for(
        *bounds(read_history(settings.data_dir), settings.first_month, settings.last_month)
    )


# A backfill of any range is one run: every asset handles its months in order, so the per-run overhead is
# paid once, and the marts that need history are rebuilt once for the whole range.
single_run = BackfillPolicy.single_run()


def partition_key(month: str) -> str:
    """Dagster's key for a YYYY-MM month."""
    return f"{month}-01"


def month_of_key(key: str) -> str:
    return key[:7]


def shift_month(month_start: date, months: int) -> date:
    """The first day of the month ``months`` after (before, if negative) the month of ``month_start``."""
    index = month_start.year * 12 + month_start.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


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


def range_tags(first: str, last: str) -> dict[str, str]:
    """Run tags that make a run cover the months first..last (YYYY-MM), as a UI backfill of the range does."""
    return {
        ASSET_PARTITION_RANGE_START_TAG: partition_key(first),
        ASSET_PARTITION_RANGE_END_TAG: partition_key(last),
    }


def months_of_run(tags: dict[str, str]) -> list[str]:
    """The months (YYYY-MM, in order) a run covers, from its tags (a partition or a partition range), for a step
    whose own asset is not partitioned; [] for a run of no partition."""
    if PARTITION_NAME_TAG in tags:
        return [month_of_key(tags[PARTITION_NAME_TAG])]
    if ASSET_PARTITION_RANGE_START_TAG not in tags:
        return []
    current = date.fromisoformat(tags[ASSET_PARTITION_RANGE_START_TAG])
    last = date.fromisoformat(tags[ASSET_PARTITION_RANGE_END_TAG])
    months = []
    while current <= last:
        months.append(f"{current:%Y-%m}")
        current = shift_month(current, 1)
    return months


def run_months(context) -> list[str]:
    """The months (YYYY-MM, in order) of the partition or partition range an asset or check is running for."""
    return sorted(month_of_key(key) for key in context.partition_keys)


def evaluated_each_month(
    context: AssetCheckExecutionContext, result: AssetCheckResult, by_month: Mapping[str, tuple[bool, str]]
) -> AssetCheckResult:
    """Record a check's outcome for each month it validated (``by_month``: month -> passed, description) as its
    evaluation of that month's partition, and return the run's ``result`` (its output, and what blocks).

    Dagster plans a check of a run over a range of months once per month, but the check's result is one
    evaluation of the range: without these, the months stay planned and the check's Partitions tab shows them
    skipped after a good run (pipelines/runtime/dagster_private.py resolves those of the checks that do not know
    their months' outcomes). A run of one partition needs none: Dagster records the result as that month's."""
    op = context.op_execution_context
    if op.has_partition_key:
        return result
    (spec,) = op.assets_def.check_specs
    for validated, (passed, description) in by_month.items():
        op.log_event(
            AssetCheckEvaluation(
                asset_key=spec.asset_key,
                check_name=spec.name,
                passed=passed,
                severity=result.severity,
                description=description,
                blocking=spec.blocking,
                partition=partition_key(validated),
            )
        )
    return result


FULL_REFRESH_TAG = "cprof/full_refresh"


@dataclass(frozen=True)
class RefreshWindow(PeriodWindow):
    """The periods a run rebuilds in a table keyed by period: from the run's first month to its last month plus
    the table's reach (how far forward one month's change carries; None: to the end). Unbounded both ways on a
    full refresh. The Python counterpart of dbt_project/macros/refresh_window.sql."""

    def predicate(self, column: str = "period") -> tuple[str, list[date]]:
        """A SQL predicate on ``column`` and its parameters (DuckDB's ``?`` placeholders)."""
        return where_sql(self.filters(column), ident)

    def or_everything_if_missing(self, warehouse: Warehouse, *tables: str) -> RefreshWindow:
        """This window, or every period when one of ``tables`` (schema.name) does not exist yet: a table's
        first build is whole, whatever range the run covers (as dbt's incremental models do)."""
        if all(warehouse.exists(table) for table in tables):
            return self
        return RefreshWindow(None, None)


@dataclass(frozen=True)
class RefreshRange:
    """The months a run rebuilds and publishes: its own months (its partitions), widened to every month awaiting
    publication (released to ``raw`` by a run that did not publish it, failed or killed; the months of returns
    whose lines the run brought; every month when a changed snapshot restates history), backwards included, since
    later months depend on earlier ones. The months awaiting are in ``raw`` already: they are rebuilt, not
    reloaded. Computed here, once, for every step that rebuilds or publishes (dbt, the Python marts, the
    publication), whoever launched the run."""

    months: tuple[str, ...]  # the run's partitions, in order
    awaiting: tuple[str, ...] = ()  # the warehouse's record of months awaiting publication, in order

    @classmethod
    def of(cls, months: list[str], runtime) -> RefreshRange:
        """``months`` widened by the months ``runtime`` (the engine's) records as awaiting publication (none when
        it cannot tell: a writer holds the record)."""
        return cls(tuple(months), tuple(runtime.months_awaiting_publication() or ()))

    @property
    def first(self) -> str:
        return min((*self.months, *self.awaiting))

    @property
    def last(self) -> str:
        return max((*self.months, *self.awaiting))

    @property
    def also(self) -> list[str]:
        """The months awaiting publication outside the run's own months."""
        return [month for month in self.awaiting if month not in self.months]

    def sentence(self) -> str | None:
        """What a run says when it widens its range, or None."""
        if not self.also:
            return None
        return (
            f"also refreshing {', '.join(self.also)}: in raw and awaiting publication (released by a run that "
            f"did not publish it, or restated); rebuilding {self.first} to {self.last}, not reloading"
        )


def refresh_range(context, warehouse) -> RefreshRange:
    """The run's :class:`RefreshRange`; ``warehouse``: the WarehouseResource, whose engine keeps the record of
    months awaiting publication (read outside any session: DuckDB opens it read only)."""
    return RefreshRange.of(run_months(context), warehouse.runtime())


def refresh_window(context, reach_months: int | None, warehouse) -> RefreshWindow:
    """The periods a table keyed by period rebuilds in this run: the run's refresh range (:func:`refresh_range`)
    plus the table's reach; every period on a full refresh."""
    if context.run.tags.get(FULL_REFRESH_TAG) == "true":
        return RefreshWindow(None, None)
    widened = refresh_range(context, warehouse)
    first = date.fromisoformat(f"{widened.first}-01")
    if reach_months is None:
        return RefreshWindow(first, None)
    return RefreshWindow(first, shift_month(date.fromisoformat(f"{widened.last}-01"), reach_months))
