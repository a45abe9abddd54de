"""CLV assets: customer_clv (BG/NBD and Gamma-Gamma, in revenue and in profit), clv_fits (each as-of month's
models: parameters, likelihoods, whether they were fitted and why not) and the holdout check.

customer_clv is fitted per as-of month. Its transaction ("order" in its column names) is the purchase day, a day
with at least one order: what BG/NBD counts, what Gamma-Gamma's spend is per, and what cost-to-serve is divided by
(see pipelines/domain/clv_scoring.py). A run rescores the as-of months its range can change: every month from
the range's first on, since a month's purchases enter every later summary; earlier months are kept.

Each month's models are fitted from the same fixed starts, keeping the best likelihood (pipelines/domain/clv.py), so
a month's figures are a function of its summary alone: the same in a full build, one month at a time or a backfill
backwards. No month is skipped: a month whose models cannot be fitted or are not identified is published with its
customers, ``fit_status`` not_fitted and the model columns NULL, and clv_fits says why.
"""

import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    asset_check,
    multi_asset,
)

from pipelines.defs.assets import NOTES
from pipelines.defs.assets.kinds import DEFAULT_ENGINE, warehouse_kinds
from pipelines.defs.assets.row_counts import add_row_counts
from pipelines.defs.partitions import RefreshWindow, refresh_window, single_run
from pipelines.defs.resources import ClvConfig, WarehouseResource
from pipelines.domain.clv import BG_NBD_PARAMS, GAMMA_GAMMA_PARAMS, NotIdentified
from pipelines.domain.clv_scoring import FITTED, Fit, holdout_calibration, score_month
from pipelines.engines.base import Column, Filter, Warehouse

SUMMARY = "intermediate.int_clv_summary_by_as_of_month"
CUSTOMER_CLV = "marts.customer_clv"
CUSTOMER_CLV_COLUMNS = [
    Column("period", "date", nullable=False),
    Column("customer_id", "varchar", nullable=False),
    Column("frequency", "integer", nullable=False),
    Column("recency", "integer", nullable=False),
    Column("t", "integer", nullable=False),
    # the model columns: NULL in a month whose models were not fitted (fit_status)
    Column("p_alive", "double"),
    Column("expected_orders", "double"),  # expected purchase days over the horizon
    Column("expected_spend_per_order", "decimal(18, 2)"),  # per purchase day
    Column("clv_revenue", "decimal(18, 2)"),
    Column("clv_profit", "decimal(18, 2)"),
    Column("defection_prone", "boolean"),
    Column("profit_t12m", "decimal(18, 2)", nullable=False),
    Column("gross_margin_rate", "double", nullable=False),
    # trailing 12 months' cost-to-serve per purchase day
    Column("cost_to_serve_per_order", "decimal(18, 2)", nullable=False),
    Column("fit_status", "varchar", nullable=False),
]

# Each as-of month's models, fitted or not (see the module's docstring).
CLV_FITS = "marts.clv_fits"
CLV_FITS_COLUMNS = [
    Column("period", "date", nullable=False),
    Column("fit_status", "varchar", nullable=False),
    Column("reason", "varchar"),
    Column("customers", "integer", nullable=False),
    Column("repeat_customers", "integer", nullable=False),
    *[Column(f"bg_nbd_{name}", "double") for name in BG_NBD_PARAMS],
    Column("bg_nbd_log_likelihood", "double"),
    *[Column(f"gamma_gamma_{name}", "double") for name in GAMMA_GAMMA_PARAMS],
    Column("gamma_gamma_log_likelihood", "double"),
    Column("population_mean_spend", "decimal(18, 2)"),
    Column("population_mean_rule", "varchar"),
]


def _fit_rows(fits: list[Fit]) -> pd.DataFrame:
    """The fits as rows of CLV_FITS (a model not fitted: its parameters NULL)."""
    rows = [
        {
            "period": fit.period,
            "fit_status": fit.status,
            "reason": fit.reason or None,
            "customers": fit.customers,
            "repeat_customers": fit.repeat_customers,
            **{f"bg_nbd_{k}": (fit.bg_nbd or {}).get(k) for k in BG_NBD_PARAMS},
            "bg_nbd_log_likelihood": fit.bg_nbd_log_likelihood,
            **{f"gamma_gamma_{k}": (fit.gamma_gamma or {}).get(k) for k in GAMMA_GAMMA_PARAMS},
            "gamma_gamma_log_likelihood": fit.gamma_gamma_log_likelihood,
            "population_mean_spend": fit.population_mean_spend,
            "population_mean_rule": fit.population_mean_rule,
        }
        for fit in fits
    ]
    return pd.DataFrame(rows, columns=[c.name for c in CLV_FITS_COLUMNS])


def _summary(wh: Warehouse, period) -> pd.DataFrame:
    """One as-of month's per-customer summary (what a fit takes), in customer order."""
    return wh.read(SUMMARY, where=[Filter("period", "=", period)], order_by=["customer_id"])


def _declared(wh: Warehouse, table: str, columns: list[Column]) -> bool:
    """Whether ``table`` exists with exactly ``columns`` (a table written by an earlier version is rebuilt whole)."""
    return wh.columns(table) == [c.name for c in columns]


