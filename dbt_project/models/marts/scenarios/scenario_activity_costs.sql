-- activity_costs per scenario: each activity's driver volume, rate and cost in the scenario months. In
-- scenario `actual` it equals activity_costs row for row.
select
    scenario,
    period,
    cost_center,
    activity,
    method,
    driver,
    driver_volume,
    rate_per_unit,
    activity_cost,
    unit_minutes,
    share,
    capacity_cost_rate,
    used_minutes
from {{ ref('int_scenario_activity_costs') }}
