-- Activity-based against traditional (revenue-spread) customer profit, per period and customer, with the
-- customers whose sign flips: profitable under one method and loss-making under the other.
{{ config(materialized='incremental', incremental_strategy='replace_periods', on_schema_change='fail') }}
with profitability as (
    select * from {{ ref('customer_profitability') }}
),

final as (
    select
        period,
        customer_id,
        segment,
        net_revenue,
        abc_profit,
        traditional_profit,
        cast(abc_profit - traditional_profit as decimal(18, 2)) as difference,
        (abc_profit > 0) <> (traditional_profit > 0) as sign_flip,
        case
            when traditional_profit > 0 and abc_profit <= 0 then 'hidden_loss'
            when traditional_profit <= 0 and abc_profit > 0 then 'hidden_profit'
        end as flip_direction
    from profitability
)

select * from final
where {{ in_refresh_window('period') }}
