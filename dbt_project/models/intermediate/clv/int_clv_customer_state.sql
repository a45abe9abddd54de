-- Per customer and as-of month (the month's last day): the running summary of the customer's purchase days up
-- to it, what the CLV summary derives frequency, recency, T and monetary_value from: the first and last
-- purchase day, the number of purchase days, the exact DECIMAL sum of their values and the first day's value
-- (the repeat purchase days are every day but the first: their sum is the total minus the first day's).
-- Carried forward: a refresh from month W reads this model's own rows of the last as-of month before W and the
-- purchase days after that month only, not every purchase day of history. Without such a month (a full build, a
-- refresh from the start of history, a backfill of older months) it reads every purchase day.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail', meta={'refresh_reach_months': 'all'}) }}
{%- set carried_from = carried_state_period() %}
with purchase_days as (
    select * from {{ ref('int_clv_purchase_days') }}
    {%- if carried_from %}
    where period > date '{{ carried_from }}'
    {%- endif %}
),

as_of as (
    select distinct period
    from {{ ref('int_margin_joined_to_cost_to_serve') }}
    where {{ in_refresh_window('period') }}
),

-- The purchase days read, per customer and month (a purchase day's period is its month).
monthly as (
    select
        customer_id,
        period,
        min(order_date) as first_purchase,
        max(order_date) as last_purchase,
        count(*) as purchase_days,
        sum(purchase_value) as purchase_value
    from purchase_days
    group by customer_id, period
),

-- Each customer's first purchase day among those read, with its value: the first purchase of a customer the
-- carried state does not hold.
first_days as (
    select
        purchase_days.customer_id,
        purchase_days.purchase_value as first_purchase_value
    from purchase_days
    inner join (
        select customer_id, min(order_date) as first_purchase from purchase_days group by customer_id
    ) as firsts
        on purchase_days.customer_id = firsts.customer_id and purchase_days.order_date = firsts.first_purchase
),

-- What the purchase days read add up to as of each month rebuilt.
added as (
    select
        as_of.period,
        monthly.customer_id,
        min(monthly.first_purchase) as first_purchase,
        max(monthly.last_purchase) as last_purchase,
        sum(monthly.purchase_days) as purchase_days,
        sum(monthly.purchase_value) as purchase_value
    from as_of
    inner join monthly on monthly.period <= as_of.period
    group by as_of.period, monthly.customer_id
),

{%- if carried_from %}

-- The state as of the last month before the refresh window, carried to every month rebuilt.
carried as (
    select
        as_of.period,
        earlier.customer_id,
        earlier.first_purchase,
        earlier.last_purchase,
        earlier.purchase_days,
        earlier.purchase_value,
        earlier.first_purchase_value
    from as_of
    cross join (select * from {{ this }} where period = date '{{ carried_from }}') as earlier
),

state as (
    select
        coalesce(carried.period, added.period) as period,
        coalesce(carried.customer_id, added.customer_id) as customer_id,
        coalesce(carried.first_purchase, added.first_purchase) as first_purchase,
        coalesce(added.last_purchase, carried.last_purchase) as last_purchase,
        coalesce(carried.purchase_days, 0) + coalesce(added.purchase_days, 0) as purchase_days,
        coalesce(carried.purchase_value, 0) + coalesce(added.purchase_value, 0) as purchase_value,
        coalesce(carried.first_purchase_value, first_days.first_purchase_value) as first_purchase_value
    from carried
    full outer join added on carried.period = added.period and carried.customer_id = added.customer_id
    left join first_days on added.customer_id = first_days.customer_id
),
{%- else %}

state as (
    select
        added.period,
        added.customer_id,
        added.first_purchase,
        added.last_purchase,
        added.purchase_days,
        added.purchase_value,
        first_days.first_purchase_value
    from added
    inner join first_days on added.customer_id = first_days.customer_id
),
{%- endif %}

final as (
    select
        period,
        customer_id,
        first_purchase,
        last_purchase,
        cast(purchase_days as integer) as purchase_days,
        cast(purchase_value as decimal(38, 2)) as purchase_value,
        cast(first_purchase_value as decimal(18, 2)) as first_purchase_value
    from state
)

select * from final
