"""What a scenario's `satisfaction` lever is worth (marts.scenario_customer_value; docs/DESIGN.md, Scenarios):
per scenario, scenario month and customer, the satisfaction index of the trailing 12 months, the retention
probability and the profit CLV, actual and in the scenario.

The lever changes a customer's mean rating of an attribute in a month (its changes composed from the broadest to
the narrowest: the attribute's, then a segment's; each result kept within 1 and 10). The month's index is
recomputed with the month's published importance weights (marts.satisfaction_drivers, unchanged), as
customer_satisfaction computes it; the trailing window's index is the response-weighted mean of the monthly
indices, as the satisfaction-retention link's customers are selected (`customers_of`). The retention
probability is that link's (`retention_probability`) at the latest fitted as-of month, and the scenario's
profit CLV is actual's scaled by the ratio of the two probabilities: the expected future orders of the CLV move
as the probability of staying active does. An association in the data, not a proven cause (DESIGN.md).

Every scenario has a row per scenario month and customer of the link's population (active in the trailing 12
months, with a satisfaction index in them); a customer whose index the scenario does not move has actual's
figures exactly. Rebuilt whole by every run (its figures use the latest fitted as-of month, which a new month
moves), and published with the scenario marts.
"""

from datetime import date

import numpy as np
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
from pipelines.defs.assets.satisfaction_retention import DRIVERS as ACTIVITY
from pipelines.defs.assets.satisfaction_retention import FIT, FIT_TABLE, SATISFACTION, WINDOW, customers_of
from pipelines.defs.assets.transform import SCENARIOS_GROUP
from pipelines.defs.partitions import shift_month, single_run
from pipelines.defs.resources import WarehouseResource
from pipelines.domain.satisfaction_retention import FITTED, RetentionFit, retention_probability
from pipelines.engines.base import Column, CopyRows, Filter, PeriodWindow, Warehouse

VALUE = AssetKey(["marts", "scenario_customer_value"])
VALUE_TABLE = "marts.scenario_customer_value"
CHANGES = "intermediate.int_scenario_changes"
MONTHS = "intermediate.int_scenario_months"
RESPONSES = "staging.stg_survey__responses"
QUESTIONS = "staging.stg_survey__questions"
WEIGHTS = "marts.satisfaction_drivers"
CLV = "marts.customer_clv"
DEPS = [
    AssetKey(["intermediate", "int_scenario_changes"]),
    AssetKey(["intermediate", "int_scenario_months"]),
    AssetKey(["staging", "stg_survey__responses"]),
    AssetKey(["staging", "stg_survey__questions"]),
    AssetKey(["marts", "satisfaction_drivers"]),
    AssetKey(["marts", "customer_satisfaction"]),
    AssetKey(["intermediate", "int_drivers_aggregated_to_customer_month"]),
    AssetKey(["marts", "customer_clv"]),
    FIT,
]
ACTUAL = "actual"
SATISFACTION_LEVER = "satisfaction"
RATING_MIN, RATING_MAX = 1.0, 10.0
VALUE_COLUMNS = [
    Column("scenario", "varchar", nullable=False),
    Column("period", "date", nullable=False),
    Column("customer_id", "varchar", nullable=False),
    Column("segment", "varchar"),
    Column("satisfaction_index_actual", "double", nullable=False),
    Column("satisfaction_index", "double", nullable=False),
    Column("satisfaction_index_change", "double", nullable=False),
    Column("retention_probability_actual", "double"),
    Column("retention_probability", "double"),
    Column("retention_change", "double"),
    Column("clv_profit_actual", "decimal(18, 2)"),
    Column("clv_profit", "decimal(18, 2)"),
    Column("clv_profit_change", "decimal(18, 2)"),
    Column("fit_period", "date"),
]


def _stable(values: np.ndarray) -> np.ndarray:
    """Rounded to 12 decimals, as the link's estimates are: a re-run publishes the same bytes."""
    return np.round(np.asarray(values, dtype=float), 12)


