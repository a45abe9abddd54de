{{ config(meta={"dagster": {"ref": {"name": "company_reconciliation"}}}) }}
-- Company operating profit per month, to the cent:
--   sum gross margin - sum ledger cost = sum ABC customer profit - unused capacity - sustaining cost
--                                      = sum traditional customer profit.
-- The ledger side is taken from staging, independently of the marts.
with ledger as (
    select period, sum(amount) as ledger_cost
    from {{ ref('stg_ledger__gl_costs') }}
    group by period
),

reconciliation as (
    select * from {{ ref('company_reconciliation') }}
)

select
    coalesce(ledger.period, reconciliation.period) as period,
    ledger.ledger_cost as ledger_amount,
    reconciliation.*
from ledger
full outer join reconciliation on ledger.period = reconciliation.period
where ledger.ledger_cost is null
    or reconciliation.period is null
    or reconciliation.ledger_cost is distinct from ledger.ledger_cost
    or reconciliation.operating_profit is distinct from reconciliation.gross_margin - ledger.ledger_cost
    or reconciliation.abc_customer_profit - reconciliation.unused_capacity_cost - reconciliation.sustaining_cost
        is distinct from reconciliation.operating_profit
    or reconciliation.traditional_customer_profit is distinct from reconciliation.operating_profit
    or not reconciliation.balanced
