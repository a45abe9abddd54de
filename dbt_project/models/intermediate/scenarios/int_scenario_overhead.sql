-- Traditional costing per scenario (the costing method's step 5, int_overhead_spread_by_revenue): the
-- scenario's indirect cost of the month, every centre, spread over its customers in proportion to their
-- scenario net revenue (customers with none positive carry none), in whole cents adding up exactly.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail', meta={'scenario_periods': 'rebuilt'}) }}
-- depends_on: {{ ref('int_scenario_periods') }}
with ledger as (
    select scenario, period, sum(ledger_cost) as ledger_cost
    from {{ ref('int_scenario_cost_centers') }}
    where {{ in_refresh_window('period') }}
    group by scenario, period
),

margin as (
    select * from {{ ref('int_scenario_margin') }}
    where net_revenue > 0 and {{ in_refresh_window('period') }}
),

revenue_weights as (
    select
        margin.scenario,
        margin.period,
        margin.customer_id,
        margin.net_revenue,
        ledger.ledger_cost
    from margin
    inner join ledger on margin.scenario = ledger.scenario and margin.period = ledger.period
),

{{ overhead_spread_ctes('revenue_weights', 'scenario, period') }}

select * from overhead
