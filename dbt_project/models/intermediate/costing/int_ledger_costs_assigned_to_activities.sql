-- Resources to activities, per period and activity (DESIGN.md costing method, step 2).
--   time  (time-driven ABC): capacity cost rate = centre cost / practical capacity minutes;
--         activity cost = rate x unit_minutes x driver volume, rounded half up to the cent in integer arithmetic.
--   share (conventional ABC): pool = centre cost x share, apportioned to the cent so a centre's pools add up
--         to its ledger cost; the whole pool is the activity's cost when it has driver volume.
-- An activity with no driver volume in a month has no cost: its centre keeps the money as unused capacity.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail') }}
{%- set int128 = type_int128() %}
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

time_activities as (
    select
        *,
        {{ time_driven_cost_cents("ledger_cost", "unit_minutes", "driver_volume", "practical_capacity_minutes") }}
            as activity_cost_cents,
        unit_minutes * driver_volume as used_minutes
    from activity_months
    where method = 'time'
),

share_pools as (
    select * from {{ apportion_cents(
        "(select * from activity_months where method = 'share')",
        "cast(ledger_cost * 100 as " ~ int128 ~ ")",
        "cast(share * 1000000 as " ~ int128 ~ ")",
        "period, cost_center",
        "activity",
    ) }}
),

share_activities as (
    select
        period, activity, cost_center, driver, method, unit_minutes, share, practical_capacity_minutes, ledger_cost,
        driver_volume,
        case when driver_volume > 0 then apportioned_cents else 0 end as activity_cost_cents,
        cast(null as decimal(18, 4)) as used_minutes
    from share_pools
),

combined as (
    select
        period, activity, cost_center, driver, method, unit_minutes, share, practical_capacity_minutes, ledger_cost,
        driver_volume, activity_cost_cents, used_minutes
    from time_activities
    union all
    select
        period, activity, cost_center, driver, method, unit_minutes, share, practical_capacity_minutes, ledger_cost,
        driver_volume, activity_cost_cents, used_minutes
    from share_activities
),

final as (
    select
        period,
        cost_center,
        activity,
        method,
        driver,
        cast(driver_volume as decimal(18, 4)) as driver_volume,
        unit_minutes,
        share,
        practical_capacity_minutes,
        cast(used_minutes as decimal(18, 4)) as used_minutes,
        case
            when method = 'time' then {{ double_as_decimal(ratio("ledger_cost", "practical_capacity_minutes"), 18, 6) }}
        end as capacity_cost_rate,
        case
            when method = 'time' then {{ double_as_decimal(ratio("ledger_cost * unit_minutes", "practical_capacity_minutes"), 18, 6) }}
            when driver_volume > 0 then {{ double_as_decimal(ratio(cents_to_money("activity_cost_cents"), "driver_volume"), 18, 6) }}
        end as rate_per_unit,
        {{ cents_to_money("activity_cost_cents") }} as activity_cost
    from combined
)

select * from final
where {{ in_refresh_window('period') }}
