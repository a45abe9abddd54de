"""The satisfaction-retention link (marts.satisfaction_retention_fit): per as-of month, the logistic fit of a
customer staying active in the next 12 months on the satisfaction index and segment (pipelines/domain/
satisfaction_retention.py; the method in docs/DESIGN.md, "Satisfaction and retention").

An as-of month P is fitted when the warehouse holds the 12 months after it. Its customers: those with an order in
the trailing 12 months to P and a satisfaction index in the same window (customer_satisfaction; the index of
the window is the mean of the customer's monthly indices weighted by their responses); the outcome: an order in
P+1..P+12. Active means what it means in customer_retention: a month with orders (the driver volumes' `orders`).

A month's rows depend on the months P-11..P+12, so a run for months first..last rebuilds the as-of months
first-12..last+11 and keeps the others. No as-of month with 12 months after it is skipped: one that cannot be
fitted is published with fit_status not_fitted, its reason and its terms without estimates.
"""

from datetime import date

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    multi_asset,
)

from pipelines.defs.assets import NOTES
from pipelines.defs.assets.kinds import DEFAULT_ENGINE, warehouse_kinds
from pipelines.defs.assets.row_counts import add_row_counts
from pipelines.defs.partitions import FULL_REFRESH_TAG, RefreshWindow, refresh_range, shift_month, single_run
from pipelines.defs.resources import WarehouseResource
from pipelines.domain.satisfaction_retention import FITTED, SEGMENT_TERM_PREFIX, RetentionFit, fit_retention
from pipelines.engines.base import Column, Filter, Warehouse

FIT = AssetKey(["marts", "satisfaction_retention_fit"])
FIT_TABLE = "marts.satisfaction_retention_fit"
SATISFACTION = "marts.customer_satisfaction"
DRIVERS = "intermediate.int_drivers_aggregated_to_customer_month"
# The months in the warehouse (every month has customer rows), as the other trailing figures count them.
HISTORY = "marts.customer_profitability"
DEPS = [
    AssetKey(["marts", "customer_satisfaction"]),
    AssetKey(["intermediate", "int_drivers_aggregated_to_customer_month"]),
    AssetKey(["marts", "customer_profitability"]),
]
WINDOW = 12  # trailing months of activity and satisfaction, and months of outcome after the as-of month
FIT_COLUMNS = [
    Column("period", "date", nullable=False),
    Column("term", "varchar", nullable=False),
    Column("segment", "varchar"),
    Column("coefficient", "double"),
    Column("std_error", "double"),
    Column("ci_low", "double"),
    Column("ci_high", "double"),
    Column("fit_status", "varchar", nullable=False),
    Column("reason", "varchar"),
    Column("customers", "integer", nullable=False),
    Column("retained_customers", "integer", nullable=False),
    Column("log_likelihood", "double"),
    Column("baseline_segment", "varchar"),
    Column("window_months", "integer", nullable=False),
    Column("window_complete", "boolean", nullable=False),
]


def _stable(value: float | None) -> float | None:
    """Estimates rounded to 12 decimals: the linear algebra underneath is not bit-reproducible from run to run, and
    a re-run of the same months must publish the same bytes (equal checksums in marts.publish_log)."""
    return None if value is None else round(float(value), 12)


def customers_of(satisfaction: pd.DataFrame, active: pd.DataFrame, period: date) -> pd.DataFrame:
    """As of ``period``: one row per customer active (a month with orders) in the trailing 12 months with a
    satisfaction index in them: customer_id, segment, index (the response-weighted mean of the window's monthly
    indices) and retained (a month with orders in the 12 after ``period``), in customer order.

    ``satisfaction``: period, customer_id, segment, responses, satisfaction_index; ``active``: customer_id, period.
    """
    start, end = pd.Timestamp(shift_month(period, 1 - WINDOW)), pd.Timestamp(period)
    window = satisfaction[
        (satisfaction.period >= start)
        & (satisfaction.period <= end)
        & satisfaction.satisfaction_index.notna()
    ]
    weighted = window.assign(weighted=window.satisfaction_index * window.responses)
    indexed = weighted.groupby("customer_id").agg(
        segment=("segment", "last"), weighted=("weighted", "sum"), responses=("responses", "sum")
    )
    indexed["index"] = indexed.weighted / indexed.responses
    # unique() and isin() hash the column as a whole: a set() of it iterates its values one by one in Python
    before = active.customer_id[(active.period >= start) & (active.period <= end)].unique()
    after_end = pd.Timestamp(shift_month(period, WINDOW))
    after = active.customer_id[(active.period > end) & (active.period <= after_end)].unique()
    found = indexed[indexed.index.isin(before)].sort_index()
    return pd.DataFrame(
        {
            "customer_id": found.index,
            "segment": found.segment.to_numpy(),
            "index": found["index"].to_numpy(dtype=float),
            "retained": found.index.isin(after),
        }
    )


