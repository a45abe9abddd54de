-- Resources to activities, per period and activity (DESIGN.md costing method, step 2).
--   time  (time-driven ABC): capacity cost rate = centre cost / practical capacity minutes;
--         activity cost = rate x unit_minutes x driver volume, rounded half up to the cent in integer arithmetic.
--   share (conventional ABC): pool = centre cost x share, apportioned to the cent so a centre's pools add up
--         to its ledger cost; the whole pool is the activity's cost when it has driver volume.
-- An activity with no driver volume in a month has no cost: its centre keeps the money as unused capacity.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail') }}
with activities as (
    select * from {{ ref('int_costing_config_validated') }}
),

ledger as (
    select * from {{ ref('int_ledger_costs_aggregated_to_cost_center_month') }}
),

drivers as (
    select * from {{ ref('int_drivers_aggregated_to_customer_month') }}
),

driver_totals as (
    select period, driver, sum(driver_volume) as driver_volume
    from drivers
    group by period, driver
),

activity_months as (
    select
        ledger.period,
        activities.activity,
        activities.cost_center,
        activities.driver,
        activities.method,
        activities.unit_minutes,
        activities.share,
        activities.practical_capacity_minutes,
        ledger.ledger_cost,
        coalesce(driver_totals.driver_volume, 0) as driver_volume
    from activities
    inner join ledger on activities.cost_center = ledger.cost_center
    left join driver_totals
        on ledger.period = driver_totals.period and activities.driver = driver_totals.driver
),

{{ activities_costed_ctes('activity_months', 'period') }}

select * from activities_costed
where {{ in_refresh_window('period') }}
