-- Why a customer loses money, and what would change it (DESIGN.md "Why a customer loses money"): per as-of
-- period, window (the month itself, and the trailing 12 months), customer and activity, each activity whose cost
-- per unit of the customer's net revenue exceeds the median of the customer's segment, with the driver volume
-- that would put it at that median (the norm), the cost above it, the profit at the norm and the price change
-- that breaks even. A customer without positive net revenue has no cost per unit of revenue: it is left out of
-- the medians and listed with every activity it carries (lever_reason 'no_net_revenue'), its norm being zero.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail', meta={'refresh_reach_months': 11}) }}
with months as (
    select distinct period, year(period) * 12 + month(period) as month_index
    from {{ ref('customer_profitability') }}
),

as_of as (
    select period as as_of_period, month_index from months
    where {{ in_refresh_window('period') }}
),

-- The months of each window: the as-of month alone, and the trailing 12 months (fewer near the start of history).
window_periods as (
    select as_of_period, 'month' as time_window, as_of_period as period from as_of
    union all
    select as_of.as_of_period, 't12m' as time_window, months.period
    from as_of
    inner join months
        on months.month_index > as_of.month_index - 12
        and months.month_index <= as_of.month_index
),

coverage as (
    select as_of_period, time_window, count(*) as window_months
    from window_periods
    group by as_of_period, time_window
),

-- The months the as-of months' windows read: the 12 up to the last as-of month, and their rows.
read_months as (
    select period, month_index from months
    where month_index > (select min(month_index) from as_of) - 12
),

customer_months as (
    select profit.period, read_months.month_index, profit.customer_id, profit.segment, profit.net_revenue,
        profit.abc_profit
    from {{ ref('customer_profitability') }} as profit
    inner join read_months on read_months.period = profit.period
),

cost_to_serve as (
    select
        cost.period, read_months.month_index, cost.customer_id, cost.activity, cost.cost_center, cost.driver,
        cost.driver_volume, cost.allocated_cost
    from {{ ref('customer_cost_to_serve') }} as cost
    inner join read_months on read_months.period = cost.period
),

-- The trailing 12 months as running sums over each customer's (and customer and activity's) months.
customer_t12m as (
    {{ trailing_12_months('customer_months', ['customer_id'], ['segment'], ['net_revenue', 'abc_profit']) }}
),

activity_t12m as (
    {{ trailing_12_months(
        'cost_to_serve', ['customer_id', 'activity'], ['cost_center', 'driver'], ['driver_volume', 'allocated_cost']
    ) }}
),

customers as (
    select as_of.as_of_period, 'month' as time_window, customer_months.customer_id,
        max(customer_months.segment) as segment,
        sum(customer_months.net_revenue) as net_revenue,
        sum(customer_months.abc_profit) as abc_profit
    from as_of
    inner join customer_months on customer_months.period = as_of.as_of_period
    group by as_of.as_of_period, customer_months.customer_id
    union all
    select customer_t12m.as_of_period, 't12m' as time_window, customer_id, segment, net_revenue, abc_profit
    from customer_t12m
    inner join as_of on as_of.as_of_period = customer_t12m.as_of_period
),

activities as (
    select
        as_of.as_of_period,
        'month' as time_window,
        cost_to_serve.customer_id,
        cost_to_serve.activity,
        max(cost_to_serve.cost_center) as cost_center,
        max(cost_to_serve.driver) as driver,
        sum(cost_to_serve.driver_volume) as driver_volume,
        sum(cost_to_serve.allocated_cost) as allocated_cost
    from as_of
    inner join cost_to_serve on cost_to_serve.period = as_of.as_of_period
    group by as_of.as_of_period, cost_to_serve.customer_id, cost_to_serve.activity
    union all
    select
        activity_t12m.as_of_period, 't12m' as time_window, customer_id, activity, cost_center, driver,
        driver_volume, allocated_cost
    from activity_t12m
    inner join as_of on as_of.as_of_period = activity_t12m.as_of_period
),

customer_activities as (
    select
        customers.as_of_period,
        customers.time_window,
        customers.customer_id,
        customers.segment,
        activities.activity,
        activities.cost_center,
        activities.driver,
        customers.net_revenue,
        customers.abc_profit,
        activities.driver_volume,
        activities.allocated_cost,
        case when customers.net_revenue > 0 then {{ ratio("activities.allocated_cost", "customers.net_revenue") }} end
            as cost_per_revenue
    from customers
    inner join activities
        on activities.as_of_period = customers.as_of_period
        and activities.time_window = customers.time_window
        and activities.customer_id = customers.customer_id
),

-- Every customer with positive net revenue in the window, against every activity of the window: a customer that
-- does not carry an activity costs nothing of it per unit of revenue, and counts in its segment's median as 0.
-- The carriers' ratios, then one 0 for each of the segment's other customers (counted, not joined: the same
-- values as a join of every customer to every activity, without the join).
segment_peers as (
    select as_of_period, time_window, segment, count(*) as peers
    from customers
    where net_revenue > 0
    group by as_of_period, time_window, segment
),

