-- Activities to customers (DESIGN.md costing method, step 3): each activity's cost is split over the customers
-- in proportion to their driver volume in the month, in whole cents that add up to the activity cost exactly.
-- Grain: period, customer, activity (and its cost centre), so every dollar traces back to a ledger centre.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail') }}
with activity_costs as (
    select * from {{ ref('int_ledger_costs_assigned_to_activities') }}
    where activity_cost <> 0
),

drivers as (
    select * from {{ ref('int_drivers_aggregated_to_customer_month') }}
),

customer_volumes as (
    select
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
        on activity_costs.period = drivers.period and activity_costs.driver = drivers.driver
),

{{ activity_costs_allocated_ctes('customer_volumes', 'period') }}

select * from allocations
where {{ in_refresh_window('period') }}
