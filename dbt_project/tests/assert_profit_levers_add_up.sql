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

select levers.period, levers.time_window, levers.customer_id, levers.activity
from levers
inner join monthly
    on monthly.customer_id = levers.customer_id
    and monthly.period <= levers.period
    and monthly.period > levers.period - interval 12 month
    and (levers.time_window = 't12m' or monthly.period = levers.period)
group by levers.period, levers.time_window, levers.customer_id, levers.activity, levers.net_revenue, levers.abc_profit
having sum(monthly.net_revenue) <> levers.net_revenue or sum(monthly.abc_profit) <> levers.abc_profit
