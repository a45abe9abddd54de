-- Which months the scenario models rebuild in this run (docs/DESIGN.md, Scenarios: refreshed by month). One row
-- per month of history: whether it is a scenario month, its signature (what its scenario rows are computed
-- from besides the month's own inputs: the scenarios file's version, its scenario names and the changes that
-- apply in the month, a unit_price change with the months of the lines whose returns the month credits), and
-- whether the run rebuilds it:
--   rebuilt        the month's scenario rows (every scenario model but the whale curve and what reads it): a
--                  month of the run's refresh window (its inputs may have changed), or one whose signature is
--                  not the one it was last built with (a new or changed scenario, a change whose default window
--                  moved with the release, a month that entered or left the scenario months);
--   whale_rebuilt  the trailing 12 months as of the month (scenario_whale_curve, and scenario_comparison and
--                  scenario_summary, which read it): one of the 12 months rebuilt.
-- Every month is rebuilt on a full build, --full-refresh, a run without a refresh window, or when the scenario
-- marts were never completed (int_scenario_built, the signatures of the last run that built every scenario
-- model, is missing). int_scenario_built is read here by name, not by ref: it is written after the scenario
-- models, so what it holds is the previous complete build's, and a run that fails before it leaves the months
-- still to be rebuilt by the next.
{%- set built = none %}
{%- if execute and not flags.FULL_REFRESH %}
    {%- set built = adapter.get_relation(database=this.database, schema=this.schema, identifier='int_scenario_built') %}
{%- endif %}
{%- set bounds = refresh_window_bounds(0) %}
with changes as (
    select * from {{ ref('int_scenario_changes') }}
),

months as (
    select distinct period from {{ ref('int_scenario_months') }}
),

history as (
    {{ scenario_history_months() }}
),

first_month as (
    select min(period) as first_period from months
),

file as (
    select
        coalesce(max(version), '') as version,
        coalesce({{ sorted_string_agg('scenario', "','") }}, '') as scenarios
    from (select distinct version, scenario from changes) as named
),

-- Each change's part in a month's signature: the change where it applies; a unit_price change also in the later
-- months, whose returns of its lines are credited at its price (with the months of those lines).
applying as (
    select
        months.period,
        changes.scenario || '|' || changes.lever || '|' || changes.target || '|' || changes.operation || '|'
        || cast(changes.value as {{ dbt.type_string() }})
        || case when changes.lever = 'unit_price'
            then '|' || cast(greatest(changes.first_period, first_month.first_period) as {{ dbt.type_string() }})
                || '..' || cast(least(changes.last_period, months.period) as {{ dbt.type_string() }})
            else '' end as part
    from months
    cross join first_month
    inner join changes
        on changes.first_period <= months.period
        and (
            months.period <= changes.last_period
            or (changes.lever = 'unit_price' and changes.last_period >= first_month.first_period)
        )
),

signatures as (
    select
        months.period,
        md5(file.version || ';' || file.scenarios || ';' || coalesce(parts.parts, '')) as signature
    from months
    cross join file
    left join (
        select period, {{ sorted_string_agg('part', "';'") }} as parts from applying group by period
    ) as parts on months.period = parts.period
),

{%- if built is not none %}
previous as (
    select period, signature from {{ built }}
),
{%- endif %}

periods as (
    select history.period from history
    {%- if built is not none %}
    union
    select period from previous
    {%- endif %}
),

rebuilt as (
    select
        periods.period,
        signatures.period is not null as is_scenario_month,
        signatures.signature,
        {%- if built is none or bounds[0] is none %}
        true as rebuilt
        {%- else %}
        periods.period between {{ bounds[0] }} and cast({{ bounds[1] }} as date)
            or coalesce(signatures.signature, '') <> coalesce(previous.signature, '') as rebuilt
        {%- endif %}
    from periods
    left join signatures on periods.period = signatures.period
    {%- if built is not none %}
    left join previous on periods.period = previous.period
    {%- endif %}
),

-- A month's trailing 12 months, and whether the run rebuilt one of them.
windows as (
    select
        later.period,
        max(case when earlier.rebuilt then 1 else 0 end) = 1 as whale_rebuilt
    from rebuilt as later
    inner join rebuilt as earlier
        on earlier.period > cast({{ dbt.dateadd('month', -12, 'later.period') }} as date)
        and earlier.period <= later.period
    group by later.period
),

final as (
    select
        rebuilt.period,
        rebuilt.is_scenario_month,
        rebuilt.signature,
        rebuilt.rebuilt,
        windows.whale_rebuilt
    from rebuilt
    inner join windows on rebuilt.period = windows.period
)

select * from final