def fit_rows(period: date, fit: RetentionFit, window_months: int) -> pd.DataFrame:
    """One as-of month's rows of FIT_TABLE: one per term; a fit not fitted has its terms without estimates."""
    fitted = fit.status == FITTED
    intervals = fit.intervals() if fitted else [(None, None)] * len(fit.terms)
    rows = []
    for i, term in enumerate(fit.terms):
        rows.append(
            {
                "period": period,
                "term": term,
                "segment": term[len(SEGMENT_TERM_PREFIX) :] if term.startswith(SEGMENT_TERM_PREFIX) else None,
                "coefficient": _stable(fit.coefficients[i]) if fitted else None,
                "std_error": _stable(fit.std_errors[i]) if fitted else None,
                "ci_low": _stable(intervals[i][0]),
                "ci_high": _stable(intervals[i][1]),
                "fit_status": fit.status,
                "reason": fit.reason,
                "customers": fit.customers,
                "retained_customers": fit.retained,
                "log_likelihood": _stable(fit.log_likelihood),
                "baseline_segment": fit.baseline_segment,
                "window_months": window_months,
                "window_complete": window_months == WINDOW,
            }
        )
    return pd.DataFrame(rows, columns=[c.name for c in FIT_COLUMNS])


def as_of_months(history: list[date], window: RefreshWindow) -> list[date]:
    """The months of ``history`` (sorted) with the 12 months after them in it, within ``window``."""
    held = set(history)
    return [
        p
        for p in history
        if shift_month(p, WINDOW) in held
        and (window.first is None or p >= window.first)
        and (window.last is None or p <= window.last)
    ]


def rebuilt_window(context: AssetExecutionContext, warehouse: WarehouseResource) -> RefreshWindow:
    """The as-of months a run rebuilds: a month's change reaches the fits of the 12 months before it (their
    outcome) and the 11 after it (their trailing window); every month on a full refresh."""
    if context.run.tags.get(FULL_REFRESH_TAG) == "true":
        return RefreshWindow(None, None)
    widened = refresh_range(context, warehouse)
    first = date.fromisoformat(f"{widened.first}-01")
    last = date.fromisoformat(f"{widened.last}-01")
    return RefreshWindow(shift_month(first, -WINDOW), shift_month(last, WINDOW - 1))


def _declared(wh: Warehouse) -> bool:
    """Whether the table exists with exactly FIT_COLUMNS (one written by an earlier version is rebuilt whole)."""
    return wh.columns(FIT_TABLE) == [c.name for c in FIT_COLUMNS]


def satisfaction_retention(monthly: PartitionsDefinition, engine: str = DEFAULT_ENGINE) -> AssetsDefinition:
    """marts/satisfaction_retention_fit, on ``monthly`` (a multi-asset of one: its step is
    `satisfaction_retention`, in the satisfaction and scorecard phase of a run)."""

    @multi_asset(
        partitions_def=monthly,
        backfill_policy=single_run,
        name="satisfaction_retention",
        specs=[
            AssetSpec(
                FIT,
                group_name="marts",
                deps=DEPS,
                kinds=warehouse_kinds(engine, "python"),
                description="Per as-of month with 12 months after it, and term: the logistic fit of a customer "
                "staying active in the next 12 months on the satisfaction index (per 10 points) and segment, "
                "with standard errors and 95% intervals, or not_fitted and why. An association, not a cause.",
            ),
        ],
    )
    def _satisfaction_retention(context: AssetExecutionContext, warehouse: WarehouseResource):
        window = rebuilt_window(context, warehouse)
        with warehouse.session() as wh:
            if not _declared(wh):
                window = RefreshWindow(None, None)
            history = sorted(wh.distinct(HISTORY, "period"))
            months = as_of_months(history, window)
            frames, fits = [], {}
            if months:
                reach = [
                    Filter("period", ">=", shift_month(months[0], 1 - WINDOW)),
                    Filter("period", "<=", shift_month(months[-1], WINDOW)),
                ]
                satisfaction = wh.read(
                    SATISFACTION,
                    ["period", "customer_id", "segment", "responses", "satisfaction_index"],
                    reach[:1] + [Filter("period", "<=", months[-1])],
                    order_by=["period", "customer_id"],
                )
                active = wh.read(
                    DRIVERS, ["customer_id", "period"], [*reach, Filter("driver", "=", "orders")]
                ).drop_duplicates()
                for frame in (satisfaction, active):
                    frame["period"] = pd.to_datetime(frame["period"])
                for period in months:
                    customers = customers_of(satisfaction, active, period)
                    fit = fit_retention(customers["index"], customers.segment, customers.retained)
                    held = sum(1 for p in history if shift_month(period, -WINDOW) < p <= period)
                    fits[period] = fit
                    frames.append(fit_rows(period, fit, held))
            wh.replace_periods(FIT_TABLE, FIT_COLUMNS, frames, window)
        said = [
            f"{period:%Y-%m} not fitted: {fit.reason}" for period, fit in fits.items() if fit.status != FITTED
        ]
        if not as_of_months(history, RefreshWindow(None, None)):
            said.append(
                f"no month has the {WINDOW} months after it in the warehouse ({len(history)} month(s) of "
                "history): the satisfaction-retention link is not fitted"
            )
        for note in said:
            context.log.warning(f"satisfaction_retention_fit: {note}")
        fitted = [(p, f) for p, f in fits.items() if f.status == FITTED]
        add_row_counts(context, warehouse, [FIT])
        metadata = {
            "months_fitted": len(fitted),
            "months_not_fitted": MetadataValue.json(
                {f"{p:%Y-%m}": f.reason for p, f in fits.items() if f.status != FITTED}
            ),
            NOTES: MetadataValue.json(said),
        }
        if fitted:
            period, last = fitted[-1]
            metadata["latest_fit"] = MetadataValue.json(
                {
                    "period": f"{period:%Y-%m}",
                    **{t: round(c, 6) for t, c in zip(last.terms, last.coefficients, strict=True)},
                }
            )
        yield MaterializeResult(asset_key=FIT, metadata=metadata)

    return _satisfaction_retention
