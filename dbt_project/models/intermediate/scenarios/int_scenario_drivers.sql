-- Driver volumes per scenario, month, customer and activity, after the scenario's `driver_volume` changes
-- (docs/DESIGN.md, Scenarios): an activity's change, then its segment's, then its customer's, each on the
-- result of the one before. A change is of one activity: another activity with the same driver keeps its
-- volume unless a change of its own says otherwise. Volumes are kept at 4 decimals, the scale of actual's; a
-- customer whose volume becomes zero has none (as in actual).
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail', meta={'scenario_periods': 'rebuilt'}) }}
-- depends_on: {{ ref('int_scenario_periods') }}
with months as (
    select * from {{ ref('int_scenario_months') }}
    where {{ in_refresh_window('period') }}
),

drivers as (
    select * from {{ ref('int_drivers_aggregated_to_customer_month') }}
),

activities as (
    select activity, driver from {{ ref('int_costing_config_validated') }}
),

customers as (
    select customer_id, segment from {{ ref('stg_crm__customers') }}
),

changes as (
    select * from {{ ref('int_scenario_changes') }}
    where lever = 'driver_volume'
),

volumes as (
    select
        months.scenario,
        drivers.period,
        drivers.customer_id,
        customers.segment,
        activities.activity,
        activities.driver,
        drivers.driver_volume
    from months
    inner join drivers on months.period = drivers.period
    inner join activities on drivers.driver = activities.driver
    left join customers on drivers.customer_id = customers.customer_id
),

changed as (
    select
        volumes.scenario,
        volumes.period,
        volumes.customer_id,
        volumes.activity,
        volumes.driver,
        cast(round(
            {{ scenario_applied(
                scenario_applied(scenario_applied('volumes.driver_volume', 'by_activity'), 'by_segment'),
                'by_customer',
            ) }},
            4
        ) as decimal(18, 4)) as driver_volume
    from volumes
    left join changes as by_activity
        on {{ scenario_change_applies('by_activity', 'volumes', 'driver_volume') }}
        and by_activity.target_name = volumes.activity and by_activity.scope_kind = 'all'
    left join changes as by_segment
        on {{ scenario_change_applies('by_segment', 'volumes', 'driver_volume') }}
        and by_segment.target_name = volumes.activity and by_segment.scope_kind = 'segment'
        and by_segment.target_scope = volumes.segment
    left join changes as by_customer
        on {{ scenario_change_applies('by_customer', 'volumes', 'driver_volume') }}
        and by_customer.target_name = volumes.activity and by_customer.scope_kind = 'customer'
        and by_customer.target_scope = volumes.customer_id
)

select * from changed
where driver_volume <> 0
