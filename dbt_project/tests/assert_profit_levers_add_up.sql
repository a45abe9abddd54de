{{ config(meta={"dagster": {"ref": {"name": "customer_profit_levers"}}}) }}
-- Each lever's profit at the norm is the customer's ABC profit plus the lever's excess cost, to the cent; the
-- excess is above zero (the lever is above its norm) and no more than the activity's cost; the customer's net
-- revenue and ABC profit are the customer_profitability figures of the window. Checks the periods the run
-- rebuilt.
with levers as (
    select * from {{ ref('customer_profit_levers') }}
    where {{ in_tested_window('period') }}
),

monthly as (
    select period, customer_id, net_revenue, abc_profit from {{ ref('customer_profitability') }}
)

select period, time_window, customer_id, activity
from levers
where profit_at_norm <> abc_profit + excess_cost
    or excess_cost <= 0
    or excess_cost > allocated_cost

union all

-- The window's sums are the customer's, whichever activity: summed once per customer, window and figures, and
-- each lever with figures that differ from them fails.
select levers.period, levers.time_window, levers.customer_id, levers.activity
from levers
inner join (
    select customers.period, customers.time_window, customers.customer_id, customers.net_revenue, customers.abc_profit
    from (select distinct period, time_window, customer_id, net_revenue, abc_profit from levers) as customers
    inner join monthly
        on monthly.customer_id = customers.customer_id
        and monthly.period <= customers.period
        and monthly.period > customers.period - interval 12 month
        and (customers.time_window = 't12m' or monthly.period = customers.period)
    group by customers.period, customers.time_window, customers.customer_id, customers.net_revenue, customers.abc_profit
    having sum(monthly.net_revenue) <> customers.net_revenue or sum(monthly.abc_profit) <> customers.abc_profit
) as differing
    on differing.period = levers.period
    and differing.time_window = levers.time_window
    and differing.customer_id = levers.customer_id
    and differing.net_revenue = levers.net_revenue
    and differing.abc_profit = levers.abc_profit