carriers as (
    select as_of_period, time_window, segment, activity, count(*) as carriers
    from customer_activities
    where net_revenue > 0
    group by as_of_period, time_window, segment, activity
),

not_carrying as (
    select
        segment_peers.as_of_period,
        segment_peers.time_window,
        segment_peers.segment,
        activity_list.activity,
        segment_peers.peers - coalesce(carriers.carriers, 0) as customers
    from segment_peers
    inner join (select distinct as_of_period, time_window, activity from activities) as activity_list
        on activity_list.as_of_period = segment_peers.as_of_period
        and activity_list.time_window = segment_peers.time_window
    left join carriers
        on carriers.as_of_period = segment_peers.as_of_period
        and carriers.time_window = segment_peers.time_window
        and carriers.segment = segment_peers.segment
        and carriers.activity = activity_list.activity
),

peer_ratios as (
    select as_of_period, time_window, segment, activity, cost_per_revenue
    from customer_activities
    where net_revenue > 0
    union all
    select as_of_period, time_window, segment, activity, cast(0 as double) as cost_per_revenue
    from (
        select as_of_period, time_window, segment, activity, {{ rows_of('customers') }} as customer
        from not_carrying
        where customers > 0
    ) as zeros
),

medians as (
    select
        as_of_period,
        time_window,
        segment,
        activity,
        median(cost_per_revenue) as median_cost_per_revenue,
        count(*) as segment_customers
    from peer_ratios
    group by as_of_period, time_window, segment, activity
),

measured as (
    select
        customer_activities.*,
        medians.median_cost_per_revenue,
        coalesce(medians.segment_customers, 0) as segment_customers,
        -- The cost at the norm: the segment's median cost per unit of revenue x the customer's net revenue
        -- (none without positive revenue).
        case
            when customer_activities.net_revenue > 0
                then medians.median_cost_per_revenue * customer_activities.net_revenue
            else cast(0 as double)
        end as norm_cost
    from customer_activities
    left join medians
        on medians.as_of_period = customer_activities.as_of_period
        and medians.time_window = customer_activities.time_window
        and medians.segment = customer_activities.segment
        and medians.activity = customer_activities.activity
),

-- A lever is worth at least a cent: its cost above the norm, rounded, is positive (so its cost per unit of
-- revenue is above the median by more than the noise of floating-point arithmetic).
levers as (
    select
        *,
        case when net_revenue > 0 then 'above_segment_median' else 'no_net_revenue' end as lever_reason,
        {{ double_as_decimal('allocated_cost - norm_cost', 18, 2) }} as excess_cost
    from measured
    where {{ double_as_decimal('allocated_cost - norm_cost', 18, 2) }} > 0
),

final as (
    select
        levers.as_of_period as period,
        levers.time_window,
        levers.customer_id,
        levers.segment,
        levers.activity,
        levers.cost_center,
        levers.driver,
        levers.lever_reason,
        cast(coverage.window_months as integer) as window_months,
        coverage.window_months = case when levers.time_window = 'month' then 1 else 12 end as window_complete,
        cast(levers.net_revenue as decimal(18, 2)) as net_revenue,
        cast(levers.abc_profit as decimal(18, 2)) as abc_profit,
        cast(levers.driver_volume as decimal(18, 4)) as driver_volume,
        -- The volume that would cost norm_cost at the customer's own rate per unit (allocated / volume).
        {{ double_as_decimal(ratio("levers.norm_cost * levers.driver_volume", "levers.allocated_cost"), 18, 4) }}
            as norm_driver_volume,
        case when levers.norm_cost > 0
            then {{ double_as_decimal(ratio("levers.allocated_cost", "levers.norm_cost"), 18, 4) }}
        end as volume_to_norm,
        cast(levers.allocated_cost as decimal(18, 2)) as allocated_cost,
        {{ double_as_decimal('levers.cost_per_revenue', 18, 6) }} as cost_per_revenue,
        {{ double_as_decimal('levers.median_cost_per_revenue', 18, 6) }} as segment_median_cost_per_revenue,
        cast(levers.segment_customers as integer) as segment_customers,
        levers.excess_cost,
        cast(levers.abc_profit + levers.excess_cost as decimal(18, 2)) as profit_at_norm,
        -- Net revenue x (1 + p / 100) - cogs - cost_to_serve = 0, quantities, cogs and cost-to-serve held.
        case when levers.abc_profit <= 0 and levers.net_revenue > 0
            then {{ double_as_decimal(ratio("-100 * levers.abc_profit", "levers.net_revenue"), 18, 6) }}
        end as break_even_price_change_pct,
        case when levers.abc_profit < 0 then cast(-levers.abc_profit as decimal(18, 2)) else cast(0 as decimal(18, 2)) end
            as revenue_to_break_even
    from levers
    inner join coverage
        on coverage.as_of_period = levers.as_of_period and coverage.time_window = levers.time_window
)

select * from final
