-- Company operating profit per period, three ways, to the cent (DESIGN.md costing method, step 6):
--   sum gross margin - ledger cost
--   = sum ABC customer profit - unused capacity - business-sustaining cost
--   = sum traditional customer profit.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail') }}
with customers as (
    select
        period,
        sum(gross_margin) as gross_margin,
        sum(abc_profit) as abc_customer_profit,
        sum(traditional_profit) as traditional_customer_profit
    from {{ ref('customer_profitability') }}
    group by period
),

centres as (
    select
        period,
        sum(ledger_cost) as ledger_cost,
        sum(unused_capacity_cost) as unused_capacity_cost,
        sum(sustaining_cost) as sustaining_cost
    from {{ ref('cost_center_capacity') }}
    group by period
),

final as (
    select
        coalesce(customers.period, centres.period) as period,
        cast(coalesce(customers.gross_margin, 0) as decimal(18, 2)) as gross_margin,
        cast(coalesce(centres.ledger_cost, 0) as decimal(18, 2)) as ledger_cost,
        cast(coalesce(customers.gross_margin, 0) - coalesce(centres.ledger_cost, 0) as decimal(18, 2))
            as operating_profit,
        cast(coalesce(customers.abc_customer_profit, 0) as decimal(18, 2)) as abc_customer_profit,
        cast(coalesce(centres.unused_capacity_cost, 0) as decimal(18, 2)) as unused_capacity_cost,
        cast(coalesce(centres.sustaining_cost, 0) as decimal(18, 2)) as sustaining_cost,
        cast(coalesce(customers.traditional_customer_profit, 0) as decimal(18, 2)) as traditional_customer_profit
    from customers
    full outer join centres on customers.period = centres.period
)

select
    *,
    operating_profit = abc_customer_profit - unused_capacity_cost - sustaining_cost
    and operating_profit = traditional_customer_profit as balanced
from final
where {{ in_refresh_window('period') }}
