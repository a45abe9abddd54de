-- The months every scenario is computed for, `actual` included, one row per scenario and month: the release's
-- months from the first month any change applies (at the latest the first of the default window, the release's
-- trailing 12 months) to its last month. Every scenario has the same months, so each compares with actual
-- month by month; in a month none of its changes applies, a scenario equals actual.
with changes as (
    select * from {{ ref('int_scenario_changes') }}
),

release as (
    select min(period) as first_period, max(period) as last_period from {{ ref('stg_erp__order_lines') }}
),

periods as (
    {{ scenario_history_months() }}
),

earliest_change as (
    select min(first_period) as first_period from changes
),

bounds as (
    select
        least(
            greatest(release.first_period, cast({{ dbt.dateadd('month', -11, 'release.last_period') }} as date)),
            coalesce(
                earliest_change.first_period,
                greatest(release.first_period, cast({{ dbt.dateadd('month', -11, 'release.last_period') }} as date))
            )
        ) as first_period,
        release.last_period
    from release
    cross join earliest_change
),

scenarios as (
    select 'actual' as scenario
    union all
    select distinct scenario from changes
),

final as (
    select scenarios.scenario, periods.period
    from scenarios
    cross join periods
    cross join bounds
    where periods.period between bounds.first_period and bounds.last_period
)

select * from final
