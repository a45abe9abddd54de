-- customer_profitability per scenario: every column of it, for the scenario months (int_scenario_months), from
-- the scenario's margin, allocations and overhead spread. In scenario `actual` it equals customer_profitability
-- row for row (a test: assert_scenario_actual_equals_published).
with margin as (
    select * from {{ ref('int_scenario_margin') }}
),

cost_to_serve as (
    select scenario, period, customer_id, cast(sum(allocated_cost) as decimal(38, 2)) as cost_to_serve
    from {{ ref('int_scenario_allocations') }}
    group by scenario, period, customer_id
),

traditional as (
    select * from {{ ref('int_scenario_overhead') }}
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

measured as (
    select
        *,
        gross_margin - cost_to_serve as abc_profit,
        gross_margin - traditional_overhead as traditional_profit,
        case when list_revenue > 0 and net_revenue > 0 then {{ ratio("net_revenue", "list_revenue") }} end as net_price_realisation,
        case when net_revenue > 0 then {{ ratio("cost_to_serve", "net_revenue") }} end as cost_to_serve_per_revenue
    from joined
),

medians as (
    select
        scenario,
        period,
        median(net_price_realisation) as median_price_realisation,
        median(cost_to_serve_per_revenue) as median_cost_to_serve_per_revenue
    from measured
    where net_price_realisation is not null and cost_to_serve_per_revenue is not null
    group by scenario, period
),

final as (
    select
        measured.scenario,
        measured.period,
        measured.customer_id,
        measured.customer_name,
        measured.segment,
        measured.region,
        cast(measured.gross_revenue as decimal(18, 2)) as gross_revenue,
        cast(measured.discounts as decimal(18, 2)) as discounts,
        cast(measured.returns_credit as decimal(18, 2)) as returns_credit,
        cast(measured.net_revenue as decimal(18, 2)) as net_revenue,
        cast(measured.cogs as decimal(18, 2)) as cogs,
        cast(measured.gross_margin as decimal(18, 2)) as gross_margin,
        cast(measured.cost_to_serve as decimal(18, 2)) as cost_to_serve,
        cast(measured.abc_profit as decimal(18, 2)) as abc_profit,
        cast(measured.traditional_overhead as decimal(18, 2)) as traditional_overhead,
        cast(measured.traditional_profit as decimal(18, 2)) as traditional_profit,
        measured.abc_profit > 0 as is_profitable,
        cast(ntile(10) over (
            partition by measured.scenario, measured.period order by measured.abc_profit desc, measured.customer_id
        ) as integer) as profit_decile,
        case
            when measured.net_price_realisation is null or measured.cost_to_serve_per_revenue is null
                then 'unclassified'
            when measured.net_price_realisation >= medians.median_price_realisation
                then case when measured.cost_to_serve_per_revenue >= medians.median_cost_to_serve_per_revenue
                    then 'carriage_trade' else 'passive' end
            else case when measured.cost_to_serve_per_revenue >= medians.median_cost_to_serve_per_revenue
                then 'aggressive' else 'bargain_basement' end
        end as matrix_quadrant,
        cast(measured.list_revenue as decimal(18, 2)) as list_revenue,
        {{ double_as_decimal('measured.net_price_realisation', 9, 6) }} as net_price_realisation,
        {{ double_as_decimal('measured.cost_to_serve_per_revenue', 12, 6) }} as cost_to_serve_per_revenue
    from measured
    left join medians on measured.scenario = medians.scenario and measured.period = medians.period
)

select * from final