def changed_ratings(means: pd.DataFrame, changes: pd.DataFrame) -> np.ndarray:
    """The mean rating of each row of ``means`` (period, customer_id, segment, question_id, mean_score: one per
    customer, month and attribute) under one scenario's ``changes`` of the `satisfaction` lever (target_name,
    target_scope, scope_kind `all` or `segment`, operation, value, first_period, last_period): the attribute's
    changes first, then a segment's; each result kept within 1 and 10."""
    score = means.mean_score.to_numpy(dtype=float).copy()
    for kind in ("all", "segment"):
        for change in changes[changes.scope_kind == kind].itertuples():
            hit = (
                (means.question_id == change.target_name)
                & (means.period >= pd.Timestamp(change.first_period))
                & (means.period <= pd.Timestamp(change.last_period))
            ).to_numpy()
            if kind == "segment":
                hit = hit & (means.segment == change.target_scope).to_numpy()
            value = float(change.value)
            new = {"set": np.full_like(score, value), "multiply": score * value, "add": score + value}[
                change.operation
            ]
            score[hit] = np.clip(new[hit], RATING_MIN, RATING_MAX)
    return score


def monthly_index(means: pd.DataFrame, score: np.ndarray) -> pd.Series:
    """The satisfaction index of each customer-month of ``means`` (with its month's ``importance_weight`` per
    attribute, NaN where the month has none) at ratings ``score``: 100 x sum of weight x (rating - 1) / 9 over
    the attributes answered / the sum of their weights, as customer_satisfaction computes it."""
    weighted = (means.importance_weight * (score - 1.0) / 9.0).fillna(0.0)
    frame = pd.DataFrame(
        {
            "period": means.period,
            "customer_id": means.customer_id,
            "weighted": weighted,
            "w": means.importance_weight,
        }
    )
    sums = frame.groupby(["period", "customer_id"]).agg(weighted=("weighted", "sum"), answered=("w", "sum"))
    return 100.0 * sums.weighted / sums.answered.where(sums.answered != 0)


def scenario_satisfaction(
    satisfaction: pd.DataFrame, means: pd.DataFrame, changes: pd.DataFrame
) -> pd.DataFrame:
    """``satisfaction`` (customer_satisfaction's period, customer_id, segment, responses, satisfaction_index)
    with the index of every customer-month whose ratings ``changes`` move replaced by the index at the new
    ratings: actual's index plus the difference the new ratings make, so a customer-month the changes do not
    move keeps actual's index exactly."""
    score = changed_ratings(means, changes)
    moved = score != means.mean_score.to_numpy(dtype=float)
    if not moved.any():
        return satisfaction
    keys = pd.MultiIndex.from_frame(means[["period", "customer_id"]])
    rows = keys.isin(keys[moved].unique())
    touched = means[rows]
    delta = monthly_index(touched, score[rows]) - monthly_index(
        touched, touched.mean_score.to_numpy(dtype=float)
    )
    keyed = satisfaction.set_index(["period", "customer_id"])
    index = keyed.satisfaction_index.copy()
    found = delta.index.intersection(index.index)
    index.loc[found] = index.loc[found] + delta.loc[found]
    return keyed.assign(satisfaction_index=index).reset_index()[satisfaction.columns]


def latest_fit(fits: pd.DataFrame) -> tuple[date | None, RetentionFit | None]:
    """The fit scenarios use, from the rows of marts.satisfaction_retention_fit: the latest fitted as-of month
    whose trailing window is complete, else the latest fitted; (None, None) when no month is fitted."""
    fitted = fits[fits.fit_status == FITTED]
    if fitted.empty:
        return None, None
    complete = fitted[fitted.window_complete.astype(bool)]
    chosen = complete if not complete.empty else fitted
    period = max(chosen.period)
    return pd.Timestamp(period).date(), RetentionFit.from_published(chosen[chosen.period == period])


