-- The per-customer purchase summary the CLV models are fitted on, as of the end of each month in the data
-- (time unit: days). A purchase is a day with at least one order: frequency counts the repeat purchase days
-- after the first, recency is the age at the last purchase, T the age at the month end, and monetary_value
-- the mean value (after line discounts) of the repeat purchase days, rounded half away from zero to the cent.
-- Also carries what profit CLV needs from activity-based costing over the trailing 12 months, with the
-- purchase days of that window: cost-to-serve is divided per purchase day, the transaction the models count
-- (a customer who orders twice on a day makes one purchase, and bears that day's cost once per purchase).
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail', meta={'refresh_reach_months': 'all'}) }}
with purchase_days as (
    select * from {{ ref('int_clv_purchase_days') }}
),

-- Each customer's purchase days up to the as-of date, summed and carried forward month by month
-- (int_clv_customer_state): the summary reads the months it rebuilds, not every purchase day of history.
state as (
    select * from {{ ref('int_clv_customer_state') }}
    where {{ in_refresh_window('period') }}
),

-- not materialized: referenced twice, and DuckDB would otherwise materialize every period before filtering
-- (cte_not_materialized: a DuckDB hint, nothing on Spark).
profitability as {{ cte_not_materialized() }} (
    select * from {{ ref('int_margin_joined_to_cost_to_serve') }}
),

as_of as (
    select distinct period
    from profitability
    where {{ in_refresh_window('period') }}
),

-- The repeat purchase days are every purchase day but the first: their number is purchase_days - 1 and their
-- value the total less the first day's, whose mean is rounded as rounded_mean rounds the days' values.
summary as (
    select
        period,
        customer_id,
        purchase_days - 1 as frequency,
        {{ dbt.datediff('first_purchase', 'last_purchase', 'day') }} as recency,
        {{ dbt.datediff('first_purchase', 'cast(period + interval 1 month - interval 1 day as date)', 'day') }} as t,
        coalesce(
            {{ rounded_quotient('purchase_value - first_purchase_value', 'purchase_days - 1', 2, 2) }}, 0
        ) as monetary_value
    from state
),

trailing_figures as (
    select
        as_of.period,
        profitability.customer_id,
        sum(profitability.abc_profit) as profit_t12m,
        sum(profitability.net_revenue) as net_revenue_t12m,
        sum(profitability.gross_margin) as gross_margin_t12m,
        sum(profitability.cost_to_serve) as cost_to_serve_t12m
    from as_of
    inner join profitability
        on profitability.period > as_of.period - interval 12 month and profitability.period <= as_of.period
    where {{ in_trailing_reach('profitability.period', 12) }}
    group by as_of.period, profitability.customer_id
),

trailing_purchase_days as (
    select
        as_of.period,
        purchase_days.customer_id,
        count(*) as purchase_days_t12m
    from as_of
    -- the window of trailing_figures, by month: a month-end date minus 12 months is not a month-end date
    -- (2025-02-28 - 12 months = 2024-02-28 would let 2024-02-29 in)
    inner join purchase_days
        on purchase_days.period > as_of.period - interval 12 month and purchase_days.period <= as_of.period
    where {{ in_trailing_reach('purchase_days.period', 12) }}
    group by as_of.period, purchase_days.customer_id
),

final as (
    select
        summary.period,
        summary.customer_id,
        cast(summary.frequency as integer) as frequency,
        cast(summary.recency as integer) as recency,
        cast(summary.t as integer) as t,
        {{ double_as_decimal('summary.monetary_value', 18, 2) }} as monetary_value,
        cast(coalesce(trailing_figures.profit_t12m, 0) as decimal(18, 2)) as profit_t12m,
        cast(coalesce(trailing_figures.net_revenue_t12m, 0) as decimal(18, 2)) as net_revenue_t12m,
        cast(coalesce(trailing_figures.gross_margin_t12m, 0) as decimal(18, 2)) as gross_margin_t12m,
        cast(coalesce(trailing_figures.cost_to_serve_t12m, 0) as decimal(18, 2)) as cost_to_serve_t12m,
        cast(coalesce(trailing_purchase_days.purchase_days_t12m, 0) as integer) as purchase_days_t12m
    from summary
    left join trailing_figures
        on summary.period = trailing_figures.period and summary.customer_id = trailing_figures.customer_id
    left join trailing_purchase_days
        on summary.period = trailing_purchase_days.period
        and summary.customer_id = trailing_purchase_days.customer_id
)

select * from final
