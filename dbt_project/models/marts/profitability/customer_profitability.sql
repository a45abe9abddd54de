-- Customer profit per period under activity-based costing, beside traditional costing, with the
-- profitability views: profitable flag, profit decile and the Shapiro et al. (1987) profitability matrix.
-- A customer appears in a month when they have any revenue or any allocated cost in it (see the spine,
-- int_margin_joined_to_cost_to_serve).
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail') }}
with customer_months as (
    select * from {{ ref('int_margin_joined_to_cost_to_serve') }}
),

traditional as (
    select * from {{ ref('int_overhead_spread_by_revenue') }}
),

customers as (
    select * from {{ ref('stg_crm__customers') }}
),

joined as (
    select
        customer_months.period,
        customer_months.customer_id,
        customers.customer_name,
        customers.segment,
        customers.region,
        customer_months.gross_revenue,
        customer_months.discounts,
        customer_months.returns_credit,
        customer_months.net_revenue,
        customer_months.cogs,
        customer_months.gross_margin,
        customer_months.list_revenue,
        customer_months.cost_to_serve,
        coalesce(traditional.traditional_overhead, 0) as traditional_overhead
    from customer_months
    left join traditional
        on customer_months.period = traditional.period and customer_months.customer_id = traditional.customer_id
    left join customers on customer_months.customer_id = customers.customer_id
),

{{ customer_profit_ctes('joined', 'period') }}

select * from profit_views
where {{ in_refresh_window('period') }}
