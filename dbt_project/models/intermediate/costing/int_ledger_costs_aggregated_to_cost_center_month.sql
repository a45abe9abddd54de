-- Indirect cost per cost centre and ledger period.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail') }}
with gl_costs as (
    select * from {{ ref('stg_ledger__gl_costs') }}
),

final as (
    select
        period,
        cost_center,
        cast(sum(amount) as decimal(18, 2)) as ledger_cost
    from gl_costs
    group by period, cost_center
)

select * from final
where {{ in_refresh_window('period') }}
