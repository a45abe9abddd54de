{{ config(meta={"dagster": {"ref": {"name": "cost_center_capacity"}}}) }}
-- For each cost centre and month: assigned to activities + unused capacity + business-sustaining cost
-- = the centre's cost in the ledger, to the cent; and every ledger line is counted once.
with ledger as (
    select period, cost_center, sum(amount) as ledger_cost
    from {{ ref('stg_ledger__gl_costs') }}
    group by period, cost_center
),

capacity as (
    select * from {{ ref('cost_center_capacity') }}
)

select
    coalesce(ledger.period, capacity.period) as period,
    coalesce(ledger.cost_center, capacity.cost_center) as cost_center,
    ledger.ledger_cost as ledger_amount,
    capacity.assigned_cost,
    capacity.unused_capacity_cost,
    capacity.sustaining_cost
from ledger
full outer join capacity on ledger.period = capacity.period and ledger.cost_center = capacity.cost_center
where ledger.ledger_cost is null
    or capacity.ledger_cost is null
    or capacity.ledger_cost is distinct from ledger.ledger_cost
    or capacity.assigned_cost + capacity.unused_capacity_cost + capacity.sustaining_cost is distinct from ledger.ledger_cost
