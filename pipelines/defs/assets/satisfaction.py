"""Satisfaction asset: the derived importance of the survey attributes (marts.satisfaction_drivers).

As of each month, attribute weights are derived (Johnson's relative weights, pipelines/domain/satisfaction.py) from
the responses of the trailing 12 months, the window a month's few responses need to be estimated reliably;
performance (mean score) is taken over the same window. The satisfaction of each customer, weighted by these
weights, is the dbt model customer_satisfaction (dbt_project/models/marts/satisfaction), built after this asset
in the same run.

A run for months first..last rebuilds the months whose trailing window it can change, first..last + 11, and
keeps the others.
"""

import pandas as pd
from dagster import AssetExecutionContext, AssetKey, AssetSpec, MaterializeResult, MetadataValue, multi_asset

from pipelines.defs.partitions import monthly_partitions, refresh_window, single_run
from pipelines.defs.resources import Warehouse
from pipelines.domain.satisfaction import ipa_quadrant, relative_weights

DRIVERS = AssetKey(["marts", "satisfaction_drivers"])
STAGING = [AssetKey(["staging", name]) for name in ("stg_survey__responses", "stg_survey__questions")]

DRIVERS_DDL = """
create table if not exists marts.satisfaction_drivers (
    period date not null,
    question_id varchar not null,
    label varchar,
    importance_weight double not null,
    mean_score double not null,
    ipa_quadrant varchar not null,
    responses integer not null,
    r_squared double not null
)
"""


def _stable(*values: float) -> tuple[float, ...]:
    """Estimates rounded to 12 decimals: the linear algebra underneath (BLAS) is not bit-reproducible from run to
    run, and a re-run of the same months must publish the same bytes (equal checksums in marts.publish_log)."""
    return tuple(round(float(value), 12) for value in values)


# Question ids are data: they travel as bound parameters (the window's period, the overall question and the
# attributes) and stay values in a long table (one row per answer), never column names or SQL text.
WINDOW_SQL = """
    select response_id, question_id, score from staging.stg_survey__responses
    where period > $period - interval 12 month and period <= $period and list_contains($questions, question_id)
"""


def _window(con, period, questions: list[str]) -> pd.DataFrame:
    """The complete responses of the trailing 12 months to ``period``: one row per response (in response_id
    order), one column per question of ``questions`` (the overall question, then the attributes)."""
    answers = con.execute(WINDOW_SQL, {"period": period, "questions": questions}).df()
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
def satisfaction(context: AssetExecutionContext, warehouse: Warehouse):
    with warehouse.get_connection() as con:
        rebuilt = refresh_window(context, reach_months=11).or_everything_if_missing(
            con, "marts.satisfaction_drivers"
        )
        where, params = rebuilt.predicate("period")
        questions = con.execute(
            "select question_id, kind, label from staging.stg_survey__questions"
        ).fetchall()
        attributes = sorted(q for q, kind, _ in questions if kind == "attribute")
        overall = next(q for q, kind, _ in questions if kind == "overall")
        labels = {q: label for q, _, label in questions}
        periods = [
            p
            for (p,) in con.execute(
                f"select distinct period from staging.stg_survey__responses where {where} order by 1", params
            ).fetchall()
        ]
        drivers, skipped = [], {}
        for period in periods:  # one trailing window in memory at a time
            window = _window(con, period, [overall, *attributes])
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
                        labels.get(q),
                        *_stable(weight, mean),
                        quadrant,
                        len(window),
                        *_stable(r_squared),
                    )
                )
        frame = pd.DataFrame(
            drivers,
            columns=[
                "period",
                "question_id",
                "label",
                "importance_weight",
                "mean_score",
                "ipa_quadrant",
                "responses",
                "r_squared",
            ],
        )
        con.execute("begin transaction")
        if rebuilt.first is None:
            con.execute("drop table if exists marts.satisfaction_drivers")
        con.execute(DRIVERS_DDL)
        con.execute(f"delete from marts.satisfaction_drivers where {where}", params)
        con.register("drivers_frame", frame)
        con.execute("insert into marts.satisfaction_drivers select * from drivers_frame")
        con.execute("commit")
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
