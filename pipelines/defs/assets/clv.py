"""CLV assets: customer_clv (BG/NBD and Gamma-Gamma, in revenue and in profit) and its holdout check.

customer_clv is fitted per as-of month. Its transaction ("order" in its column names) is the purchase day, a day
with at least one order: what BG/NBD counts, what Gamma-Gamma's spend is per, and what cost-to-serve is divided by
(see pipelines/domain/clv_scoring.py). A run rescores the as-of months its range can change: every month from
the range's first on, since a month's purchases enter every later summary; earlier months are kept.

Each month's fit starts from the previous month's fitted parameters (a warm start: the same optimum to 1e-6 in
fewer iterations). So that a month's starting point, and with it every double of the mart, is the same however the
months are split into runs (a full build, one month at a time, a backfill backwards), the parameters are kept in
``fits.clv_parameters`` (one row per scored month, written with the mart): a run whose range starts at month M
starts M from the stored parameters of the summary's month before M, and cold when that month was not scored.
"""

from datetime import date

import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)

from pipelines.defs.partitions import monthly_partitions, refresh_window, single_run
from pipelines.defs.resources import ClvConfig, WarehouseResource
from pipelines.domain.clv import BG_NBD_PARAMS, GAMMA_GAMMA_PARAMS
from pipelines.domain.clv_scoring import Fit, holdout_calibration, score_month
from pipelines.engines.base import Column, Filter, Warehouse

SUMMARY = "intermediate.int_clv_summary_by_as_of_month"
CUSTOMER_CLV = "marts.customer_clv"
CUSTOMER_CLV_COLUMNS = [
    Column("period", "date", nullable=False),
    Column("customer_id", "varchar", nullable=False),
    Column("frequency", "integer", nullable=False),
    Column("recency", "integer", nullable=False),
    Column("t", "integer", nullable=False),
    Column("p_alive", "double", nullable=False),
    Column("expected_orders", "double", nullable=False),  # expected purchase days over the horizon
    Column("expected_spend_per_order", "decimal(18, 2)", nullable=False),  # per purchase day
    Column("clv_revenue", "decimal(18, 2)", nullable=False),
    Column("clv_profit", "decimal(18, 2)", nullable=False),
    Column("defection_prone", "boolean", nullable=False),
    Column("profit_t12m", "decimal(18, 2)", nullable=False),
    Column("gross_margin_rate", "double", nullable=False),
    # trailing 12 months' cost-to-serve per purchase day
    Column("cost_to_serve_per_order", "decimal(18, 2)", nullable=False),
]

# Each scored month's fitted parameters: where the next month's fit starts (see the module's docstring).
PARAMETERS = "fits.clv_parameters"
PARAMETER_COLUMNS = [
    Column("period", "date", nullable=False),
    *[Column(f"bg_nbd_{name}", "double", nullable=False) for name in BG_NBD_PARAMS],
    *[Column(f"gamma_gamma_{name}", "double", nullable=False) for name in GAMMA_GAMMA_PARAMS],
]


def _parameter_rows(fits: list[Fit]) -> pd.DataFrame:
    """The fits as rows of PARAMETERS."""
    rows = [
        {
            "period": fit.period,
            **{f"bg_nbd_{k}": v for k, v in fit.bg_nbd.items()},
            **{f"gamma_gamma_{k}": v for k, v in fit.gamma_gamma.items()},
        }
        for fit in fits
    ]
    return pd.DataFrame(rows, columns=[c.name for c in PARAMETER_COLUMNS])


def _stored_fit(wh: Warehouse, first: date | None) -> Fit | None:
    """The stored fit of the summary's month before ``first``, where a run starting at ``first`` warm-starts; None
    (a cold start) for a whole rebuild, before the first month, or when that month was not scored."""
    if first is None:
        return None
    earlier = wh.distinct(SUMMARY, "period", [Filter("period", "<", first)])
    if not earlier:
        return None
    rows = wh.read(PARAMETERS, where=[Filter("period", "=", earlier[-1])])
    if rows.empty:
        return None
    row = rows.iloc[0]
    return Fit(
        earlier[-1],
        {name: float(row[f"bg_nbd_{name}"]) for name in BG_NBD_PARAMS},
        {name: float(row[f"gamma_gamma_{name}"]) for name in GAMMA_GAMMA_PARAMS},
    )


def _summary(wh: Warehouse, period: date) -> pd.DataFrame:
    """One as-of month's per-customer summary (what a fit takes), in customer order."""
    return wh.read(SUMMARY, where=[Filter("period", "=", period)], order_by=["customer_id"])


