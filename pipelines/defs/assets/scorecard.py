"""The customer balanced scorecard (Kaplan & Norton, customer perspective), per month and segment ('all' too).

Metrics: customer profit (trailing 12 months), share of unprofitable customers, share of revenue from them
(both on trailing-12-month ABC profit), retention rate, new customers, NPS and satisfaction index (trailing
12 months of responses), mean profit CLV. Each row has its target from the configuration (the segment's own,
else, for rates and averages, the company's), the variance, a status (green meets the target, amber within
tolerance, red otherwise, honouring whether higher or lower is better), the trend against the prior month and
the owner. Variance, status and trend are computed from the actual and target as published (4 decimal places),
so they agree with the numbers a reader sees. incentive_attainment sums, per owner and month, the incentive
weights of the owner's company-wide (segment 'all') metrics on target, out of all of them.

Every metric of a month depends on history before it (trailing windows, CLV), so a run rebuilds the months
from its first month on and keeps the earlier ones.
"""

from dagster import AssetExecutionContext, AssetKey, AssetSpec, MaterializeResult, MetadataValue, multi_asset

from pipelines.defs.partitions import monthly_partitions, refresh_window, single_run
from pipelines.defs.resources import WarehouseResource

SCORECARD = AssetKey(["marts", "customer_scorecard"])
ATTAINMENT = AssetKey(["marts", "incentive_attainment"])
UPSTREAM = [
    AssetKey(["marts", name])
    for name in ("customer_profitability", "customer_retention", "customer_satisfaction", "customer_clv")
] + [AssetKey(["staging", name]) for name in ("stg_config__scorecard_targets", "stg_survey__responses")]

# Metrics that are rates or averages: a segment without its own target is held to the company's.
INTENSIVE = (
    "pct_unprofitable_customers",
    "unprofitable_revenue_share",
    "retention_rate",
    "nps",
    "satisfaction_index",
    "mean_profit_clv",
)

# The scorecard rows of the periods from $first::date on (all when $first::date is null); the month before is computed too,
# for the trend, and dropped.
SCORECARD_SQL = f"""
with periods as (
    select distinct period from marts.customer_profitability
    where $first::date is null or period >= $first::date - interval 1 month
),

customer_t12m as (
    select
        periods.period,
        profitability.customer_id,
        any_value(profitability.segment) as segment,
        sum(profitability.abc_profit) as profit,
        sum(profitability.net_revenue) as revenue
    from periods
    inner join marts.customer_profitability as profitability
        on profitability.period > periods.period - interval 12 month and profitability.period <= periods.period
    group by periods.period, profitability.customer_id
),

profit_metrics as (
    select
        period,
        coalesce(segment, 'all') as segment,
        sum(profit) as customer_profit_t12m,
        avg(case when profit < 0 then 1.0 else 0.0 end) as pct_unprofitable_customers,
        sum(revenue) filter (where profit < 0) / nullif(sum(revenue), 0) as unprofitable_revenue_share
    from customer_t12m
    group by grouping sets ((period, segment), (period))
),

nps_answers as (
    select answers.period, answers.customer_id, answers.score
    from staging.stg_survey__responses as answers
    inner join staging.stg_survey__questions as questions on answers.question_id = questions.question_id
    where questions.kind = 'nps'
),

nps_metrics as (
    select
        periods.period,
        coalesce(customers.segment, 'all') as segment,
        100.0 * (count(*) filter (where nps_answers.score >= 9) - count(*) filter (where nps_answers.score <= 6))
            / count(*) as nps
    from periods
    inner join nps_answers
        on nps_answers.period > periods.period - interval 12 month and nps_answers.period <= periods.period
    inner join staging.stg_crm__customers as customers on nps_answers.customer_id = customers.customer_id
    group by grouping sets ((periods.period, customers.segment), (periods.period))
),

index_metrics as (
    select
        periods.period,
        coalesce(satisfaction.segment, 'all') as segment,
        sum(satisfaction.satisfaction_index * satisfaction.responses) / sum(satisfaction.responses)
            as satisfaction_index
    from periods
    inner join marts.customer_satisfaction as satisfaction
        on satisfaction.period > periods.period - interval 12 month and satisfaction.period <= periods.period
    where satisfaction.satisfaction_index is not null
    group by grouping sets ((periods.period, satisfaction.segment), (periods.period))
),

clv_metrics as (
    select
        clv.period,
        coalesce(customers.segment, 'all') as segment,
        avg(clv.clv_profit) as mean_profit_clv
    from marts.customer_clv as clv
    inner join staging.stg_crm__customers as customers on clv.customer_id = customers.customer_id
    group by grouping sets ((clv.period, customers.segment), (clv.period))
),

actuals as (
    select period, segment, 'customer_profit_t12m' as metric, customer_profit_t12m as actual from profit_metrics
    union all
    select period, segment, 'pct_unprofitable_customers', pct_unprofitable_customers from profit_metrics
    union all
    select period, segment, 'unprofitable_revenue_share', unprofitable_revenue_share from profit_metrics
    union all
    select period, segment, 'retention_rate', retention_rate from marts.customer_retention
    union all
    select period, segment, 'new_customers', new_customers from marts.customer_retention
    union all
    select period, segment, 'nps', nps from nps_metrics
    union all
    select period, segment, 'satisfaction_index', satisfaction_index from index_metrics
    union all
    select period, segment, 'mean_profit_clv', mean_profit_clv from clv_metrics
),

targeted as (
    select
        actuals.*,
        coalesce(own.target, company.target) as target,
        coalesce(own.direction, company.direction) as direction,
        coalesce(own.amber_tolerance, company.amber_tolerance, 0) as amber_tolerance,
        coalesce(own.owner, company.owner) as owner,
        coalesce(own.incentive_weight, 0) as incentive_weight  -- a weight belongs to its own target only
    from actuals
    left join staging.stg_config__scorecard_targets as own
        on actuals.metric = own.metric and actuals.segment = own.segment
    left join staging.stg_config__scorecard_targets as company
        on actuals.metric = company.metric and company.segment = 'all'
        and (actuals.segment = 'all' or actuals.metric in ({", ".join(repr(m) for m in INTENSIVE)}))
),

-- Status, variance and trend are computed from the figures as published (4 decimal places), so that they agree
-- with what a reader sees: two months whose actuals both read 0.0666 are 'flat', whatever lies beyond.
published as (
    select
        period,
        segment,
        metric,
        cast(actual as decimal(20, 4)) as actual,
        cast(target as decimal(20, 4)) as target,
        direction,
        amber_tolerance,
        owner,
        incentive_weight
    from targeted
),

final as (
    select
        period,
        segment,
        metric,
        actual,
        target,
        cast(actual - target as decimal(20, 4)) as variance,
        case
            when target is null or actual is null then null
            when direction = 'higher' and actual >= target then 'green'
            when direction = 'lower' and actual <= target then 'green'
            when direction = 'higher' and actual >= target - amber_tolerance then 'amber'
            when direction = 'lower' and actual <= target + amber_tolerance then 'amber'
            else 'red'
        end as status,
        case
            when lag(actual) over trend_window is null or actual is null then null
            when actual > lag(actual) over trend_window then 'up'
            when actual < lag(actual) over trend_window then 'down'
            else 'flat'
        end as trend,
        owner,
        cast(incentive_weight as decimal(9, 4)) as incentive_weight,
        direction
    from published
    window trend_window as (partition by segment, metric order by period)
)

select * from final
where $first::date is null or period >= $first::date
"""

