-- whale_curve per scenario, as of each scenario month: customers ranked by ABC profit over the trailing 12
-- months. The months of a window before the scenario months are actual's (customer_profitability): a scenario
-- changes nothing before its months. In scenario `actual` it equals whale_curve row for row.
with scenario_profit as (
    select scenario, period, customer_id, abc_profit from {{ ref('scenario_customer_profitability') }}
),

months as (
    select * from {{ ref('int_scenario_months') }}
),

bounds as (
    select min(period) as first_period from months
),

scenarios as (
    select distinct scenario from months
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

ranked as (
    select
        scenario,
        period,
        customer_id,
        profit_t12m,
        row_number() over (partition by scenario, period order by profit_t12m desc, customer_id) as customer_rank,
        sum(profit_t12m) over (
            partition by scenario, period order by profit_t12m desc, customer_id rows unbounded preceding
        ) as cumulative_profit,
        sum(profit_t12m) over (partition by scenario, period) as total_profit,
        count(*) over (partition by scenario, period) as customers
    from trailing_profit
),

final as (
    select
        ranked.scenario,
        ranked.period,
        cast(ranked.customer_rank as integer) as customer_rank,
        ranked.customer_id,
        cast(ranked.profit_t12m as decimal(18, 2)) as profit_t12m,
        cast(ranked.cumulative_profit as decimal(18, 2)) as cumulative_profit,
        {{ double_as_decimal(ratio("100 * ranked.cumulative_profit", "nullif(ranked.total_profit, 0)"), 12, 4) }}
            as cumulative_profit_pct,
        {{ double_as_decimal(ratio("100 * ranked.customer_rank", "ranked.customers"), 9, 4) }} as cumulative_customer_pct,
        cast(coverage.window_months as integer) as window_months,
        coverage.window_months = 12 as window_complete
    from ranked
    inner join coverage on ranked.scenario = coverage.scenario and ranked.period = coverage.period
)

select * from final
