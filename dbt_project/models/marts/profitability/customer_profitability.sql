-- Customer profit per period under activity-based costing, beside traditional costing, with the
-- profitability views: profitable flag, profit decile and the Shapiro et al. (1987) profitability matrix.
-- A customer appears in a month when they have any revenue or any allocated cost in it (see the spine,
-- int_margin_joined_to_cost_to_serve).
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail') }}
with customer_months as (
    select * from {{ ref('int_margin_joined_to_cost_to_serve') }}
),

traditional as (
    select * from {{ ref('int_overhead_spread_by_revenue') }}
),

customers as (
    select * from {{ ref('stg_crm__customers') }}
),

joined as (
    select
        customer_months.period,
        customer_months.customer_id,
        customers.customer_name,
        customers.segment,
        customers.region,
        customer_months.gross_revenue,
        customer_months.discounts,
        customer_months.returns_credit,
        customer_months.net_revenue,
        customer_months.cogs,
        customer_months.gross_margin,
        customer_months.list_revenue,
        customer_months.cost_to_serve,
        coalesce(traditional.traditional_overhead, 0) as traditional_overhead
    from customer_months
    left join traditional
        on customer_months.period = traditional.period and customer_months.customer_id = traditional.customer_id
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
        period,
        median(net_price_realisation) as median_price_realisation,
        median(cost_to_serve_per_revenue) as median_cost_to_serve_per_revenue
    from measured
    where net_price_realisation is not null and cost_to_serve_per_revenue is not null
    group by period
),

final as (
    select
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
        cast(ntile(10) over (partition by measured.period order by measured.abc_profit desc, measured.customer_id)
            as integer) as profit_decile,
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
    left join medians on measured.period = medians.period
)

select * from final
where {{ in_refresh_window('period') }}
