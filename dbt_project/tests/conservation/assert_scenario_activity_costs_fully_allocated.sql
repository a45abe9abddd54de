{{ config(meta={"dagster": {"ref": {"name": "scenario_activity_costs"}}}) }}
-- In every scenario, for each activity and month: the cost allocated to customers = the activity's cost, to the
-- cent; and each customer's cost to serve = the sum of its allocations.
with allocated as (
    select scenario, period, activity, sum(allocated_cost) as allocated_cost
    from {{ ref('int_scenario_allocations') }}
    group by scenario, period, activity
),

activities as (
    select scenario, period, activity, activity_cost
    from {{ ref('scenario_activity_costs') }}
    where activity_cost <> 0
),

customer_allocations as (
    select scenario, period, customer_id, sum(allocated_cost) as allocated_cost
    from {{ ref('int_scenario_allocations') }}
    group by scenario, period, customer_id
),

profitability as (
    select * from {{ ref('scenario_customer_profitability') }}
)

select
    coalesce(activities.scenario, allocated.scenario) as scenario,
    coalesce(activities.period, allocated.period) as period,
    coalesce(activities.activity, allocated.activity) as subject,
    'allocated <> activity cost' as broken
from activities
full outer join allocated
    on activities.scenario = allocated.scenario and activities.period = allocated.period
    and activities.activity = allocated.activity
where coalesce(activities.activity_cost, 0) <> coalesce(allocated.allocated_cost, 0)

union all

select profitability.scenario, profitability.period, profitability.customer_id, 'customer profit does not add up'
from profitability
left join customer_allocations
    on profitability.scenario = customer_allocations.scenario and profitability.period = customer_allocations.period
    and profitability.customer_id = customer_allocations.customer_id
where profitability.cost_to_serve is distinct from coalesce(customer_allocations.allocated_cost, 0)
    or profitability.net_revenue is distinct from profitability.gross_revenue - profitability.discounts - profitability.returns_credit
    or profitability.gross_margin is distinct from profitability.net_revenue - profitability.cogs
    or profitability.abc_profit is distinct from profitability.gross_margin - profitability.cost_to_serve
    or profitability.traditional_profit is distinct from profitability.gross_margin - profitability.traditional_overhead
