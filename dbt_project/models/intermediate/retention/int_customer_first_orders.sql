-- Each customer's first month with an order in the warehouse, one row per customer, kept under that month: what
-- retention counts acquisitions on. A refresh from month W keeps the customers whose first order is before W (a
-- month before W is not rebuilt, so their first order stays) and adds those whose first order is in W or later,
-- read from the months of the window only, not every active month of history.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail', meta={'refresh_reach_months': 'all'}) }}
with active_months as (
    select distinct customer_id, period
    from {{ ref('int_drivers_aggregated_to_customer_month') }}
    where driver = 'orders' and {{ in_refresh_window('period') }}
),

{%- if is_incremental() %}

-- Customers whose first order is before the window (kept in their periods: outside the window).
earlier as (
    select customer_id from {{ this }} where not ({{ in_refresh_window('period') }})
),

first_orders as (
    select active_months.customer_id, min(active_months.period) as period
    from active_months
    left join earlier on active_months.customer_id = earlier.customer_id
    where earlier.customer_id is null
    group by active_months.customer_id
)
{%- else %}

first_orders as (
    select customer_id, min(period) as period
    from active_months
    group by customer_id
)
{%- endif %}

select period, customer_id from first_orders
