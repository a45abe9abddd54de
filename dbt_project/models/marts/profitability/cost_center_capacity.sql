-- Each cost centre per period: ledger cost, the part assigned to activities, unused capacity and, for
-- business-sustaining centres, the cost that stays at company level. assigned + unused + sustaining = ledger.
-- A time-driven centre that ran over its practical capacity has negative unused capacity and is flagged.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail') }}
with ledger as (
    select * from {{ ref('int_ledger_costs_aggregated_to_cost_center_month') }}
),

cost_centers as (
    select * from {{ ref('stg_config__cost_centers') }}
),

activity_costs as (
    select
        period,
        cost_center,
        sum(activity_cost) as assigned_cost,
        sum(used_minutes) as used_minutes
    from {{ ref('int_ledger_costs_assigned_to_activities') }}
    group by period, cost_center
),

final as (
    select
        ledger.period,
        ledger.cost_center,
        cost_centers.is_business_sustaining,
        ledger.ledger_cost,
        cast(coalesce(activity_costs.assigned_cost, 0) as decimal(18, 2)) as assigned_cost,
        cast(
            case when cost_centers.is_business_sustaining then 0
                else ledger.ledger_cost - coalesce(activity_costs.assigned_cost, 0) end
            as decimal(18, 2)
        ) as unused_capacity_cost,
        cast(case when cost_centers.is_business_sustaining then ledger.ledger_cost else 0 end as decimal(18, 2))
            as sustaining_cost,
        cost_centers.practical_capacity_minutes,
        cast(activity_costs.used_minutes as decimal(18, 4)) as used_minutes,
        {{ double_as_decimal(ratio("activity_costs.used_minutes", "cost_centers.practical_capacity_minutes"), 9, 4) }} as utilisation,
        coalesce(activity_costs.used_minutes > cost_centers.practical_capacity_minutes, false) as is_over_capacity
    from ledger
    left join cost_centers on ledger.cost_center = cost_centers.cost_center
    left join activity_costs
        on ledger.period = activity_costs.period and ledger.cost_center = activity_costs.cost_center
)

select * from final
where {{ in_refresh_window('period') }}
