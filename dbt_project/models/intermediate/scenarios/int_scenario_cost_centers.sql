-- Each cost centre per scenario and month: its ledger cost and practical capacity after the scenario's
-- `ledger_cost` and `practical_capacity_minutes` changes (docs/DESIGN.md, Scenarios). Money is rounded half away
-- from zero to the cent; a capacity to whole minutes, the unit the reference file gives it in.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail', meta={'scenario_periods': 'rebuilt'}) }}
-- depends_on: {{ ref('int_scenario_periods') }}
with months as (
    select * from {{ ref('int_scenario_months') }}
    where {{ in_refresh_window('period') }}
),

ledger as (
    select * from {{ ref('int_ledger_costs_aggregated_to_cost_center_month') }}
),

cost_centers as (
    select * from {{ ref('stg_config__cost_centers') }}
),

changes as (
    select * from {{ ref('int_scenario_changes') }}
),

centre_months as (
    select months.scenario, ledger.period, ledger.cost_center, ledger.ledger_cost
    from months
    inner join ledger on months.period = ledger.period
),

final as (
    select
        centre_months.scenario,
        centre_months.period,
        centre_months.cost_center,
        cost_centers.is_business_sustaining,
        cast(round({{ scenario_applied('centre_months.ledger_cost', 'ledger_change') }}, 2) as decimal(18, 2))
            as ledger_cost,
        cast(
            round({{ scenario_applied('cost_centers.practical_capacity_minutes', 'capacity_change') }}, 0)
            as bigint
        ) as practical_capacity_minutes
    from centre_months
    left join cost_centers on centre_months.cost_center = cost_centers.cost_center
    left join changes as ledger_change
        on {{ scenario_change_applies('ledger_change', 'centre_months', 'ledger_cost') }}
        and ledger_change.target_name = centre_months.cost_center
    left join changes as capacity_change
        on {{ scenario_change_applies('capacity_change', 'centre_months', 'practical_capacity_minutes') }}
        and capacity_change.target_name = centre_months.cost_center
)

select * from final
