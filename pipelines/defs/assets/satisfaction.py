"""Satisfaction assets: derived importance of the survey attributes and the satisfaction of each customer.

As of each month, attribute weights are derived (Johnson's relative weights, pipelines/domain/satisfaction.py) from
the responses of the trailing 12 months, the window a month's few responses need to be estimated reliably;
performance (mean score) is taken over the same window. A customer's satisfaction index in a month uses that
month's weights: sum of weight x (mean rating - 1) / 9 x 100 over the attributes answered.

A run for months first..last rebuilds the months whose trailing window it can change, first..last + 11, and
keeps the others.
"""

import pandas as pd
from dagster import AssetExecutionContext, AssetKey, AssetSpec, MaterializeResult, MetadataValue, multi_asset

from pipelines.defs.partitions import monthly_partitions, refresh_window, single_run
from pipelines.defs.resources import WarehouseResource
from pipelines.domain.satisfaction import ipa_quadrant, relative_weights

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


def _stable(*values: float) -> tuple[float, ...]:
    """Estimates rounded to 12 decimals: the linear algebra underneath (BLAS) is not bit-reproducible from run to
    run, and a re-run of the same months must publish the same bytes (equal checksums in marts.publish_log)."""
    return tuple(round(float(value), 12) for value in values)


# Question ids are data: they travel as bound parameters (after the refresh window's: the NPS question, the
# overall question, the list of attributes) and stay values in a long table (one row per answer), never column
# names or SQL text.
CUSTOMER_SATISFACTION_SQL = """
    with answers as (
        select response_id, customer_id, period, question_id, score from staging.stg_survey__responses
        where {where}
    ),
    responses as (
        select
            response_id,
            any_value(customer_id) as customer_id,
            any_value(period) as period,
            max(score) filter (where question_id = ?) as nps_score,
            max(score) filter (where question_id = ?) as overall_score
        from answers
        group by response_id
    ),
    attribute_means as (
        select period, customer_id, question_id, avg(score) as mean_score
        from answers
        where list_contains(?, question_id)
        group by period, customer_id, question_id
    ),
    indexed as (
        -- Summed in question order, one term per answered attribute: the same additions, in the same order, as
        -- a sum over every attribute with 0 for the unanswered ones (adding 0.0 is exact).
        select
            means.period,
            means.customer_id,
            list_reduce(
                list(coalesce(weights.importance_weight * (means.mean_score - 1) / 9, 0) order by means.question_id),
                lambda total, term: total + term
            ) as weighted,
            list_reduce(list(weights.importance_weight order by means.question_id), lambda total, term: total + term)
                as answered
        from attribute_means as means
        left join marts.satisfaction_drivers as weights
            on means.period = weights.period and means.question_id = weights.question_id
        group by means.period, means.customer_id
    )
    select
        s.period,
        s.customer_id,
        any_value(c.segment) as segment,
        cast(count(*) as integer) as responses,
        cast(100.0 * (count(*) filter (where s.nps_score >= 9) - count(*) filter (where s.nps_score <= 6))
            / nullif(count(s.nps_score), 0) as double) as nps,
        cast(100.0 * count(*) filter (where s.overall_score >= 8) / nullif(count(s.overall_score), 0) as double)
            as csat,
        cast(100 * any_value(i.weighted) / nullif(any_value(i.answered), 0) as double) as satisfaction_index
    from responses as s
    left join staging.stg_crm__customers as c on s.customer_id = c.customer_id
    left join indexed as i on s.period = i.period and s.customer_id = i.customer_id
    group by s.period, s.customer_id
"""

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
def satisfaction(context: AssetExecutionContext, warehouse: WarehouseResource):
    # Still DuckDB SQL of its own (to become dbt models, issue 16): the DuckDB session's connection.
    with warehouse.session() as wh:
        con = wh.con
        rebuilt = refresh_window(context, reach_months=11).or_everything_if_missing(
            wh, "marts.satisfaction_drivers", "marts.customer_satisfaction"
        )
        where, params = rebuilt.predicate("period")
        questions = con.execute(
            "select question_id, kind, label from staging.stg_survey__questions"
        ).fetchall()
        attributes = sorted(q for q, kind, _ in questions if kind == "attribute")
        overall = next(q for q, kind, _ in questions if kind == "overall")
        nps = next(q for q, kind, _ in questions if kind == "nps")
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
        customer_rows = CUSTOMER_SATISFACTION_SQL.format(where=where)
        customer_params = [*params, nps, overall, attributes]
        con.execute("begin transaction")
        if rebuilt.first is None:
            con.execute("drop table if exists marts.satisfaction_drivers")
            con.execute("drop table if exists marts.customer_satisfaction")
        con.execute(DRIVERS_DDL)
        con.execute(f"delete from marts.satisfaction_drivers where {where}", params)
        con.register("drivers_frame", frame)
        con.execute("insert into marts.satisfaction_drivers select * from drivers_frame")
        con.execute(
            f"create table if not exists marts.customer_satisfaction as {customer_rows} limit 0",
            customer_params,
        )
        con.execute(f"delete from marts.customer_satisfaction where {where}", params)
        con.execute(f"insert into marts.customer_satisfaction {customer_rows} order by 1, 2", customer_params)
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
