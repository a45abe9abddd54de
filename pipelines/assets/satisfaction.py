"""Satisfaction assets: derived importance of the survey attributes and the satisfaction of each customer.

As of each month, attribute weights are derived (Johnson's relative weights, pipelines/satisfaction.py) from
the responses of the trailing 12 months, the window a month's few responses need to be estimated reliably;
performance (mean score) is taken over the same window. A customer's satisfaction index in a month uses that
month's weights: sum of weight x (mean rating - 1) / 9 x 100 over the attributes answered.

A run for months first..last rebuilds the months whose trailing window it can change, first..last + 11, and
keeps the others.
"""

import pandas as pd
from dagster import AssetExecutionContext, AssetKey, AssetSpec, MaterializeResult, MetadataValue, multi_asset

from pipelines.partitions import monthly_partitions, refresh_window, single_run
from pipelines.resources import Warehouse
from pipelines.satisfaction import ipa_quadrant, relative_weights

DRIVERS = AssetKey(["marts", "satisfaction_drivers"])
CUSTOMERS = AssetKey(["marts", "customer_satisfaction"])
STAGING = [
    AssetKey(["staging", name])
    for name in ("stg_survey__responses", "stg_survey__questions", "stg_crm__customers")
]

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


def _wide_responses_sql(attributes: list[str], overall: str, nps: str) -> str:
    columns = ", ".join(
        f"max(score) filter (where question_id = '{q}') as \"{q}\"" for q in [overall, nps, *attributes]
    )
    return f"""
        create or replace temp table survey_wide as
        select response_id, any_value(customer_id) as customer_id, any_value(period) as period, {columns}
        from staging.stg_survey__responses
        group by response_id
    """


def _stable(*values: float) -> tuple[float, ...]:
    """Estimates rounded to 12 decimals: the linear algebra underneath (BLAS) is not bit-reproducible from run to
    run, and a re-run of the same months must publish the same bytes (equal checksums in marts.publish_log)."""
    return tuple(round(float(value), 12) for value in values)


def _customer_satisfaction_sql(attributes: list[str], overall: str, nps: str, where: str) -> str:
    """The select of customer_satisfaction's rows for the responses of the periods ``where`` admits."""
    weighted = " + ".join(f'coalesce(w."{q}" * (avg(s."{q}") - 1) / 9, 0)' for q in attributes)
    answered = " + ".join(f'case when avg(s."{q}") is not null then w."{q}" else 0 end' for q in attributes)
    return f"""
        select
            s.period,
            s.customer_id,
            any_value(c.segment) as segment,
            cast(count(*) as integer) as responses,
            cast(100.0 * (count(*) filter (where s."{nps}" >= 9) - count(*) filter (where s."{nps}" <= 6))
                / nullif(count(s."{nps}"), 0) as double) as nps,
            cast(100.0 * count(*) filter (where s."{overall}" >= 8) / nullif(count(s."{overall}"), 0) as double)
                as csat,
            cast(100 * ({weighted}) / nullif({answered}, 0) as double) as satisfaction_index
        from survey_wide as s
        left join staging.stg_crm__customers as c on s.customer_id = c.customer_id
        left join weights_wide as w on s.period = w.period
        where {where}
        group by s.period, s.customer_id, {", ".join(f'w."{q}"' for q in attributes)}
    """


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
        AssetSpec(
            CUSTOMERS,
            group_name="marts",
            deps=STAGING,
            kinds={"duckdb", "python"},
            description="Per month and responding customer: responses, NPS, CSAT (% overall >= 8) and the 0-100 "
            "satisfaction index weighted by the month's derived importance.",
        ),
    ],
)
def satisfaction(context: AssetExecutionContext, warehouse: Warehouse):
    with warehouse.get_connection() as con:
        rebuilt = refresh_window(context, reach_months=11).or_everything_if_missing(
            con, "marts.satisfaction_drivers", "marts.customer_satisfaction"
        )
        where, params = rebuilt.predicate("period")
        questions = con.execute(
            "select question_id, kind, label from staging.stg_survey__questions"
        ).fetchall()
        attributes = sorted(q for q, kind, _ in questions if kind == "attribute")
        overall = next(q for q, kind, _ in questions if kind == "overall")
        nps = next(q for q, kind, _ in questions if kind == "nps")
        labels = {q: label for q, _, label in questions}
        con.execute(_wide_responses_sql(attributes, overall, nps))
        periods = [
            p
            for (p,) in con.execute(
                f"select distinct period from survey_wide where {where} order by 1", params
            ).fetchall()
        ]
        drivers, skipped = [], {}
        for period in periods:  # one trailing window in memory at a time
            window = (
                con.execute(
                    f"select {', '.join(f'{chr(34)}{q}{chr(34)}' for q in [overall, *attributes])} from survey_wide "
                    "where period > ? - interval 12 month and period <= ? order by response_id",
                    [period, period],
                )
                .df()
                .dropna()
            )
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
        customer_rows = _customer_satisfaction_sql(attributes, overall, nps, rebuilt.predicate("s.period")[0])
        con.execute("begin transaction")
        if rebuilt.first is None:
            con.execute("drop table if exists marts.satisfaction_drivers")
            con.execute("drop table if exists marts.customer_satisfaction")
        con.execute(DRIVERS_DDL)
        con.execute(f"delete from marts.satisfaction_drivers where {where}", params)
        con.register("drivers_frame", frame)
        con.execute("insert into marts.satisfaction_drivers select * from drivers_frame")
        con.execute(
            "create or replace temp table weights_wide as pivot marts.satisfaction_drivers on question_id "
            f"in ({', '.join(repr(q) for q in attributes)}) using first(importance_weight) group by period"
        )
        con.execute(
            f"create table if not exists marts.customer_satisfaction as {customer_rows} limit 0", params
        )
        con.execute(f"delete from marts.customer_satisfaction where {where}", params)
        con.execute(f"insert into marts.customer_satisfaction {customer_rows} order by 1, 2", params)
        con.execute("commit")
        rows = con.execute("select count(*) from marts.customer_satisfaction").fetchone()[0]
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
    yield MaterializeResult(asset_key=CUSTOMERS, metadata={"dagster/row_count": MetadataValue.int(rows)})
