{{ config(meta={"dagster": {"ref": {"name": "scenario_summary"}}}) }}
-- In every scenario and month, to the cent: sum gross margin - the scenario's ledger cost
--   = sum ABC customer profit - unused capacity - business-sustaining cost = sum traditional customer profit;
-- and the summary's ledger is the sum of the scenario's cost centres.
with ledger as (
    select scenario, period, sum(ledger_cost) as ledger_cost
    from {{ ref('int_scenario_cost_centers') }}
    group by scenario, period
),

summary as (
    select * from {{ ref('scenario_summary') }}
)

select summary.*
from summary
left join ledger on summary.scenario = ledger.scenario and summary.period = ledger.period
where summary.ledger_cost is distinct from coalesce(ledger.ledger_cost, 0)
    or summary.operating_profit is distinct from summary.gross_margin - summary.ledger_cost
    or summary.abc_customer_profit - summary.unused_capacity_cost - summary.sustaining_cost
        is distinct from summary.operating_profit
    or summary.traditional_customer_profit is distinct from summary.operating_profit
    or not summary.balanced
