{{ config(meta={"dagster": {"ref": {"name": "incentive_attainment"}}}) }}
-- The weight on target and the weight not scored are parts of the owner's total weight, which is the sum of the
-- weights of the owner's company-wide scorecard rows: a metric that is not scored stays in it.
with scorecard as (
    select period, owner, sum(incentive_weight) as total_weight
    from {{ ref('customer_scorecard') }}
    where owner is not null and segment = 'all' and {{ in_tested_window('period') }}
    group by period, owner
)

select attainment.period, attainment.owner
from {{ ref('incentive_attainment') }} as attainment
left join scorecard on attainment.period = scorecard.period and attainment.owner = scorecard.owner
where {{ in_tested_window('attainment.period') }}
    and (
        scorecard.total_weight is null
        or attainment.total_weight <> scorecard.total_weight
        or attainment.attained_weight + attainment.not_scored_weight > attainment.total_weight
    )
