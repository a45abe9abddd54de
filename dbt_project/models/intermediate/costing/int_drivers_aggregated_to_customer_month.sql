-- Cost-driver volumes per customer and month, one row per (period, customer, driver) with a non-zero volume.
-- Each event counts in the month of its own date; a return counts for the customer of the returned line (a
-- pre-history return: the customer its returns file gives, or none).
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail') }}
-- not materialized: DuckDB would otherwise materialize every period before filtering
-- (cte_not_materialized: a DuckDB hint, nothing on Spark).
with order_lines as {{ cte_not_materialized() }} (
    select * from {{ ref('stg_erp__order_lines') }}
),

returns as (
    select * from {{ ref('int_returns_joined_to_order_lines') }}
),

tickets as (
    select * from {{ ref('stg_helpdesk__support_tickets') }}
),

visits as (
    select * from {{ ref('stg_crm__sales_visits') }}
),

orders as (
    select
        period,
        customer_id,
        order_id,
        count(*) as lines,
        bool_or(ship_mode = 'express') as is_express
    from order_lines
    group by period, customer_id, order_id
),

order_drivers as (
    select period, customer_id, 'orders' as driver, cast(count(*) as decimal(18, 4)) as driver_volume
    from orders group by period, customer_id
    union all
    select period, customer_id, 'order_lines', cast(sum(lines) as decimal(18, 4))
    from orders group by period, customer_id
    union all
    select period, customer_id, 'express_orders', cast(count(*) as decimal(18, 4))
    from orders where is_express group by period, customer_id
),

return_drivers as (
    select period, customer_id, 'returns' as driver, cast(count(*) as decimal(18, 4)) as driver_volume
    from returns
    where customer_id is not null
    group by period, customer_id
),

support_drivers as (
    select period, customer_id, 'support_minutes' as driver, cast(sum(handling_minutes) as decimal(18, 4)) as driver_volume
    from tickets
    group by period, customer_id
),

visit_drivers as (
    select period, customer_id, 'visit_minutes' as driver, cast(sum(visit_minutes) as decimal(18, 4)) as driver_volume
    from visits
    group by period, customer_id
),

final as (
    select * from order_drivers
    union all
    select * from return_drivers
    union all
    select * from support_drivers
    union all
    select * from visit_drivers
)

select * from final
where driver_volume <> 0 and {{ in_refresh_window('period') }}
