-- Activity-based against traditional (revenue-spread) customer profit, per period and customer, with the
-- customers whose sign flips: profitable under one method and loss-making under the other, zero counting on
-- the profitable side. A hidden loss is traditional profit >= 0 and ABC profit < 0 (a month of support tickets
-- or visits and no revenue is one: no revenue, no overhead, traditional profit 0); a hidden profit the reverse.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail') }}
with profitability as (
    select * from {{ ref('customer_profitability') }}
),

compared as (
    select
        *,
        case
            when traditional_profit >= 0 and abc_profit < 0 then 'hidden_loss'
            when traditional_profit < 0 and abc_profit >= 0 then 'hidden_profit'
        end as flip_direction
    from profitability
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
        flip_direction is not null as sign_flip,
        flip_direction
    from compared
)

select * from final
where {{ in_refresh_window('period') }}
