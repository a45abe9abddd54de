-- The customer balanced scorecard (Kaplan & Norton, customer perspective), per month and segment ('all' too).
-- Metrics: customer profit (trailing 12 months), share of unprofitable customers, share of revenue from them
-- (both on trailing-12-month ABC profit), retention rate, new customers, NPS and satisfaction index (trailing
-- 12 months of responses), mean profit CLV (marts.customer_clv, written by the Python asset before this model
-- runs). Each row has its target from the configuration (the segment's own, else, for rates and averages, the
-- company's), the variance, a status (green meets the target, amber within tolerance, red otherwise, honouring
-- whether higher or lower is better), the trend against the prior month and the owner.
-- A figure is scored only when it is whole: a trailing metric whose window reaches before the start of history
-- (the first month in the warehouse), or a CLV month whose models were not fitted or are missing, gets the
-- status 'not_scored' with its status_reason, never a colour; the trend compares two consecutive months only
-- when both figures are whole (docs/DESIGN.md, customer balanced scorecard). Every month has a row for every
-- segment and metric, so no weight or trend silently changes when a figure is missing.
-- Every metric of a month depends on history before it (trailing windows, CLV), so a refresh rebuilds the months
-- from its first month on and keeps the earlier ones.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail', meta={'refresh_reach_months': 'all'}) }}

