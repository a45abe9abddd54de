-- whale_curve per scenario, as of each scenario month: customers ranked by ABC profit over the trailing 12
-- months. The months of a window before the scenario months are actual's (customer_profitability): a scenario
-- changes nothing before its months. In scenario `actual` it equals whale_curve row for row.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail', meta={'scenario_periods': 'whale_rebuilt'}) }}
-- depends_on: {{ ref('int_scenario_periods') }}
with all_months as (
    select * from {{ ref('int_scenario_months') }}
),

-- the as-of months the run rebuilds
months as (
    select * from all_months
    where {{ in_refresh_window('period') }}
),

-- the months their trailing windows read
reach as (
    select
        min(cast({{ dbt.dateadd('month', -11, 'period') }} as date)) as first_period,
        max(period) as last_period
    from months
),

scenario_profit as (
    select profit.scenario, profit.period, profit.customer_id, profit.abc_profit
    from {{ ref('scenario_customer_profitability') }} as profit
    cross join reach
    where profit.period between reach.first_period and reach.last_period
),

bounds as (
    select min(period) as first_period from all_months
),

scenarios as (
    select distinct scenario from all_months
),

earlier_profit as (
    select scenarios.scenario, actual.period, actual.customer_id, actual.abc_profit
    from {{ ref('customer_profitability') }} as actual
    cross join bounds
    cross join scenarios
    where actual.period < bounds.first_period and actual.period > bounds.first_period - interval 12 month
),

customer_months as (
    select * from scenario_profit
    union all
    select * from earlier_profit
),

trailing_profit as (
    select
        months.scenario,
        months.period,
        customer_months.customer_id,
        sum(customer_months.abc_profit) as profit_t12m
    from months
    inner join customer_months
        on customer_months.scenario = months.scenario
        and customer_months.period > months.period - interval 12 month
        and customer_months.period <= months.period
    group by months.scenario, months.period, customer_months.customer_id
),

-- The months of history in each window (every month in the warehouse has customer rows).
coverage as (
    select
        months.scenario,
        months.period,
        count(distinct customer_months.period) as window_months
    from months
    inner join customer_months
        on customer_months.scenario = months.scenario
        and customer_months.period > months.period - interval 12 month
        and customer_months.period <= months.period
    group by months.scenario, months.period
),

{{ whale_curve_ctes('trailing_profit', 'coverage', 'scenario, period') }}

select * from whale_ranked
