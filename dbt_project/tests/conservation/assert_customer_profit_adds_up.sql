{{ config(meta={"dagster": {"ref": {"name": "customer_profitability"}}}) }}
-- Within each customer and month: cost_to_serve = the sum of its activity allocations, the margin identities
-- hold, and the product margin matches the order lines and returns it came from. Checks the periods the run
-- rebuilt (in_tested_window: every period on a full build).
with allocations as (
    select period, customer_id, sum(allocated_cost) as allocated_cost
    from {{ ref('customer_cost_to_serve') }}
    where {{ in_tested_window('period') }}
    group by period, customer_id
),

profitability as (
    select * from {{ ref('customer_profitability') }}
    where {{ in_tested_window('period') }}
)

select profitability.period, profitability.customer_id
from profitability
left join allocations
    on profitability.period = allocations.period and profitability.customer_id = allocations.customer_id
where profitability.cost_to_serve is distinct from coalesce(allocations.allocated_cost, 0)
    or profitability.net_revenue is distinct from profitability.gross_revenue - profitability.discounts - profitability.returns_credit
    or profitability.gross_margin is distinct from profitability.net_revenue - profitability.cogs
    or profitability.abc_profit is distinct from profitability.gross_margin - profitability.cost_to_serve
    or profitability.traditional_profit is distinct from profitability.gross_margin - profitability.traditional_overhead

union all

-- Every allocation belongs to a customer-month of customer_profitability.
select allocations.period, allocations.customer_id
from allocations
anti join profitability
    on allocations.period = profitability.period and allocations.customer_id = profitability.customer_id
