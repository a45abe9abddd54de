-- Resources to activities per scenario, month and activity: the costing method's step 2
-- (int_ledger_costs_assigned_to_activities) on the scenario's ledger, configuration and driver volumes.
--   time:  capacity cost rate = centre cost / practical capacity; activity cost = rate x unit_minutes x volume;
--   share: pool = centre cost x share, apportioned to the cent over the centre's share activities; the pool is
--          the activity's cost when it has driver volume.
-- An activity with no driver volume has no cost: its centre keeps the money as unused capacity.
{%- set int128 = type_int128() %}
with activities as (
    select * from {{ ref('int_scenario_activities') }}
),

cost_centers as (
    select * from {{ ref('int_scenario_cost_centers') }}
),

driver_totals as (
    select scenario, period, activity, sum(driver_volume) as driver_volume
    from {{ ref('int_scenario_drivers') }}
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
        "scenario, period, cost_center",
        "activity",
    ) }}
),

share_activities as (
    select
        scenario, period, activity, cost_center, driver, method, unit_minutes, share, practical_capacity_minutes,
        ledger_cost, driver_volume,
        case when driver_volume > 0 then apportioned_cents else 0 end as activity_cost_cents,
        cast(null as decimal(18, 4)) as used_minutes
    from share_pools
),

combined as (
    select
        scenario, period, activity, cost_center, driver, method, unit_minutes, share, practical_capacity_minutes,
        ledger_cost, driver_volume, activity_cost_cents, used_minutes
    from time_activities
    union all
    select
        scenario, period, activity, cost_center, driver, method, unit_minutes, share, practical_capacity_minutes,
        ledger_cost, driver_volume, activity_cost_cents, used_minutes
    from share_activities
),

final as (
    select
        scenario,
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