ATTAINMENT_SQL = """
select
    period,
    owner,
    cast(sum(incentive_weight) filter (where status = 'green') as decimal(9, 4)) as attained_weight,
    cast(sum(incentive_weight) as decimal(9, 4)) as total_weight,
    cast(coalesce(sum(incentive_weight) filter (where status = 'green'), 0) / nullif(sum(incentive_weight), 0)
        as decimal(9, 4)) as attainment
from marts.customer_scorecard
where owner is not null and segment = 'all'  -- incentives are earned on the company-wide metrics
    and ($first::date is null or period >= $first::date)
group by period, owner
"""


@multi_asset(
    partitions_def=monthly_partitions,
    backfill_policy=single_run,
    specs=[
        AssetSpec(
            SCORECARD,
            group_name="marts",
            deps=UPSTREAM,
            kinds={"duckdb"},
            description="Customer balanced scorecard per month, segment and metric: actual, target, variance, "
            "status (green / amber / red, honouring direction and tolerance), trend and owner.",
        ),
        AssetSpec(
            ATTAINMENT,
            group_name="marts",
            deps=[SCORECARD],
            kinds={"duckdb"},
            description="Per month and owner: the incentive weights of the owner's company-wide metrics on "
            "target (green), out of all of them.",
        ),
    ],
)
def scorecard(context: AssetExecutionContext, warehouse: WarehouseResource):
    # Still DuckDB SQL of its own (to become dbt models, issue 16): the DuckDB session's connection.
    with warehouse.session() as wh:
        con = wh.con
        first = (
            refresh_window(context, reach_months=None)
            .or_everything_if_missing(wh, "marts.customer_scorecard", "marts.incentive_attainment")
            .first
        )
        con.execute("begin transaction")
        for table, sql in (("customer_scorecard", SCORECARD_SQL), ("incentive_attainment", ATTAINMENT_SQL)):
            if first is None:
                con.execute(f"drop table if exists marts.{table}")
            con.execute(f"create table if not exists marts.{table} as {sql} limit 0", {"first": first})
            con.execute(
                f"delete from marts.{table} where $first::date is null or period >= $first::date",
                {"first": first},
            )
            con.execute(f"insert into marts.{table} {sql}", {"first": first})
        con.execute("commit")
        rows = con.execute("select count(*) from marts.customer_scorecard").fetchone()[0]
        latest = con.execute(
            "select status, count(*) from marts.customer_scorecard "
            "where period = (select max(period) from marts.customer_scorecard) and segment = 'all' group by 1"
        ).fetchall()
    yield MaterializeResult(
        asset_key=SCORECARD,
        metadata={
            "dagster/row_count": MetadataValue.int(rows),
            "latest_statuses_all": MetadataValue.json({str(k): v for k, v in latest}),
        },
    )
    yield MaterializeResult(asset_key=ATTAINMENT)
