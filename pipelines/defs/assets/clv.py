"""CLV assets: customer_clv (BG/NBD and Gamma-Gamma, in revenue and in profit) and its holdout check.

customer_clv is fitted per as-of month. Its transaction ("order" in its column names) is the purchase day, a day
with at least one order: what BG/NBD counts, what Gamma-Gamma's spend is per, and what cost-to-serve is divided by
(see pipelines/domain/clv_scoring.py). A run rescores the as-of months its range can change: every month from
the range's first on, since a month's purchases enter every later summary; earlier months are kept.
"""

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
from pipelines.defs.resources import ClvConfig, Warehouse
from pipelines.domain.clv_scoring import holdout_calibration, score_month

SUMMARY = "intermediate.int_clv_summary_by_as_of_month"
SCORING = "scratch.customer_clv_scoring"  # months scored by this run, before they replace the mart's
CUSTOMER_CLV_DDL = """
create table if not exists marts.customer_clv (
    period date not null,
    customer_id varchar not null,
    frequency integer not null,
    recency integer not null,
    t integer not null,
    p_alive double not null,
    expected_orders double not null,  -- expected purchase days (days with orders) over the horizon
    expected_spend_per_order decimal(18, 2) not null,  -- per purchase day
    clv_revenue decimal(18, 2) not null,
    clv_profit decimal(18, 2) not null,
    defection_prone boolean not null,
    profit_t12m decimal(18, 2) not null,
    gross_margin_rate double not null,
    cost_to_serve_per_order decimal(18, 2) not null  -- trailing 12 months' cost-to-serve per purchase day
)
"""


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
def customer_clv(context: AssetExecutionContext, warehouse: Warehouse, clv: ClvConfig) -> MaterializeResult:
    settings = clv.settings()
    scored_months, skipped, last_fit, rows = [], {}, None, 0
    with warehouse.get_connection() as con:
        window = refresh_window(context, reach_months=None).or_everything_if_missing(
            con, "marts.customer_clv"
        )
        where, params = window.predicate()
        periods = [
            p
            for (p,) in con.execute(
                f"select distinct period from {SUMMARY} where {where} order by period", params
            ).fetchall()
        ]
        # Months are scored into a scratch table, one month in memory and one transaction at a time, then
        # swapped in with one transaction: scoring every month inside that transaction held them all
        # uncommitted in memory (9.6 GB of the process at 100M lines).
        con.execute("create schema if not exists scratch")
        con.execute(f"drop table if exists {SCORING}")
        con.execute(CUSTOMER_CLV_DDL.replace("marts.customer_clv", SCORING))
        for period in periods:
            month = con.execute(
                f"select * from {SUMMARY} where period = ? order by customer_id", [period]
            ).df()
            try:
                scored, last_fit = score_month(month, settings)
            except (ValueError, RuntimeError, FloatingPointError) as exc:  # too little data to fit
                skipped[str(period)[:7]] = str(exc).splitlines()[0]
                continue
            con.register("scored", scored)
            con.execute(f"insert into {SCORING} select * from scored")
            con.unregister("scored")
            scored_months.append(str(period)[:7])
            rows += len(scored)
        con.execute("begin transaction")
        if window.first is None:
            con.execute("drop table if exists marts.customer_clv")
        con.execute(CUSTOMER_CLV_DDL)
        con.execute(f"delete from marts.customer_clv where {where}", params)
        con.execute(f"insert into marts.customer_clv select * from {SCORING}")
        con.execute(f"drop table {SCORING}")
        con.execute("commit")
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
    context: AssetCheckExecutionContext, warehouse: Warehouse, clv: ClvConfig
) -> AssetCheckResult:
    settings = clv.settings()
    with warehouse.get_connection() as con:
        periods = [
            p for (p,) in con.execute(f"select distinct period from {SUMMARY} order by period").fetchall()
        ]
        if len(periods) <= settings.holdout_months:
            return AssetCheckResult(
                passed=True,
                severity=AssetCheckSeverity.WARN,
                description=f"{len(periods)} months of data: too few for a {settings.holdout_months}-month holdout",
            )
        calibration_end, last = periods[-1 - settings.holdout_months], periods[-1]
        calibration = con.execute(f"select * from {SUMMARY} where period = ?", [calibration_end]).df()
        final = con.execute(f"select * from {SUMMARY} where period = ?", [last]).df()
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