def customer_clv(monthly: PartitionsDefinition, engine: str = DEFAULT_ENGINE) -> AssetsDefinition:
    """marts/customer_clv and marts/clv_fits, on ``monthly`` (a multi-asset: its step is `customer_clv`)."""

    @multi_asset(
        specs=[
            AssetSpec(
                AssetKey(["marts", "customer_clv"]),
                group_name="marts",
                deps=[AssetKey(["intermediate", "int_clv_summary_by_as_of_month"])],
                kinds=warehouse_kinds(engine, "python"),
                description="Per as-of month and customer: P(alive), expected orders over the horizon, "
                "expected spend per order, revenue and profit CLV, and whether a customer of high past profit is "
                "defection-prone. An order here is a purchase day (a day with at least one order): "
                "expected_orders, expected_spend_per_order and cost_to_serve_per_order are all per purchase day, "
                "the unit BG/NBD counts. Both models are fitted by maximum likelihood on each month's summary "
                "(pipelines/domain/clv.py); a month whose models are not identified has fit_status not_fitted "
                "and its model columns NULL (see marts/clv_fits).",
            ),
            AssetSpec(
                AssetKey(["marts", "clv_fits"]),
                group_name="marts",
                deps=[AssetKey(["intermediate", "int_clv_summary_by_as_of_month"])],
                kinds=warehouse_kinds(engine, "python"),
                description="Per as-of month: the BG/NBD and Gamma-Gamma fits behind customer_clv (parameters, "
                "log-likelihoods, the population mean spend and its rule), or not_fitted and why.",
            ),
        ],
        partitions_def=monthly,
        backfill_policy=single_run,
        name="customer_clv",
    )
    def _customer_clv(context: AssetExecutionContext, warehouse: WarehouseResource, clv: ClvConfig):
        settings = clv.settings()
        fits: list[Fit] = []
        rows = 0

        def scored_frames(wh: Warehouse, periods):
            # One month in memory at a time: the seam stages each frame before the months replace the mart's.
            nonlocal rows
            for period in periods:
                scored, fit = score_month(_summary(wh, period), settings)
                fits.append(fit)
                rows += len(scored)
                yield scored

        # From the first of the run's months and those awaiting publication onwards (every later summary holds them).
        rebuilt = refresh_window(context, None, warehouse)
        with warehouse.session() as wh:
            # a table missing, or written by an earlier version with other columns, is rebuilt whole
            declared = _declared(wh, CUSTOMER_CLV, CUSTOMER_CLV_COLUMNS) and _declared(
                wh, CLV_FITS, CLV_FITS_COLUMNS
            )
            window = rebuilt if declared else RefreshWindow(None, None)
            periods = wh.distinct(SUMMARY, "period", window.filters())
            wh.replace_periods(CUSTOMER_CLV, CUSTOMER_CLV_COLUMNS, scored_frames(wh, periods), window)
            # After the mart: a failure between the two writes fails the run, and rerunning the range rewrites both.
            wh.replace_periods(CLV_FITS, CLV_FITS_COLUMNS, [_fit_rows(fits)] if fits else [], window)
        not_fitted = {str(fit.period)[:7]: fit.reason for fit in fits if fit.status != FITTED}
        said = [
            f"{month} published without model figures (fit_status not_fitted; its CLV metrics are not scored): "
            f"{reason}"
            for month, reason in not_fitted.items()
        ]
        for note in said:
            context.log.warning(f"customer_clv: {note}")
        fitted = [fit for fit in fits if fit.status == FITTED]
        metadata = {
            "months_scored": len(fits),
            "months_fitted": len(fitted),
            "first_month_scored": str(fits[0].period)[:7] if fits else "",
            "months_not_fitted": MetadataValue.json(not_fitted),
            NOTES: MetadataValue.json(said),
            "horizon_months": settings.horizon_months,
            "annual_discount_rate": settings.annual_discount_rate,
            "p_alive_threshold": settings.p_alive_threshold,
            # The two fits of every month, in seconds (the scoring after them not included).
            "fit_seconds": MetadataValue.float(round(sum((fit.seconds for fit in fits), 0.0), 3)),
        }
        if fitted:
            metadata["bg_nbd_last_month"] = MetadataValue.json(
                {k: round(v, 6) for k, v in fitted[-1].bg_nbd.items()}
            )
            metadata["gamma_gamma_last_month"] = MetadataValue.json(
                {k: round(v, 6) for k, v in fitted[-1].gamma_gamma.items()}
            )
        # Rows per month of the run (the months before it, rebuilt or not, are not this run's partitions).
        add_row_counts(
            context, warehouse, [AssetKey(["marts", "customer_clv"]), AssetKey(["marts", "clv_fits"])]
        )
        yield MaterializeResult(asset_key=AssetKey(["marts", "customer_clv"]), metadata=metadata)
        yield MaterializeResult(
            asset_key=AssetKey(["marts", "clv_fits"]), metadata={"months_not_fitted": len(not_fitted)}
        )

    return _customer_clv


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
    try:
        report = holdout_calibration(calibration, final)
    except (ValueError, NotIdentified) as exc:
        return AssetCheckResult(
            passed=True,
            severity=AssetCheckSeverity.WARN,
            description=f"calibrated to {str(calibration_end)[:7]}: BG/NBD not fitted, no holdout comparison: "
            f"{str(exc).splitlines()[0]}",
        )
    ratio = report["aggregate_ratio"]
    return AssetCheckResult(
        passed=bool(0.8 <= ratio <= 1.25),
        severity=AssetCheckSeverity.WARN,
        description=f"calibrated to {str(calibration_end)[:7]}, holdout to {str(last)[:7]}: predicted "
        f"{report['predicted_purchases']} vs actual {report['actual_purchases']} repeat purchases "
        f"(ratio {ratio}), mean absolute error {report['mean_absolute_error']} per customer",
        metadata={**report, "calibration_end": str(calibration_end)[:7], "holdout_end": str(last)[:7]},
    )
