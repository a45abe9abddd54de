-- Per owner and month: the incentive weights of the owner's company-wide (segment 'all') metrics on target
-- (green), out of all of them, and the weight of those not scored (a partial window, a CLV month not fitted):
-- a metric that is not scored earns nothing and stays in the total, so no weight changes silently.
-- Rebuilt for the months the scorecard rebuilt.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail', meta={'refresh_reach_months': 'all'}) }}
with scorecard as (
    select * from {{ ref('customer_scorecard') }}
    where owner is not null and segment = 'all'  -- incentives are earned on the company-wide metrics
        and {{ in_refresh_window('period') }}
),

final as (
    select
        period,
        owner,
        -- nothing on target: 0, not unknown
        cast(coalesce(sum(incentive_weight) filter (where status = 'green'), 0) as decimal(9, 4)) as attained_weight,
        cast(sum(incentive_weight) as decimal(9, 4)) as total_weight,
        {{ double_as_decimal(ratio("coalesce(sum(incentive_weight) filter (where status = 'green'), 0)", 'nullif(sum(incentive_weight), 0)'), 9, 4) }}
            as attainment,
        cast(coalesce(sum(incentive_weight) filter (where status = 'not_scored'), 0) as decimal(9, 4))
            as not_scored_weight
    from scorecard
    group by period, owner
)

select * from final
