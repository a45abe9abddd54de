-- Product margin per scenario, month and customer: actual's (int_margin_aggregated_to_customer_month) with the
-- scenario's `unit_price` changes (docs/DESIGN.md, Scenarios). A changed line's price is its product's change,
-- then its customer's segment's, then its customer's, each on the result of the one before, rounded half away
-- from zero to the cent, in the months of its order_date; its return is credited at that price in the month of
-- the return. Quantities, discounts and cogs are held: gross revenue, the returns credit, net revenue and gross
-- margin move by the price change; nothing else does. Only the scenarios with a price change read order lines:
-- those of the months the run rebuilds, and the lines of earlier scenario months returned in them.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail', meta={'scenario_periods': 'rebuilt'}) }}
-- depends_on: {{ ref('int_scenario_periods') }}
with all_months as (
    select * from {{ ref('int_scenario_months') }}
),

months as (
    select * from all_months
    where {{ in_refresh_window('period') }}
),

margin as (
    select * from {{ ref('int_margin_aggregated_to_customer_month') }}
),

changes as (
    select * from {{ ref('int_scenario_changes') }}
    where lever = 'unit_price'
),

price_scenario_months as (
    select all_months.scenario, all_months.period
    from all_months
    inner join (select distinct scenario from changes) as priced on all_months.scenario = priced.scenario
),

order_lines as (
    select * from {{ ref('stg_erp__order_lines') }}
),

customers as (
    select customer_id, segment from {{ ref('stg_crm__customers') }}
),

returns as (
    select * from {{ ref('int_returns_joined_to_order_lines') }}
    where is_priced and not is_prehistory and {{ in_refresh_window('period') }}
),

returned_lines as (
    select distinct order_id, line_no from returns
),

lines as (
    select
        price_scenario_months.scenario,
        order_lines.period,
        order_lines.order_id,
        order_lines.line_no,
        order_lines.customer_id,
        order_lines.product_id,
        customers.segment,
        order_lines.quantity,
        order_lines.unit_price
    from price_scenario_months
    inner join order_lines on price_scenario_months.period = order_lines.period
    left join customers on order_lines.customer_id = customers.customer_id
    left join returned_lines
        on order_lines.order_id = returned_lines.order_id and order_lines.line_no = returned_lines.line_no
    where {{ in_refresh_window('order_lines.period') }} or returned_lines.order_id is not null
),

priced as (
    select
        lines.*,
        cast(round(
            {{ scenario_applied(
                scenario_applied(scenario_applied('lines.unit_price', 'by_product'), 'by_segment'),
                'by_customer',
            ) }},
            2
        ) as decimal(18, 2)) as scenario_unit_price
    from lines
    left join changes as by_product
        on {{ scenario_change_applies('by_product', 'lines', 'unit_price') }}
        and by_product.scope_kind = 'product' and by_product.target_scope = lines.product_id
    left join changes as by_segment
        on {{ scenario_change_applies('by_segment', 'lines', 'unit_price') }}
        and by_segment.scope_kind = 'segment' and by_segment.target_scope = lines.segment
    left join changes as by_customer
        on {{ scenario_change_applies('by_customer', 'lines', 'unit_price') }}
        and by_customer.scope_kind = 'customer' and by_customer.target_scope = lines.customer_id
),

repriced as (
    select * from priced
    where scenario_unit_price <> unit_price
),

sales_changes as (
    select
        scenario,
        period,
        customer_id,
        sum(quantity * (scenario_unit_price - unit_price)) as gross_revenue_change,
        cast(0 as decimal(18, 2)) as returns_credit_change
    from repriced
    where {{ in_refresh_window('period') }}
    group by scenario, period, customer_id
),

credit_changes as (
    select
        repriced.scenario,
        returns.period,
        returns.customer_id,
        cast(0 as decimal(18, 2)) as gross_revenue_change,
        sum(returns.returned_quantity * (repriced.scenario_unit_price - repriced.unit_price)) as returns_credit_change
    from returns
    inner join repriced on returns.order_id = repriced.order_id and returns.line_no = repriced.line_no
    group by repriced.scenario, returns.period, returns.customer_id
),

price_changes as (
    select
        scenario,
        period,
        customer_id,
        sum(gross_revenue_change) as gross_revenue_change,
        sum(returns_credit_change) as returns_credit_change
    from (
        select * from sales_changes
        union all
        select * from credit_changes
    ) as changes_by_kind
    group by scenario, period, customer_id
),

scenario_margin as (
    select
        months.scenario,
        margin.period,
        margin.customer_id,
        margin.gross_revenue + coalesce(price_changes.gross_revenue_change, 0) as gross_revenue,
        margin.discounts,
        margin.returns_credit + coalesce(price_changes.returns_credit_change, 0) as returns_credit,
        margin.cogs,
        margin.list_revenue
    from months
    inner join margin on months.period = margin.period
    left join price_changes
        on months.scenario = price_changes.scenario
        and margin.period = price_changes.period
        and margin.customer_id = price_changes.customer_id
),

final as (
    select
        scenario,
        period,
        customer_id,
        cast(gross_revenue as decimal(18, 2)) as gross_revenue,
        cast(discounts as decimal(18, 2)) as discounts,
        cast(returns_credit as decimal(18, 2)) as returns_credit,
        cast(gross_revenue - discounts - returns_credit as decimal(18, 2)) as net_revenue,
        cast(cogs as decimal(18, 2)) as cogs,
        cast(gross_revenue - discounts - returns_credit - cogs as decimal(18, 2)) as gross_margin,
        cast(list_revenue as decimal(18, 2)) as list_revenue
    from scenario_margin
)

select * from final
