{{ config(meta={"dagster": {"ref": {"name": "customer_cost_to_serve"}}}) }}
-- For each activity and month: the cost allocated to customers = the activity's cost, to the cent.
with allocated as (
    select period, activity, sum(allocated_cost) as allocated_cost
    from {{ ref('customer_cost_to_serve') }}
    group by period, activity
),

activities as (
    select period, activity, activity_cost
    from {{ ref('activity_costs') }}
    where activity_cost <> 0
)

select
    coalesce(activities.period, allocated.period) as period,
    coalesce(activities.activity, allocated.activity) as activity,
    activities.activity_cost,
    allocated.allocated_cost
from activities
full outer join allocated on activities.period = allocated.period and activities.activity = allocated.activity
where coalesce(activities.activity_cost, 0) <> coalesce(allocated.allocated_cost, 0)
