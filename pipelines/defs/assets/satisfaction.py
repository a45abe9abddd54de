"""Satisfaction asset: the derived importance of the survey attributes (marts.satisfaction_drivers).

As of each month, attribute weights are derived (Johnson's relative weights, pipelines/domain/satisfaction.py) from
the responses of the trailing 12 months, the window a month's few responses need to be estimated reliably;
performance (mean score) is taken over the same window. The satisfaction of each customer, weighted by these
weights, is the dbt model customer_satisfaction (dbt_project/models/marts/satisfaction), built after this asset
in the same run.

A run for months first..last rebuilds the months whose trailing window it can change, first..last + 11, and
keeps the others.
"""

from datetime import date

import pandas as pd
from dagster import AssetExecutionContext, AssetKey, AssetSpec, MaterializeResult, MetadataValue, multi_asset

from pipelines.defs.partitions import monthly_partitions, refresh_window, shift_month, single_run
from pipelines.defs.resources import WarehouseResource
from pipelines.domain.satisfaction import ipa_quadrant, relative_weights
from pipelines.engines.base import Column, Filter, Warehouse

DRIVERS = AssetKey(["marts", "satisfaction_drivers"])
STAGING = [AssetKey(["staging", name]) for name in ("stg_survey__responses", "stg_survey__questions")]

DRIVERS_TABLE = "marts.satisfaction_drivers"
DRIVERS_COLUMNS = [
    Column("period", "date", nullable=False),
    Column("question_id", "varchar", nullable=False),
    Column("label", "varchar"),
    Column("importance_weight", "double", nullable=False),
    Column("mean_score", "double", nullable=False),
    Column("ipa_quadrant", "varchar", nullable=False),
    Column("responses", "integer", nullable=False),
    Column("r_squared", "double", nullable=False),
]
RESPONSES = "staging.stg_survey__responses"


def _stable(*values: float) -> tuple[float, ...]:
    """Estimates rounded to 12 decimals: the linear algebra underneath (BLAS) is not bit-reproducible from run to
    run, and a re-run of the same months must publish the same bytes (equal checksums in marts.publish_log)."""
    return tuple(round(float(value), 12) for value in values)


def _window(wh: Warehouse, period: date, questions: list[str]) -> pd.DataFrame:
    """The complete responses of the trailing 12 months to ``period``: one row per response (in response_id
    order), one column per question of ``questions`` (the overall question, then the attributes). Question ids
    are data: bound filter values, never column names or SQL text; the engine selects the window, only the
    answers the fit needs come to Python."""
    answers = wh.read(
        RESPONSES,
        ["response_id", "question_id", "score"],
        [
            Filter("period", ">=", shift_month(period, -11)),
            Filter("period", "<=", period),
            Filter("question_id", "in", questions),
        ],
    )
    wide = answers.pivot(index="response_id", columns="question_id", values="score")
    return wide.sort_index().reindex(columns=questions).astype(float).dropna()


# A multi-asset of one asset: its step is named `satisfaction` (the phase of a run in pipelines/run.py).
@multi_asset(
    partitions_def=monthly_partitions,
    backfill_policy=single_run,
    specs=[
        AssetSpec(
            DRIVERS,
            group_name="marts",
            deps=STAGING,
            kinds={"duckdb", "python"},
            description="Per month and survey attribute: derived importance (relative weights over the trailing "
            "12 months, summing to 1), mean score over the same window, and the importance-performance quadrant.",
        ),
    ],
)
def satisfaction(context: AssetExecutionContext, warehouse: WarehouseResource):
    with warehouse.session() as wh:
        rebuilt = refresh_window(context, reach_months=11).or_everything_if_missing(wh, DRIVERS_TABLE)
        questions = list(
            wh.read("staging.stg_survey__questions", ["question_id", "kind", "label"]).itertuples(index=False)
        )
        attributes = sorted(q for q, kind, _ in questions if kind == "attribute")
        overall = next(q for q, kind, _ in questions if kind == "overall")
        labels = {q: label for q, _, label in questions}
        periods = wh.distinct(RESPONSES, "period", rebuilt.filters())
        drivers, skipped = [], {}
        for period in periods:  # one trailing window in memory at a time
            window = _window(wh, period, [overall, *attributes])
            try:
                weights, r_squared = relative_weights(
                    window[attributes].to_numpy(), window[overall].to_numpy()
                )
            except ValueError as exc:
                skipped[str(period)[:7]] = str(exc)
                continue
            means = window[attributes].mean().to_numpy()
            for q, weight, mean, quadrant in zip(
                attributes, weights, means, ipa_quadrant(weights, means), strict=True
            ):
                drivers.append(
                    (
                        period,
                        q,
                        None if pd.isna(labels.get(q)) else labels.get(q),
                        *_stable(weight, mean),
                        quadrant,
                        len(window),
                        *_stable(r_squared),
                    )
                )
        frame = pd.DataFrame(drivers, columns=[c.name for c in DRIVERS_COLUMNS])
        wh.replace_periods(DRIVERS_TABLE, DRIVERS_COLUMNS, [frame], rebuilt)
    for month, reason in skipped.items():
        context.log.warning(f"satisfaction_drivers: {month} not derived: {reason}")
    latest = frame[frame.period == frame.period.max()] if len(frame) else frame
    yield MaterializeResult(
        asset_key=DRIVERS,
        metadata={
            "dagster/row_count": MetadataValue.int(len(frame)),
            "months_not_derived": MetadataValue.json(skipped),
            "latest_weights": MetadataValue.json(
                {r.question_id: round(r.importance_weight, 4) for r in latest.itertuples()}
            ),
        },
    )
