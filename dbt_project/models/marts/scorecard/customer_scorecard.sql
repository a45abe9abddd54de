-- The customer balanced scorecard (Kaplan & Norton, customer perspective), per month and segment ('all' too).
-- Metrics: customer profit (trailing 12 months), share of unprofitable customers, share of revenue from them
-- (both on trailing-12-month ABC profit), retention rate, new customers, NPS and satisfaction index (trailing
-- 12 months of responses), mean profit CLV (marts.customer_clv, written by the Python asset before this model
-- runs). Each row has its target from the configuration (the segment's own, else, for rates and averages, the
-- company's), the variance, a status (green meets the target, amber within tolerance, red otherwise, honouring
-- whether higher or lower is better), the trend against the prior month and the owner.
-- Every metric of a month depends on history before it (trailing windows, CLV), so a refresh rebuilds the months
-- from its first month on and keeps the earlier ones.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail', meta={'refresh_reach_months': 'all'}) }}

{#- Metrics that are rates or averages: a segment without its own target is held to the company's. -#}
{%- set intensive = [
    'pct_unprofitable_customers',
    'unprofitable_revenue_share',
    'retention_rate',
    'nps',
    'satisfaction_index',
    'mean_profit_clv',
] %}

-- Tables read more than once are named in place, not in import CTEs: DuckDB would materialize such a CTE whole.
with
-- The months rebuilt, and the month before them, whose actuals the first one's trend compares with.
periods as (
    select distinct period from {{ ref('customer_profitability') }}
    where {{ in_refresh_window('period + interval 1 month') }}
),

customer_t12m as (
    select
        periods.period,
        profitability.customer_id,
        any_value(profitability.segment) as segment,
        sum(profitability.abc_profit) as profit,
        sum(profitability.net_revenue) as revenue
    from periods
    inner join {{ ref('customer_profitability') }} as profitability
        on profitability.period > periods.period - interval 12 month and profitability.period <= periods.period
    group by periods.period, profitability.customer_id
),

profit_metrics as (
    select
        period,
        coalesce(segment, 'all') as segment,
        sum(profit) as customer_profit_t12m,
        {{ rounded_mean('case when profit < 0 then 1 else 0 end', 0, 4) }} as pct_unprofitable_customers,
        {{ ratio('sum(revenue) filter (where profit < 0)', 'nullif(sum(revenue), 0)') }} as unprofitable_revenue_share
    from customer_t12m
    group by grouping sets ((period, segment), (period))
),

nps_answers as (
    select answers.period, answers.customer_id, answers.score
    from {{ ref('stg_survey__responses') }} as answers
    inner join {{ ref('stg_survey__questions') }} as questions on answers.question_id = questions.question_id
    where questions.kind = 'nps'
),

nps_metrics as (
    select
        periods.period,
        coalesce(customers.segment, 'all') as segment,
        {{ ratio('100.0 * (count(*) filter (where nps_answers.score >= 9) - count(*) filter (where nps_answers.score <= 6))', 'count(*)') }}
            as nps
    from periods
    inner join nps_answers
        on nps_answers.period > periods.period - interval 12 month and nps_answers.period <= periods.period
    inner join {{ ref('stg_crm__customers') }} as customers on nps_answers.customer_id = customers.customer_id
    group by grouping sets ((periods.period, customers.segment), (periods.period))
),

index_metrics as (
    select
        periods.period,
        coalesce(satisfaction.segment, 'all') as segment,
        sum(satisfaction.satisfaction_index * satisfaction.responses) / sum(satisfaction.responses)
            as satisfaction_index
    from periods
    inner join {{ ref('customer_satisfaction') }} as satisfaction
        on satisfaction.period > periods.period - interval 12 month and satisfaction.period <= periods.period
    where satisfaction.satisfaction_index is not null
    group by grouping sets ((periods.period, satisfaction.segment), (periods.period))
),

clv_metrics as (
    select
        clv.period,
        coalesce(customers.segment, 'all') as segment,
        {{ rounded_mean('clv.clv_profit', 2, 4) }} as mean_profit_clv
    from {{ source('python_marts', 'customer_clv') }} as clv
    inner join {{ ref('stg_crm__customers') }} as customers on clv.customer_id = customers.customer_id
    group by grouping sets ((clv.period, customers.segment), (clv.period))
),

actuals as (
    select period, segment, 'customer_profit_t12m' as metric, customer_profit_t12m as actual from profit_metrics
    union all
    select period, segment, 'pct_unprofitable_customers', pct_unprofitable_customers from profit_metrics
    union all
    select period, segment, 'unprofitable_revenue_share', unprofitable_revenue_share from profit_metrics
    union all
    select period, segment, 'retention_rate', retention_rate from {{ ref('customer_retention') }}
    union all
    select period, segment, 'new_customers', new_customers from {{ ref('customer_retention') }}
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
    left join {{ ref('stg_config__scorecard_targets') }} as own
        on actuals.metric = own.metric and actuals.segment = own.segment
    left join {{ ref('stg_config__scorecard_targets') }} as company
        on actuals.metric = company.metric and company.segment = 'all'
        and (actuals.segment = 'all' or actuals.metric in ('{{ intensive | join("', '") }}'))
),

-- Status, variance and trend are computed from the figures as published (4 decimal places), so that they agree
-- with what a reader sees: two months whose actuals both read 0.0666 are 'flat', whatever lies beyond.
published as (
    select
        period,
        segment,
        metric,
        {{ double_as_decimal('actual', 20, 4) }} as actual,
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
where {{ in_refresh_window('period') }}
