-- cost_center_capacity per scenario: each cost centre's ledger cost, the part assigned to activities, unused
-- capacity and business-sustaining cost, and capacity required (used minutes) against supplied (practical
-- capacity). assigned + unused + sustaining = the scenario's ledger cost, to the cent. In scenario `actual` it
-- equals cost_center_capacity row for row.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail', meta={'scenario_periods': 'rebuilt'}) }}
-- depends_on: {{ ref('int_scenario_periods') }}
with cost_centers as (
    select * from {{ ref('int_scenario_cost_centers') }}
    where {{ in_refresh_window('period') }}
),

activity_costs as (
    select
        scenario,
        period,
        cost_center,
        sum(activity_cost) as assigned_cost,
        sum(used_minutes) as used_minutes
    from {{ ref('int_scenario_activity_costs') }}
    where {{ in_refresh_window('period') }}
    group by scenario, period, cost_center
),

final as (
    select
        cost_centers.scenario,
        cost_centers.period,
        cost_centers.cost_center,
        cost_centers.is_business_sustaining,
        cost_centers.ledger_cost,
        cast(coalesce(activity_costs.assigned_cost, 0) as decimal(18, 2)) as assigned_cost,
        cast(
            case when cost_centers.is_business_sustaining then 0
                else cost_centers.ledger_cost - coalesce(activity_costs.assigned_cost, 0) end
            as decimal(18, 2)
        ) as unused_capacity_cost,
        cast(case when cost_centers.is_business_sustaining then cost_centers.ledger_cost else 0 end as decimal(18, 2))
            as sustaining_cost,
        cost_centers.practical_capacity_minutes,
        cast(activity_costs.used_minutes as decimal(18, 4)) as used_minutes,
        {{ double_as_decimal(ratio("activity_costs.used_minutes", "cost_centers.practical_capacity_minutes"), 9, 4) }} as utilisation,
        coalesce(activity_costs.used_minutes > cost_centers.practical_capacity_minutes, false) as is_over_capacity,
        cast(cost_centers.practical_capacity_minutes - activity_costs.used_minutes as decimal(18, 4)) as unused_minutes
    from cost_centers
    left join activity_costs
        on cost_centers.scenario = activity_costs.scenario
        and cost_centers.period = activity_costs.period
        and cost_centers.cost_center = activity_costs.cost_center
)

select * from final
