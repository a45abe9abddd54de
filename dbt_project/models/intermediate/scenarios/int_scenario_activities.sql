-- The activity configuration per scenario and month after its `unit_minutes`, `share` and
-- `practical_capacity_minutes` changes (docs/DESIGN.md, Scenarios), built only when it is still coherent.
-- A changed share is the change's result; the centre's unchanged share activities are rescaled in proportion
-- so that the shares still sum to 100 %. Minutes are kept at 4 decimals and shares at 6, the scale of the
-- reference file.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail', meta={'scenario_periods': 'rebuilt'}) }}
-- depends_on: {{ ref('int_scenario_periods') }}
with months as (
    select * from {{ ref('int_scenario_months') }}
    where {{ in_refresh_window('period') }}
),

activities as (
    select * from {{ ref('int_costing_config_validated') }}
),

cost_centers as (
    select * from {{ ref('int_scenario_cost_centers') }}
),

changes as (
    select * from {{ ref('int_scenario_changes') }}
),

activity_months as (
    select
        months.scenario,
        months.period,
        activities.activity,
        activities.cost_center,
        activities.driver,
        activities.method,
        activities.unit_minutes,
        activities.share
    from months
    cross join activities
),

changed as (
    select
        activity_months.scenario,
        activity_months.period,
        activity_months.activity,
        activity_months.cost_center,
        activity_months.driver,
        activity_months.method,
        cast(round({{ scenario_applied('activity_months.unit_minutes', 'minutes_change') }}, 4) as decimal(12, 4))
            as unit_minutes,
        activity_months.share as actual_share,
        share_change.operation is not null as share_changed,
        cast(round({{ scenario_applied('activity_months.share', 'share_change') }}, 6) as decimal(9, 6))
            as changed_share,
        cost_centers.practical_capacity_minutes
    from activity_months
    left join changes as minutes_change
        on {{ scenario_change_applies('minutes_change', 'activity_months', 'unit_minutes') }}
        and minutes_change.target_name = activity_months.activity
    left join changes as share_change
        on {{ scenario_change_applies('share_change', 'activity_months', 'share') }}
        and share_change.target_name = activity_months.activity
    left join cost_centers
        on activity_months.scenario = cost_centers.scenario
        and activity_months.period = cost_centers.period
        and activity_months.cost_center = cost_centers.cost_center
),

centre_shares as (
    select
        scenario,
        period,
        cost_center,
        sum(case when share_changed then changed_share else 0 end) as changed_total,
        sum(case when share_changed then 0 else actual_share end) as unchanged_total,
        max(case when share_changed then 1 else 0 end) = 1 as any_changed
    from changed
    where method = 'share'
    group by scenario, period, cost_center
),

problems as (
    select 'scenario ' || scenario || ', ' || cast(period as {{ dbt.type_string() }}) || ': the changed shares of cost centre '
        || cost_center || ' sum to ' || cast(changed_total as {{ dbt.type_string() }})
        || case when unchanged_total = 0 then ', and its other share activities have none to rescale: they must sum to 1'
            else ', more than 1' end as problem
    from centre_shares
    where any_changed and (changed_total > 1 or (unchanged_total = 0 and changed_total <> 1))

    union all
    select distinct 'scenario ' || scenario || ', ' || cast(period as {{ dbt.type_string() }}) || ': cost centre '
        || cost_center || ' has a practical capacity of ' || cast(practical_capacity_minutes as {{ dbt.type_string() }})
        || ' minutes, which must stay above zero' as problem
    from changed
    where method = 'time' and coalesce(practical_capacity_minutes, 0) <= 0
),

validation as (
    select
        case
            when count(*) > 0
                then {{ fail_with("'scenario costing configuration is broken: ' || " ~ sorted_string_agg("problem", "'; '")) }}
            else true
        end as is_valid
    from problems
),

final as (
    select
        changed.scenario,
        changed.period,
        changed.activity,
        changed.cost_center,
        changed.driver,
        changed.method,
        changed.unit_minutes,
        case
            when changed.method <> 'share' then changed.actual_share
            when changed.share_changed then changed.changed_share
            when centre_shares.any_changed
                then {{ double_as_decimal(ratio(
                    "changed.actual_share * (1 - centre_shares.changed_total)", "centre_shares.unchanged_total"
                ), 9, 6) }}
            else changed.actual_share
        end as share,
        changed.practical_capacity_minutes
    from changed
    left join centre_shares
        on changed.scenario = centre_shares.scenario
        and changed.period = centre_shares.period
        and changed.cost_center = centre_shares.cost_center
    cross join validation
    where validation.is_valid
)

select * from final