@asset(
    key=AssetKey(["marts", "customer_clv"]),
    group_name="marts",
    deps=[AssetKey(["intermediate", "int_clv_summary_by_as_of_month"])],
    partitions_def=monthly_partitions,
    backfill_policy=single_run,
    kinds={"duckdb", "python"},
    description="Per as-of month and customer: P(alive), expected orders over the horizon, expected spend per "
    "order, revenue and profit CLV, and whether a customer of high past profit is defection-prone. An order here "
    "is a purchase day (a day with at least one order): expected_orders, expected_spend_per_order and "
    "cost_to_serve_per_order are all per purchase day, the unit BG/NBD counts. Both models are fitted by "
    "maximum likelihood on each month's summary (pipelines/domain/clv.py).",
)
def customer_clv(
    context: AssetExecutionContext, warehouse: WarehouseResource, clv: ClvConfig
) -> MaterializeResult:
    settings = clv.settings()
    scored_months, skipped, rows, fits = [], {}, 0, []
    last_fit = None
    warm_started = 0

    def scored_frames(wh: Warehouse, periods, start: Fit | None):
        # One month in memory at a time: the seam stages each frame before the months replace the mart's.
        nonlocal last_fit, rows, warm_started
        for period in periods:
            month = _summary(wh, period)
            try:
                scored, fit = score_month(month, settings, start)
            except (ValueError, RuntimeError, FloatingPointError) as exc:  # too little data to fit
                skipped[str(period)[:7]] = str(exc).splitlines()[0]
                start = None  # the next month starts cold, as a run starting there would
                continue
            warm_started += start is not None
            start = last_fit = fit
            fits.append(fit)
            scored_months.append(str(period)[:7])
            rows += len(scored)
            yield scored

    rebuilt = refresh_window(context, None, warehouse)  # the run's months and those awaiting publication, on
    with warehouse.session() as wh:
        window = rebuilt.or_everything_if_missing(wh, CUSTOMER_CLV, PARAMETERS)
        periods = wh.distinct(SUMMARY, "period", window.filters())
        start = _stored_fit(wh, window.first)
        wh.replace_periods(CUSTOMER_CLV, CUSTOMER_CLV_COLUMNS, scored_frames(wh, periods, start), window)
        # After the mart: a failure between the two writes fails the run, and rerunning the range rewrites both.
        wh.replace_periods(PARAMETERS, PARAMETER_COLUMNS, [_parameter_rows(fits)] if fits else [], window)
    for month, reason in skipped.items():
        context.log.warning(f"customer_clv: {month} not scored: {reason}")
    metadata = {
        "months_scored": len(scored_months),
        "first_month_scored": scored_months[0] if scored_months else "",
        "dagster/row_count": MetadataValue.int(rows),
        "months_not_scored": MetadataValue.json(skipped),
        "horizon_months": settings.horizon_months,
        "annual_discount_rate": settings.annual_discount_rate,
        "p_alive_threshold": settings.p_alive_threshold,
        # The two fits of every scored month, in seconds (the scoring after them not included).
        "fit_seconds": MetadataValue.float(round(sum((fit.seconds for fit in fits), 0.0), 3)),
        "fits_warm_started": warm_started,
    }
    if last_fit is not None:
        metadata["bg_nbd_last_month"] = MetadataValue.json(
            {k: round(v, 6) for k, v in last_fit.bg_nbd.items()}
        )
        metadata["gamma_gamma_last_month"] = MetadataValue.json(
            {k: round(v, 6) for k, v in last_fit.gamma_gamma.items()}
        )
    return MaterializeResult(metadata=metadata)


@asset_check(
    asset=AssetKey(["marts", "customer_clv"]),
    name="holdout_calibration",
    description="Fit BG/NBD on the summary as of (last month - holdout) and compare predicted with actual repeat "
    "purchases in the holdout window: aggregate ratio and mean absolute error per customer. Warns when the "
    "aggregate ratio is outside 0.8-1.25.",
)
def customer_clv_holdout(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource, clv: ClvConfig
) -> AssetCheckResult:
    settings = clv.settings()
    with warehouse.session() as wh:
        periods = wh.distinct(SUMMARY, "period")
        if len(periods) <= settings.holdout_months:
            return AssetCheckResult(
                passed=True,
                severity=AssetCheckSeverity.WARN,
                description=f"{len(periods)} months of data: too few for a {settings.holdout_months}-month holdout",
            )
        calibration_end, last = periods[-1 - settings.holdout_months], periods[-1]
        calibration, final = _summary(wh, calibration_end), _summary(wh, last)
    report = holdout_calibration(calibration, final)
    ratio = report["aggregate_ratio"]
    return AssetCheckResult(
        passed=bool(0.8 <= ratio <= 1.25),
        severity=AssetCheckSeverity.WARN,
        description=f"calibrated to {str(calibration_end)[:7]}, holdout to {str(last)[:7]}: predicted "
        f"{report['predicted_purchases']} vs actual {report['actual_purchases']} repeat purchases "
        f"(ratio {ratio}), mean absolute error {report['mean_absolute_error']} per customer",
        metadata={**report, "calibration_end": str(calibration_end)[:7], "holdout_end": str(last)[:7]},
    )
