-- Each scenario against actual, per month and customer: ABC profit both ways, the change, whether the customer
-- changes side (a loss, ABC profit below zero, against none; zero counts on the profitable side, as in
-- costing_comparison and the scorecard), the profit decile of the month and the rank on
-- the whale curve (trailing 12 months) before and after. A customer in only one of the two (a scenario can
-- take a customer's last cost away) counts as zero profit, with no decile or rank, on the other side.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail', meta={'scenario_periods': 'whale_rebuilt'}) }}
-- depends_on: {{ ref('int_scenario_periods') }}
with profit as (
    select scenario, period, customer_id, segment, abc_profit, profit_decile
    from {{ ref('scenario_customer_profitability') }}
    where {{ in_refresh_window('period') }}
),

whale as (
    select scenario, period, customer_id, customer_rank, profit_t12m
    from {{ ref('scenario_whale_curve') }}
    where {{ in_refresh_window('period') }}
),

scenarios as (
    select distinct scenario from {{ ref('int_scenario_months') }}
    where scenario <> 'actual'
),

customer_months as (
    select scenarios.scenario, profit.period, profit.customer_id
    from profit
    inner join scenarios on profit.scenario = 'actual'
    union
    select profit.scenario, profit.period, profit.customer_id
    from profit
    where profit.scenario <> 'actual'
),

customers as (
    select customer_id, segment from {{ ref('stg_crm__customers') }}
),

compared as (
    select
        customer_months.scenario,
        customer_months.period,
        customer_months.customer_id,
        customers.segment,
        coalesce(actual.abc_profit, 0) as abc_profit_actual,
        coalesce(changed.abc_profit, 0) as abc_profit_scenario,
        actual.profit_decile as profit_decile_actual,
        changed.profit_decile as profit_decile_scenario,
        actual_whale.profit_t12m as profit_t12m_actual,
        changed_whale.profit_t12m as profit_t12m_scenario,
        actual_whale.customer_rank as whale_rank_actual,
        changed_whale.customer_rank as whale_rank_scenario
    from customer_months
    left join customers on customer_months.customer_id = customers.customer_id
    left join profit as actual
        on actual.scenario = 'actual'
        and customer_months.period = actual.period and customer_months.customer_id = actual.customer_id
    left join profit as changed
        on changed.scenario = customer_months.scenario
        and customer_months.period = changed.period and customer_months.customer_id = changed.customer_id
    left join whale as actual_whale
        on actual_whale.scenario = 'actual'
        and customer_months.period = actual_whale.period and customer_months.customer_id = actual_whale.customer_id
    left join whale as changed_whale
        on changed_whale.scenario = customer_months.scenario
        and customer_months.period = changed_whale.period
        and customer_months.customer_id = changed_whale.customer_id
),

final as (
    select
        scenario,
        period,
        customer_id,
        segment,
        cast(abc_profit_actual as decimal(18, 2)) as abc_profit_actual,
        cast(abc_profit_scenario as decimal(18, 2)) as abc_profit_scenario,
        cast(abc_profit_scenario - abc_profit_actual as decimal(18, 2)) as abc_profit_change,
        (abc_profit_actual < 0) <> (abc_profit_scenario < 0) as sign_flip,
        case
            when abc_profit_actual >= 0 and abc_profit_scenario < 0 then 'to_loss'
            when abc_profit_actual < 0 and abc_profit_scenario >= 0 then 'to_profit'
        end as flip_direction,
        profit_decile_actual,
        profit_decile_scenario,
        cast(profit_t12m_actual as decimal(18, 2)) as profit_t12m_actual,
        cast(profit_t12m_scenario as decimal(18, 2)) as profit_t12m_scenario,
        whale_rank_actual,
        whale_rank_scenario
    from compared
)

select * from final
