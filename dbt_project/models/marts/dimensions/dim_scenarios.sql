-- One row per what-if scenario of landing/reference/scenarios.csv, and the implicit baseline `actual`.
-- A change without months applies to the release's trailing 12 months, within history (docs/DESIGN.md,
-- Scenarios; the months are resolved in int_scenario_changes).
with resolved as (
    select * from {{ ref('int_scenario_changes') }}
),

levers as (
    select scenario, {{ sorted_string_agg('lever', "', '") }} as levers
    from (select distinct scenario, lever from resolved) as used
    group by scenario
),

scenarios as (
    select
        resolved.scenario,
        min(resolved.description) as description,
        false as is_baseline,
        cast(count(*) as integer) as changes,
        min(levers.levers) as levers,
        min(resolved.first_period) as first_period,
        max(resolved.last_period) as last_period,
        max(resolved.version) as version
    from resolved
    inner join levers on resolved.scenario = levers.scenario
    group by resolved.scenario
),

baseline as (
    select
        'actual' as scenario,
        'The baseline: the published marts as they are, no lever changed; every scenario is compared with it.'
            as description,
        true as is_baseline,
        cast(0 as integer) as changes,
        cast(null as {{ dbt.type_string() }}) as levers,
        cast(null as date) as first_period,
        cast(null as date) as last_period,
        cast(null as {{ dbt.type_string() }}) as version
),

final as (
    select * from baseline
    union all
    select * from scenarios
)

select * from final
