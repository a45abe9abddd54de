-- Cost of each activity per period: driver volume, rate per driver unit and the cost assigned from its centre.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail') }}
select
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
from {{ ref('int_ledger_costs_assigned_to_activities') }}
where {{ in_refresh_window('period') }}
