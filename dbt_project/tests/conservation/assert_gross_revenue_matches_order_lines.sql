{{ config(meta={"dagster": {"ref": {"name": "customer_profitability"}}}) }}
-- Revenue is neither lost nor double counted on its way from the order lines to the customer marts.
with lines as (
    select period, sum(quantity * unit_price) as gross_revenue, sum(discount_amount) as discounts
    from {{ ref('stg_erp__order_lines') }}
    group by period
),

marts as (
    select period, sum(gross_revenue) as gross_revenue, sum(discounts) as discounts
    from {{ ref('customer_profitability') }}
    group by period
)

select coalesce(lines.period, marts.period) as period, lines.gross_revenue, marts.gross_revenue as mart_revenue
from lines
full outer join marts on lines.period = marts.period
where coalesce(lines.gross_revenue, 0) <> coalesce(marts.gross_revenue, 0)
    or coalesce(lines.discounts, 0) <> coalesce(marts.discounts, 0)
