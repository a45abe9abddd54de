-- Activities to customers per scenario (the costing method's step 3, int_activity_costs_allocated_to_customers):
-- each activity's cost split over its customers in proportion to their scenario driver volume, in whole cents
-- that add up to the activity cost exactly. Grain: scenario, period, customer, activity.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail', meta={'scenario_periods': 'rebuilt'}) }}
-- depends_on: {{ ref('int_scenario_periods') }}
with activity_costs as (
    select * from {{ ref('int_scenario_activity_costs') }}
    where activity_cost <> 0 and {{ in_refresh_window('period') }}
),

drivers as (
    select * from {{ ref('int_scenario_drivers') }}
    where {{ in_refresh_window('period') }}
),

customer_volumes as (
    select
        activity_costs.scenario,
        activity_costs.period,
        drivers.customer_id,
        activity_costs.activity,
        activity_costs.cost_center,
        activity_costs.driver,
        drivers.driver_volume,
        activity_costs.rate_per_unit,
        activity_costs.activity_cost
    from activity_costs
    inner join drivers
        on activity_costs.scenario = drivers.scenario
        and activity_costs.period = drivers.period
        and activity_costs.activity = drivers.activity
),

{{ activity_costs_allocated_ctes('customer_volumes', 'scenario, period') }}

select * from allocations
