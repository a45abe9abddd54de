-- Retention, acquisition and churn per month and segment (and 'all'), on trailing 12-month windows.
-- Active in a month = at least one order. For month P: the current window is P and the 11 months before it,
-- the prior window the 12 months before that. retained = active in both windows; churned = active in the
-- prior window but not the current one; retention_rate = retained / active in the prior window (null while no
-- one was). new = first order in the warehouse in month P, unless the CRM dates the customer's acquisition
-- before the start of history (the first month in the warehouse): such a customer was a customer before
-- history started, and their first order in it is not an acquisition.
-- Near the start of history the windows hold fewer months than their 12: window_months and
-- prior_window_months count the months of history in each, and window_complete is true when both hold 12.
-- Every segment has a row every month (zeros where it has no customer).
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail', meta={'refresh_reach_months': 'all'}) }}
with drivers as (
    select * from {{ ref('int_drivers_aggregated_to_customer_month') }}
),

customers as (
    select * from {{ ref('stg_crm__customers') }}
),

-- The months in the warehouse (every month has customer rows): history starts at the first of them.
history as (
    select period from {{ ref('int_history_months') }}
),

-- A customer-month with orders (read from the driver volumes, a row per customer-month, not the order lines),
-- in the 24 months the windows of the rebuilt months reach.
active_months as (
    select distinct customer_id, period from drivers
    where driver = 'orders' and {{ in_trailing_reach('period', 24) }}
),

-- Each customer's first month with an order, carried forward (int_customer_first_orders).
first_orders as (
    select customer_id, period as first_period from {{ ref('int_customer_first_orders') }}
),

acquisitions as (
    select first_orders.customer_id, first_orders.first_period
    from first_orders
    inner join customers on first_orders.customer_id = customers.customer_id
    where customers.acquired_date >= (select min(period) from history)
),

periods as (
    select period from history
    where {{ in_refresh_window('period') }}
),

coverage as (
    select
        periods.period,
        count(*) filter (where history.period > periods.period - interval 12 month) as window_months,
        count(*) filter (where history.period <= periods.period - interval 12 month) as prior_window_months
    from periods
    inner join history
        on history.period > periods.period - interval 24 month and history.period <= periods.period
    group by periods.period
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
        coalesce(acquisitions.first_period = windows.period, false) as is_new
    from windows
    inner join customers on windows.customer_id = customers.customer_id
    left join acquisitions on windows.customer_id = acquisitions.customer_id
),

by_segment as (
    select
        period,
        coalesce(segment, 'all') as segment,
        count(*) filter (where active_now) as active_customers,
        count(*) filter (where active_before) as prior_active_customers,
        count(*) filter (where active_now and active_before) as retained_customers,
        count(*) filter (where is_new) as new_customers,
        count(*) filter (where active_before and not active_now) as churned_customers
    from customer_status
    group by grouping sets ((period, segment), (period))
),

-- Every month has a row for every segment and 'all'.
segments as (
    select distinct segment from customers
    union
    select 'all' as segment
),

final as (
    select
        periods.period,
        segments.segment,
        cast(coalesce(by_segment.active_customers, 0) as integer) as active_customers,
        cast(coalesce(by_segment.prior_active_customers, 0) as integer) as prior_active_customers,
        cast(coalesce(by_segment.retained_customers, 0) as integer) as retained_customers,
        cast(coalesce(by_segment.new_customers, 0) as integer) as new_customers,
        cast(coalesce(by_segment.churned_customers, 0) as integer) as churned_customers,
        {{ double_as_decimal(ratio("by_segment.retained_customers", "nullif(by_segment.prior_active_customers, 0)"), 9, 4) }}
            as retention_rate,
        cast(coverage.window_months as integer) as window_months,
        cast(coverage.prior_window_months as integer) as prior_window_months,
        coverage.window_months = 12 and coverage.prior_window_months = 12 as window_complete
    from periods
    cross join segments
    inner join coverage on periods.period = coverage.period
    left join by_segment on periods.period = by_segment.period and segments.segment = by_segment.segment
)

select * from final