{#- The metrics, each with its window in months (none: a month's own figure, no window). Retention compares
    the current 12 months with the 12 before them: its window is 24 months. -#}
{%- set windows = {
    'customer_profit_t12m': 12,
    'pct_unprofitable_customers': 12,
    'unprofitable_revenue_share': 12,
    'retention_rate': 24,
    'new_customers': none,
    'nps': 12,
    'satisfaction_index': 12,
    'mean_profit_clv': none,
} %}
{%- set trailing_12 = windows | dictsort | selectattr(1, 'equalto', 12) | map(attribute=0) | list %}
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
-- The months in the warehouse (every month has customer rows): history starts at the first of them.
history as (
    select distinct period from {{ ref('customer_profitability') }}
),

-- The months rebuilt, and the month before them, whose actuals the first one's trend compares with.
periods as (
    select period from history
    where {{ in_refresh_window('period + interval 1 month') }}
),

-- Months of history in each month's trailing 12 months.
coverage as (
    select periods.period, count(*) as window_months
    from periods
    inner join history
        on history.period > periods.period - interval 12 month and history.period <= periods.period
    group by periods.period
),

segments as (
    select distinct segment from {{ ref('stg_crm__customers') }}
    union
    select 'all' as segment
),

period_segments as (
    select periods.period, segments.segment
    from periods
    cross join segments
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

profit_by_segment as (
    select
        period,
        coalesce(segment, 'all') as segment,
        sum(profit) as customer_profit_t12m,
        {{ rounded_mean('case when profit < 0 then 1 else 0 end', 0, 4) }} as pct_unprofitable_customers,
        -- no unprofitable customer: a share of 0, not unknown
        {{ ratio('coalesce(sum(revenue) filter (where profit < 0), 0)', 'nullif(sum(revenue), 0)') }}
            as unprofitable_revenue_share
    from customer_t12m
    group by grouping sets ((period, segment), (period))
),

-- A segment without a customer in the window earns a profit of 0; its shares are undefined.
profit_metrics as (
    select
        period_segments.period,
        period_segments.segment,
        coalesce(profit_by_segment.customer_profit_t12m, 0) as customer_profit_t12m,
        profit_by_segment.pct_unprofitable_customers,
        profit_by_segment.unprofitable_revenue_share
    from period_segments
    left join profit_by_segment
        on period_segments.period = profit_by_segment.period and period_segments.segment = profit_by_segment.segment
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

-- Per CLV month: whether its models were fitted (a month absent from customer_clv has no row here).
clv_months as (
    select clv.period, min(case when clv.fit_status = 'fitted' then 1 else 0 end) = 1 as is_fitted
    from {{ source('python_marts', 'customer_clv') }} as clv
    inner join periods on clv.period = periods.period
    group by clv.period
),

clv_metrics as (
    select
        clv.period,
        coalesce(customers.segment, 'all') as segment,
        {{ rounded_mean('clv.clv_profit', 2, 4) }} as mean_profit_clv
    from {{ source('python_marts', 'customer_clv') }} as clv
    inner join periods on clv.period = periods.period
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

metrics as (
    {%- for metric in windows %}
    select '{{ metric }}' as metric{{ "\n    union all" if not loop.last }}
    {%- endfor %}
),

-- Every month, segment and metric, with the months of history in the metric's window.
measured as (
    select
        period_segments.period,
        period_segments.segment,
        metrics.metric,
        actuals.actual,
        case
            when metrics.metric = 'retention_rate' then retention.window_months + retention.prior_window_months
            when metrics.metric in ('{{ trailing_12 | join("', '") }}') then coverage.window_months
        end as window_months,
        case
            when metrics.metric = 'retention_rate' then coalesce(retention.window_complete, false)
            when metrics.metric in ('{{ trailing_12 | join("', '") }}') then coverage.window_months = 12
            else true
        end as window_complete,
        case
            when metrics.metric <> 'mean_profit_clv' then null
            when clv_months.period is null then 'clv_missing'
            when not clv_months.is_fitted then 'clv_not_fitted'
        end as clv_reason
    from period_segments
    cross join metrics
    inner join coverage on period_segments.period = coverage.period
    left join {{ ref('customer_retention') }} as retention
        on period_segments.period = retention.period and period_segments.segment = retention.segment
    left join clv_months on period_segments.period = clv_months.period
    left join actuals
        on period_segments.period = actuals.period
        and period_segments.segment = actuals.segment
        and metrics.metric = actuals.metric
),

targeted as (
    select
        measured.*,
        coalesce(own.target, company.target) as target,
        coalesce(own.direction, company.direction) as direction,
        coalesce(own.amber_tolerance, company.amber_tolerance, 0) as amber_tolerance,
        coalesce(own.owner, company.owner) as owner,
        coalesce(own.incentive_weight, 0) as incentive_weight  -- a weight belongs to its own target only
    from measured
    left join {{ ref('stg_config__scorecard_targets') }} as own
        on measured.metric = own.metric and measured.segment = own.segment
    left join {{ ref('stg_config__scorecard_targets') }} as company
        on measured.metric = company.metric and company.segment = 'all'
        and (measured.segment = 'all' or measured.metric in ('{{ intensive | join("', '") }}'))
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
        incentive_weight,
        window_months,
        window_complete,
        clv_reason
    from targeted
),

-- Why a row is not scored, the first that applies; null when it is scored.
reasoned as (
    select
        *,
        case
            when not window_complete then 'partial_window'
            when clv_reason is not null then clv_reason
            when actual is null then 'no_value'
            when target is null then 'no_target'
        end as status_reason,
        -- a whole figure: the trend may compare it
        actual is not null and window_complete as is_whole
    from published
),

units as (
    select metric, unit from {{ ref('scorecard_metrics') }}
),

final as (
    select
        period,
        segment,
        reasoned.metric,
        -- what actual, target and variance are measured in: a metric code missing from the seed fails the
        -- not_null test on unit
        units.unit,
        actual,
        target,
        cast(actual - target as decimal(20, 4)) as variance,
        case
            when status_reason is not null then 'not_scored'
            when direction = 'higher' and actual >= target then 'green'
            when direction = 'lower' and actual <= target then 'green'
            when direction = 'higher' and actual >= target - amber_tolerance then 'amber'
            when direction = 'lower' and actual <= target + amber_tolerance then 'amber'
            else 'red'
        end as status,
        case
            when not is_whole
                or lag(period) over trend_window is distinct from period - interval 1 month
                or not lag(is_whole) over trend_window
                then null
            when actual > lag(actual) over trend_window then 'up'
            when actual < lag(actual) over trend_window then 'down'
            else 'flat'
        end as trend,
        owner,
        cast(incentive_weight as decimal(9, 4)) as incentive_weight,
        direction,
        status_reason,
        cast(window_months as integer) as window_months,
        window_complete
    from reasoned
    left join units on reasoned.metric = units.metric
    window trend_window as (partition by reasoned.segment, reasoned.metric order by reasoned.period)
)

select * from final
where {{ in_refresh_window('period') }}
