-- Company level per scenario and month, `actual` included: revenue, margin, cost to serve, ledger cost,
-- operating profit three ways (as company_reconciliation: gross margin - ledger = ABC customer profit - unused
-- capacity - sustaining cost = traditional customer profit; `balanced` says they agree to the cent), unused
-- capacity, unprofitable customers and the whale curve's peak; and each scenario's change against actual.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail', meta={'scenario_periods': 'whale_rebuilt'}) }}
-- depends_on: {{ ref('int_scenario_periods') }}
with customers as (
    select
        scenario,
        period,
        count(*) as customers,
        sum(case when abc_profit < 0 then 1 else 0 end) as unprofitable_customers,
        sum(net_revenue) as net_revenue,
        sum(gross_margin) as gross_margin,
        sum(cost_to_serve) as cost_to_serve,
        sum(abc_profit) as abc_customer_profit,
        sum(traditional_profit) as traditional_customer_profit
    from {{ ref('scenario_customer_profitability') }}
    where {{ in_refresh_window('period') }}
    group by scenario, period
),

centres as (
    select
        scenario,
        period,
        sum(ledger_cost) as ledger_cost,
        sum(unused_capacity_cost) as unused_capacity_cost,
        sum(sustaining_cost) as sustaining_cost
    from {{ ref('scenario_cost_center_capacity') }}
    where {{ in_refresh_window('period') }}
    group by scenario, period
),

peaks as (
    select scenario, period, max(cumulative_profit_pct) as whale_curve_peak_pct
    from {{ ref('scenario_whale_curve') }}
    where {{ in_refresh_window('period') }}
    group by scenario, period
),

months as (
    select * from {{ ref('int_scenario_months') }}
    where {{ in_refresh_window('period') }}
),

summary as (
    select
        months.scenario,
        months.period,
        cast(coalesce(customers.customers, 0) as integer) as customers,
        cast(coalesce(customers.unprofitable_customers, 0) as integer) as unprofitable_customers,
        cast(coalesce(customers.net_revenue, 0) as decimal(18, 2)) as net_revenue,
        cast(coalesce(customers.gross_margin, 0) as decimal(18, 2)) as gross_margin,
        cast(coalesce(customers.cost_to_serve, 0) as decimal(18, 2)) as cost_to_serve,
        cast(coalesce(centres.ledger_cost, 0) as decimal(18, 2)) as ledger_cost,
        cast(coalesce(customers.gross_margin, 0) - coalesce(centres.ledger_cost, 0) as decimal(18, 2))
            as operating_profit,
        cast(coalesce(customers.abc_customer_profit, 0) as decimal(18, 2)) as abc_customer_profit,
        cast(coalesce(centres.unused_capacity_cost, 0) as decimal(18, 2)) as unused_capacity_cost,
        cast(coalesce(centres.sustaining_cost, 0) as decimal(18, 2)) as sustaining_cost,
        cast(coalesce(customers.traditional_customer_profit, 0) as decimal(18, 2)) as traditional_customer_profit,
        peaks.whale_curve_peak_pct
    from months
    left join customers on months.scenario = customers.scenario and months.period = customers.period
    left join centres on months.scenario = centres.scenario and months.period = centres.period
    left join peaks on months.scenario = peaks.scenario and months.period = peaks.period
),

final as (
    select
        summary.*,
        summary.operating_profit = summary.abc_customer_profit - summary.unused_capacity_cost - summary.sustaining_cost
        and summary.operating_profit = summary.traditional_customer_profit as balanced,
        cast(summary.operating_profit - actual.operating_profit as decimal(18, 2)) as operating_profit_change,
        cast(summary.abc_customer_profit - actual.abc_customer_profit as decimal(18, 2)) as abc_customer_profit_change,
        cast(summary.unused_capacity_cost - actual.unused_capacity_cost as decimal(18, 2)) as unused_capacity_change,
        cast(summary.unprofitable_customers - actual.unprofitable_customers as integer) as unprofitable_customers_change,
        cast(summary.whale_curve_peak_pct - actual.whale_curve_peak_pct as decimal(12, 4)) as whale_curve_peak_pct_change
    from summary
    inner join summary as actual on actual.scenario = 'actual' and summary.period = actual.period
)

select * from final
