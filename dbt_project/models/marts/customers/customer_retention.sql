-- Retention, acquisition and churn per month and segment (and 'all'), on trailing 12-month windows.
-- Active in a month = at least one order. For month P: the current window is P and the 11 months before it,
-- the prior window the 12 months before that. retained = active in both windows; churned = active in the
-- prior window but not the current one; new = first order ever in month P; retention_rate = retained / active
-- in the prior window (null until a prior window has any active customer).
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail', meta={'refresh_reach_months': 'all'}) }}
with drivers as (
    select * from {{ ref('int_drivers_aggregated_to_customer_month') }}
),

customers as (
    select * from {{ ref('stg_crm__customers') }}
),

-- A customer-month with orders (read from the driver volumes, a row per customer-month, not the order lines).
active_months as (
    select distinct customer_id, period from drivers where driver = 'orders'
),

first_orders as (
    select customer_id, min(period) as first_period from active_months group by customer_id
),

periods as (
    select distinct period from active_months
    where {{ in_refresh_window('period') }}
),

windows as (
    select
        periods.period,
        active_months.customer_id,
        bool_or(
            active_months.period > periods.period - interval 12 month and active_months.period <= periods.period
        ) as active_now,
        bool_or(
            active_months.period > periods.period - interval 24 month
            and active_months.period <= periods.period - interval 12 month
        ) as active_before
    from periods
    inner join active_months
        on active_months.period > periods.period - interval 24 month and active_months.period <= periods.period
    group by periods.period, active_months.customer_id
),

customer_status as (
    select
        windows.period,
        windows.customer_id,
        customers.segment,
        windows.active_now,
        windows.active_before,
        first_orders.first_period = windows.period as is_new
    from windows
    inner join customers on windows.customer_id = customers.customer_id
    inner join first_orders on windows.customer_id = first_orders.customer_id
),

by_segment as (
    select
        period,
        segment,
        count(*) filter (where active_now) as active_customers,
        count(*) filter (where active_before) as prior_active_customers,
        count(*) filter (where active_now and active_before) as retained_customers,
        count(*) filter (where is_new) as new_customers,
        count(*) filter (where active_before and not active_now) as churned_customers
    from customer_status
    group by grouping sets ((period, segment), (period))
),

final as (
    select
        period,
        coalesce(segment, 'all') as segment,
        cast(active_customers as integer) as active_customers,
        cast(prior_active_customers as integer) as prior_active_customers,
        cast(retained_customers as integer) as retained_customers,
        cast(new_customers as integer) as new_customers,
        cast(churned_customers as integer) as churned_customers,
        {{ double_as_decimal(ratio("retained_customers", "nullif(prior_active_customers, 0)"), 9, 4) }} as retention_rate
    from by_segment
)

select * from final
