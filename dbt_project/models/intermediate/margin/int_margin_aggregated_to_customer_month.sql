-- Product margin per customer and month. Sales belong to the month of order_date; a return (its credit,
-- restocked cost and list value) to the month of return_date, at the price and customer of the returned line
-- (a priced pre-history return: those its returns file gives, without a list value; an unpriced one: none).
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail') }}
-- not materialized: DuckDB would otherwise materialize every period before filtering
-- (cte_not_materialized: a DuckDB hint, nothing on Spark).
with order_lines as {{ cte_not_materialized() }} (
    select * from {{ ref('stg_erp__order_lines') }}
),

returns as (
    select * from {{ ref('int_returns_joined_to_order_lines') }}
),

products as (
    select * from {{ ref('stg_erp__products') }}
),

sales as (
    select
        order_lines.period,
        order_lines.customer_id,
        sum(order_lines.quantity * order_lines.unit_price) as gross_revenue,
        sum(order_lines.discount_amount) as discounts,
        cast(0 as decimal(18, 2)) as returns_credit,
        sum(order_lines.quantity * products.unit_cost) as cogs,
        sum(order_lines.quantity * products.list_price) as list_revenue
    from order_lines
    inner join products on order_lines.product_id = products.product_id
    group by order_lines.period, order_lines.customer_id
),

credits as (
    select
        period,
        customer_id,
        cast(0 as decimal(18, 2)) as gross_revenue,
        cast(0 as decimal(18, 2)) as discounts,
        sum(returned_quantity * unit_price) as returns_credit,
        -sum(returned_quantity * unit_cost) as cogs,
        -sum(returned_quantity * coalesce(list_price, 0)) as list_revenue
    from returns
    where is_priced
    group by period, customer_id
),

combined as (
    select * from sales
    union all
    select * from credits
),

final as (
    select
        period,
        customer_id,
        cast(sum(gross_revenue) as decimal(18, 2)) as gross_revenue,
        cast(sum(discounts) as decimal(18, 2)) as discounts,
        cast(sum(returns_credit) as decimal(18, 2)) as returns_credit,
        cast(sum(gross_revenue) - sum(discounts) - sum(returns_credit) as decimal(18, 2)) as net_revenue,
        cast(sum(cogs) as decimal(18, 2)) as cogs,
        cast(sum(gross_revenue) - sum(discounts) - sum(returns_credit) - sum(cogs) as decimal(18, 2)) as gross_margin,
        cast(sum(list_revenue) as decimal(18, 2)) as list_revenue
    from combined
    group by period, customer_id
)

select * from final
where {{ in_refresh_window('period') }}
