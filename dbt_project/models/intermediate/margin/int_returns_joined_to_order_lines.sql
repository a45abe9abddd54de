-- Every return with the line it returns: customer, unit price and costs from the order line when the warehouse
-- has it. A return whose line it does not have was checked on landing to be of a line ordered before the start
-- of history (a pre-history return): it takes them from the returns file's own columns when the source system
-- exports them, else it stays unpriced, in no customer's margin (marts.prehistory_returns shows both kinds).
-- A view: the models reading it filter it by their refresh window.
{{ config(materialized='view') }}
with returns as (
    select * from {{ ref('stg_erp__returns') }}
),

order_lines as (
    select * from {{ ref('stg_erp__order_lines') }}
),

products as (
    select * from {{ ref('stg_erp__products') }}
),

joined as (
    select
        returns.return_id,
        returns.period,
        returns.return_date,
        returns.order_id,
        returns.line_no,
        returns.returned_quantity,
        returns.reason,
        order_lines.order_id is null as is_prehistory,
        case when order_lines.order_id is null then returns.exported_order_date else order_lines.order_date end
            as order_date,
        case when order_lines.order_id is null then returns.exported_customer_id else order_lines.customer_id end
            as customer_id,
        order_lines.product_id,
        case when order_lines.order_id is null then returns.exported_unit_price else order_lines.unit_price end
            as unit_price,
        case when order_lines.order_id is null then returns.exported_unit_cost else products.unit_cost end
            as unit_cost,
        products.list_price
    from returns
    left join order_lines
        on returns.order_id = order_lines.order_id and returns.line_no = order_lines.line_no
    left join products on order_lines.product_id = products.product_id
)

select
    *,
    customer_id is not null and unit_price is not null and unit_cost is not null as is_priced
from joined
