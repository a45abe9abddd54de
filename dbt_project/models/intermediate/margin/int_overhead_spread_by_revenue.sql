-- Traditional costing, for comparison (DESIGN.md costing method, step 5): all indirect cost of a period, every
-- cost centre including the business-sustaining ones, spread over that period's customers in proportion to
-- their net revenue (customers with no positive net revenue carry none), in whole cents adding up exactly.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail') }}
with ledger as (
    select period, sum(ledger_cost) as ledger_cost
    from {{ ref('int_ledger_costs_aggregated_to_cost_center_month') }}
    group by period
),

margin as (
    select * from {{ ref('int_margin_aggregated_to_customer_month') }}
    where net_revenue > 0
),

revenue_weights as (
    select
        margin.period,
        margin.customer_id,
        margin.net_revenue,
        ledger.ledger_cost
    from margin
    inner join ledger on margin.period = ledger.period
),

{{ overhead_spread_ctes('revenue_weights', 'period') }}

select * from overhead
where {{ in_refresh_window('period') }}
