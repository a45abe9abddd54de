-- Returns of lines ordered before the start of history (the warehouse does not have their order lines): each in
-- the month of its return, priced from the returns file's own columns when it exports them, and what is unknown
-- about it. Rebuilt whole: when older months are loaded (a backward backfill), the returns whose lines they bring
-- leave this table and count in their month's margin from the line itself.
with returns as (
    select * from {{ ref('int_returns_joined_to_order_lines') }}
)

select
    period,
    return_id,
    return_date,
    order_id,
    line_no,
    returned_quantity,
    reason,
    order_date,
    customer_id,
    unit_price,
    unit_cost,
    is_priced,
    cast(case when is_priced then returned_quantity * unit_price end as decimal(18, 2)) as returns_credit,
    concat_ws(
        ', ',
        case when order_date is null then 'order_date' end,
        case when customer_id is null then 'customer_id' end,
        case when unit_price is null then 'unit_price' end,
        case when unit_cost is null then 'unit_cost' end,
        'product_id'
    ) as unknown
from returns
where is_prehistory