def _probability(fit: RetentionFit | None, index: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """The link's P(active in the next 12 months) per customer; NaN without a fit or for a segment it does not
    know (it had no customer of it)."""
    out = np.full(len(index), np.nan)
    if fit is None:
        return out
    known = np.isin(segment, list(fit.segments))
    if known.any():
        out[known] = retention_probability(fit, index[known], segment[known])
    return out


def _cents(amount: np.ndarray) -> np.ndarray:
    """Money in cents, rounded half away from zero (NaN stays NaN)."""
    return np.sign(amount) * np.floor(np.abs(amount) * 100.0 + 0.5)


def value_rows(
    scenario: str,
    period: date,
    actual: pd.DataFrame,
    moved: pd.DataFrame,
    clv: pd.Series,
    fit_period: date | None,
    fit: RetentionFit | None,
) -> pd.DataFrame:
    """One scenario month's rows: ``actual`` and ``moved`` are the link's customers of the month (customers_of)
    under actual's and the scenario's indices, in the same order; ``clv`` the month's clv_profit by customer."""
    index_a = actual["index"].to_numpy(dtype=float)
    index_s = moved["index"].to_numpy(dtype=float)
    segment = actual.segment.to_numpy(dtype=object)
    p_a = _probability(fit, index_a, segment)
    changed = index_s != index_a
    p_s = np.where(changed, _probability(fit, index_s, segment), p_a)
    clv_a = clv.reindex(actual.customer_id).to_numpy(dtype=float)
    cents_a = np.rint(clv_a * 100.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cents_s = np.where(changed, _cents(clv_a * p_s / p_a), cents_a)
    return pd.DataFrame(
        {
            "scenario": scenario,
            "period": period,
            "customer_id": actual.customer_id.to_numpy(),
            "segment": segment,
            "satisfaction_index_actual": _stable(index_a),
            "satisfaction_index": _stable(index_s),
            "satisfaction_index_change": _stable(index_s - index_a),
            "retention_probability_actual": _stable(p_a),
            "retention_probability": _stable(p_s),
            "retention_change": _stable(p_s - p_a),
            "clv_profit_actual": cents_a / 100.0,
            "clv_profit": cents_s / 100.0,
            "clv_profit_change": (cents_s - cents_a) / 100.0,
            "fit_period": fit_period,
        },
        columns=[c.name for c in VALUE_COLUMNS],
    )


def _attribute_means(wh: Warehouse, first: date, last: date, satisfaction: pd.DataFrame) -> pd.DataFrame:
    """Each customer's mean rating of each attribute per month from ``first`` to ``last``, with the customer's
    segment and the month's importance weight of the attribute (NaN where the month has none)."""
    attributes = wh.read(QUESTIONS, ["question_id"], [Filter("kind", "=", "attribute")]).question_id.tolist()
    answers = wh.read(
        RESPONSES,
        ["period", "customer_id", "question_id", "score"],
        [
            Filter("period", ">=", first),
            Filter("period", "<=", last),
            Filter("question_id", "in", attributes),
        ],
    )
    answers["period"] = pd.to_datetime(answers["period"])
    means = (
        answers.groupby(["period", "customer_id", "question_id"], as_index=False)
        .score.mean()
        .rename(columns={"score": "mean_score"})
    )
    weights = wh.read(
        WEIGHTS,
        ["period", "question_id", "importance_weight"],
        [Filter("period", ">=", first), Filter("period", "<=", last)],
    )
    weights["period"] = pd.to_datetime(weights["period"])
    segments = satisfaction[["period", "customer_id", "segment"]]
    means = means.merge(segments, on=["period", "customer_id"], how="left")
    means = means.merge(weights, on=["period", "question_id"], how="left")
    return means.sort_values(["period", "customer_id", "question_id"], ignore_index=True)


def scenario_value(monthly: PartitionsDefinition, engine: str = DEFAULT_ENGINE) -> AssetsDefinition:
    """marts/scenario_customer_value, on ``monthly`` (a multi-asset of one: its step is `scenario_value`, after
    the satisfaction-retention link), in the scenarios group: rebuilt whole by every run (the dbt scenario marts
    are refreshed by month: docs/DESIGN.md, Scenarios)."""

    @multi_asset(
        partitions_def=monthly,
        backfill_policy=single_run,
        name="scenario_value",
        specs=[
            AssetSpec(
                VALUE,
                group_name=SCENARIOS_GROUP,
                deps=DEPS,
                kinds=warehouse_kinds(engine, "python"),
                description="Per scenario, scenario month and customer: the satisfaction index of the trailing "
                "12 months, the retention probability (the satisfaction-retention link) and the profit CLV, "
                "actual and in the scenario: what a satisfaction lever is worth. An association, not a cause.",
            ),
        ],
    )
    def _scenario_value(context: AssetExecutionContext, warehouse: WarehouseResource):
        frames, said, changes = [], [], pd.DataFrame(columns=["scenario"])
        with warehouse.session() as wh:
            months = wh.read(MONTHS, ["scenario", "period"])
            months["period"] = pd.to_datetime(months["period"])
            periods = sorted(set(months.period))
            scenarios = sorted(set(months.scenario), key=lambda s: (s != ACTUAL, s))
            fit_period, fit = latest_fit(wh.read(FIT_TABLE)) if wh.exists(FIT_TABLE) else (None, None)
            if periods:
                first, last = periods[0].date(), periods[-1].date()
                start = shift_month(first, 1 - WINDOW)
                satisfaction = wh.read(
                    SATISFACTION,
                    ["period", "customer_id", "segment", "responses", "satisfaction_index"],
                    [Filter("period", ">=", start), Filter("period", "<=", last)],
                    order_by=["period", "customer_id"],
                )
                active = wh.read(
                    ACTIVITY,
                    ["customer_id", "period"],
                    [
                        Filter("period", ">=", start),
                        Filter("period", "<=", last),
                        Filter("driver", "=", "orders"),
                    ],
                ).drop_duplicates()
                for frame in (satisfaction, active):
                    frame["period"] = pd.to_datetime(frame["period"])
                clv = wh.read(
                    CLV,
                    ["period", "customer_id", "clv_profit"],
                    [Filter("period", ">=", first), Filter("period", "<=", last)],
                )
                clv["period"] = pd.to_datetime(clv["period"])
                clv["clv_profit"] = clv.clv_profit.astype(float)
                changes = wh.read(
                    CHANGES,
                    [
                        "scenario",
                        "target_name",
                        "target_scope",
                        "scope_kind",
                        "operation",
                        "value",
                        "first_period",
                        "last_period",
                    ],
                    [Filter("lever", "=", SATISFACTION_LEVER)],
                )
                means = _attribute_means(wh, first, last, satisfaction) if len(changes) else None
                if len(changes) and fit is None:
                    said.append(
                        "no fitted satisfaction-retention link: the satisfaction lever moves the index; retention "
                        "and profit CLV of the customers it moves are not computed (NULL)"
                    )
                of_actual = {p: customers_of(satisfaction, active, p.date()) for p in periods}
                clv_of = {p: clv[clv.period == p].set_index("customer_id").clv_profit for p in periods}
                # actual's rows, once: a scenario without satisfaction changes has them under its own name
                unmoved = {
                    p: value_rows(ACTUAL, p.date(), of_actual[p], of_actual[p], clv_of[p], fit_period, fit)
                    for p in periods
                }
                for scenario in scenarios:
                    own = changes[changes.scenario == scenario]
                    if own.empty and scenario != ACTUAL and ACTUAL in scenarios:
                        # actual's rows (staged first) under the scenario's name, copied by the engine
                        frames.append(CopyRows("scenario", ACTUAL, scenario))
                        continue
                    if own.empty:
                        frames += [unmoved[p].assign(scenario=scenario) for p in periods]
                        continue
                    moved = scenario_satisfaction(satisfaction, means, own)
                    for p in periods:
                        of_scenario = customers_of(moved, active, p.date())
                        frames.append(
                            value_rows(
                                scenario, p.date(), of_actual[p], of_scenario, clv_of[p], fit_period, fit
                            )
                        )
            rows = wh.replace_periods(VALUE_TABLE, VALUE_COLUMNS, frames, PeriodWindow())
        for note in said:
            context.log.warning(f"scenario_customer_value: {note}")
        add_row_counts(context, warehouse, [VALUE])
        yield MaterializeResult(
            asset_key=VALUE,
            metadata={
                "rows": MetadataValue.int(rows),
                "fit_period": f"{fit_period:%Y-%m}" if fit_period else None,
                "scenarios_with_satisfaction_changes": MetadataValue.json(sorted(set(changes.scenario))),
                NOTES: MetadataValue.json(said),
            },
        )

    return _scenario_value
