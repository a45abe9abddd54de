-- Resources to activities per scenario, month and activity: the costing method's step 2
-- (int_ledger_costs_assigned_to_activities) on the scenario's ledger, configuration and driver volumes.
--   time:  capacity cost rate = centre cost / practical capacity; activity cost = rate x unit_minutes x volume;
--   share: pool = centre cost x share, apportioned to the cent over the centre's share activities; the pool is
--          the activity's cost when it has driver volume.
-- An activity with no driver volume has no cost: its centre keeps the money as unused capacity.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail', meta={'scenario_periods': 'rebuilt'}) }}
-- depends_on: {{ ref('int_scenario_periods') }}
with activities as (
    select * from {{ ref('int_scenario_activities') }}
    where {{ in_refresh_window('period') }}
),

cost_centers as (
    select * from {{ ref('int_scenario_cost_centers') }}
    where {{ in_refresh_window('period') }}
),

driver_totals as (
    select scenario, period, activity, sum(driver_volume) as driver_volume
    from {{ ref('int_scenario_drivers') }}
    where {{ in_refresh_window('period') }}
    group by scenario, period, activity
),

activity_months as (
    select
        activities.scenario,
        activities.period,
        activities.activity,
        activities.cost_center,
        activities.driver,
        activities.method,
        activities.unit_minutes,
        activities.share,
        activities.practical_capacity_minutes,
        cost_centers.ledger_cost,
        coalesce(driver_totals.driver_volume, 0) as driver_volume
    from activities
    inner join cost_centers
        on activities.scenario = cost_centers.scenario
        and activities.period = cost_centers.period
        and activities.cost_center = cost_centers.cost_center
    left join driver_totals
        on activities.scenario = driver_totals.scenario
        and activities.period = driver_totals.period
        and activities.activity = driver_totals.activity
),

{{ activities_costed_ctes('activity_months', 'scenario, period') }}

select * from activities_costed
