-- customer_profitability per scenario: every column of it, for the scenario months (int_scenario_months), from
-- the scenario's margin, allocations and overhead spread. In scenario `actual` it equals customer_profitability
-- row for row (a test: assert_scenario_actual_equals_published).
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail', meta={'scenario_periods': 'rebuilt'}) }}
-- depends_on: {{ ref('int_scenario_periods') }}
with margin as (
    select * from {{ ref('int_scenario_margin') }}
    where {{ in_refresh_window('period') }}
),

cost_to_serve as (
    select scenario, period, customer_id, cast(sum(allocated_cost) as decimal(38, 2)) as cost_to_serve
    from {{ ref('int_scenario_allocations') }}
    where {{ in_refresh_window('period') }}
    group by scenario, period, customer_id
),

traditional as (
    select * from {{ ref('int_scenario_overhead') }}
    where {{ in_refresh_window('period') }}
),

customers as (
    select * from {{ ref('stg_crm__customers') }}
),

customer_months as (
    select
        coalesce(margin.scenario, cost_to_serve.scenario) as scenario,
        coalesce(margin.period, cost_to_serve.period) as period,
        coalesce(margin.customer_id, cost_to_serve.customer_id) as customer_id,
        coalesce(margin.gross_revenue, 0) as gross_revenue,
        coalesce(margin.discounts, 0) as discounts,
        coalesce(margin.returns_credit, 0) as returns_credit,
        coalesce(margin.net_revenue, 0) as net_revenue,
        coalesce(margin.cogs, 0) as cogs,
        coalesce(margin.gross_margin, 0) as gross_margin,
        coalesce(margin.list_revenue, 0) as list_revenue,
        coalesce(cost_to_serve.cost_to_serve, 0) as cost_to_serve
    from margin
    full outer join cost_to_serve
        on margin.scenario = cost_to_serve.scenario
        and margin.period = cost_to_serve.period
        and margin.customer_id = cost_to_serve.customer_id
),

joined as (
    select
        customer_months.*,
        customers.customer_name,
        customers.segment,
        customers.region,
        coalesce(traditional.traditional_overhead, 0) as traditional_overhead
    from customer_months
    left join traditional
        on customer_months.scenario = traditional.scenario
        and customer_months.period = traditional.period
        and customer_months.customer_id = traditional.customer_id
    left join customers on customer_months.customer_id = customers.customer_id
),

{{ customer_profit_ctes('joined', 'scenario, period') }}

select * from profit_views
