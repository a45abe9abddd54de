-- One row per customer and month with any revenue or any allocated cost (a month of support tickets and no
-- orders is a loss, and must show): product margin, cost-to-serve and ABC profit. The spine of the customer
-- profit marts and of the CLV summary.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail') }}
with margin as (
    select * from {{ ref('int_margin_aggregated_to_customer_month') }}
),

cost_to_serve as (
    select period, customer_id, cast(sum(allocated_cost) as decimal(38, 2)) as cost_to_serve
    from {{ ref('int_activity_costs_allocated_to_customers') }}
    group by period, customer_id
),

final as (
    select
        coalesce(margin.period, cost_to_serve.period) as period,
        coalesce(margin.customer_id, cost_to_serve.customer_id) as customer_id,
        coalesce(margin.gross_revenue, 0) as gross_revenue,
        coalesce(margin.discounts, 0) as discounts,
        coalesce(margin.returns_credit, 0) as returns_credit,
        coalesce(margin.net_revenue, 0) as net_revenue,
        coalesce(margin.cogs, 0) as cogs,
        coalesce(margin.gross_margin, 0) as gross_margin,
        coalesce(margin.list_revenue, 0) as list_revenue,
        coalesce(cost_to_serve.cost_to_serve, 0) as cost_to_serve,
        coalesce(margin.gross_margin, 0) - coalesce(cost_to_serve.cost_to_serve, 0) as abc_profit
    from margin
    full outer join cost_to_serve
        on margin.period = cost_to_serve.period and margin.customer_id = cost_to_serve.customer_id
)

select * from final
where {{ in_refresh_window('period') }}
