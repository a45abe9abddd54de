-- Whale curve as of each period: customers ranked by ABC profit over the trailing 12 months (the as-of month
-- and the 11 before it), with cumulative profit as a percentage of the total. The curve's peak shows how much
-- more than the total the profitable customers earn; the tail shows the customers who destroy it.
-- Near the start of history (the first month in the warehouse) the window holds fewer than 12 months:
-- window_months counts them, window_complete says when it holds all 12.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail', meta={'refresh_reach_months': 11}) }}
with customer_months as (
    select period, customer_id, abc_profit from {{ ref('customer_profitability') }}
),

as_of as (
    select distinct period as as_of_period from customer_months
    where {{ in_refresh_window('period') }}
),

trailing_profit as (
    select
        as_of.as_of_period as period,
        customer_months.customer_id,
        sum(customer_months.abc_profit) as profit_t12m
    from as_of
    inner join customer_months
        on customer_months.period > as_of.as_of_period - interval 12 month
        and customer_months.period <= as_of.as_of_period
    group by as_of.as_of_period, customer_months.customer_id
),

-- The months of history in each window (every month in the warehouse has customer rows).
coverage as (
    select
        as_of.as_of_period as period,
        count(distinct customer_months.period) as window_months
    from as_of
    inner join customer_months
        on customer_months.period > as_of.as_of_period - interval 12 month
        and customer_months.period <= as_of.as_of_period
    group by as_of.as_of_period
),

{{ whale_curve_ctes('trailing_profit', 'coverage', 'period') }}

select * from whale_ranked
