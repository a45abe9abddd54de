{{ config(meta={"dagster": {"ref": {"name": "scenario_cost_center_capacity"}}}) }}
-- In every scenario, for each cost centre and month: assigned to activities + unused capacity + business-
-- sustaining cost = the scenario's ledger cost of the centre, to the cent; the scenario's ledger is actual's
-- (from staging, independently of the marts) wherever no ledger_cost change applies; and every activity's
-- cost is counted in its centre.
with ledger as (
    select period, cost_center, sum(amount) as ledger_cost
    from {{ ref('stg_ledger__gl_costs') }}
    group by period, cost_center
),

changed as (
    select distinct months.scenario, months.period, changes.target_name as cost_center
    from {{ ref('int_scenario_months') }} as months
    inner join {{ ref('int_scenario_changes') }} as changes
        on changes.scenario = months.scenario and changes.lever = 'ledger_cost'
        and months.period between changes.first_period and changes.last_period
),

centres as (
    select * from {{ ref('int_scenario_cost_centers') }}
),

activities as (
    select scenario, period, cost_center, sum(activity_cost) as activity_cost
    from {{ ref('scenario_activity_costs') }}
    group by scenario, period, cost_center
),

capacity as (
    select * from {{ ref('scenario_cost_center_capacity') }}
)

select capacity.scenario, capacity.period, capacity.cost_center, 'assigned + unused + sustaining <> ledger' as broken
from capacity
left join centres
    on capacity.scenario = centres.scenario and capacity.period = centres.period
    and capacity.cost_center = centres.cost_center
where centres.ledger_cost is null
    or capacity.ledger_cost is distinct from centres.ledger_cost
    or capacity.assigned_cost + capacity.unused_capacity_cost + capacity.sustaining_cost
        is distinct from centres.ledger_cost

union all

select centres.scenario, centres.period, centres.cost_center, 'ledger differs from actual without a change'
from centres
left join ledger on centres.period = ledger.period and centres.cost_center = ledger.cost_center
left join changed
    on centres.scenario = changed.scenario and centres.period = changed.period
    and centres.cost_center = changed.cost_center
where changed.cost_center is null and centres.ledger_cost is distinct from ledger.ledger_cost

union all

select capacity.scenario, capacity.period, capacity.cost_center, 'assigned cost <> the sum of its activities'
from capacity
left join activities
    on capacity.scenario = activities.scenario and capacity.period = activities.period
    and capacity.cost_center = activities.cost_center
where capacity.assigned_cost is distinct from coalesce(activities.activity_cost, 0)
