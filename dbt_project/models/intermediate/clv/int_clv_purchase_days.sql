-- One row per customer and purchase day (a day with at least one order): the day's value after line
-- discounts and its number of orders. Kept by month, so the CLV summary reads purchase days instead of
-- aggregating every order line of history on each refresh.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail') }}
with order_lines as (
    select * from {{ ref('stg_erp__order_lines') }}
),

purchase_days as (
    select
        period,
        customer_id,
        order_date,
        cast(sum(quantity * unit_price - discount_amount) as decimal(18, 2)) as purchase_value,
        cast(count(distinct order_id) as integer) as orders
    from order_lines
    where {{ in_refresh_window('period') }}
    group by period, customer_id, order_date
)

select * from purchase_days
