-- activity_costs per scenario: each activity's driver volume, rate and cost in the scenario months. In
-- scenario `actual` it equals activity_costs row for row.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail', meta={'scenario_periods': 'rebuilt'}) }}
-- depends_on: {{ ref('int_scenario_periods') }}
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
where {{ in_refresh_window('period') }}
