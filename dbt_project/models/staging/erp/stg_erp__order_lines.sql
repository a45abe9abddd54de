with source as (
    select * from {{ source('erp', 'order_lines') }}
),

renamed as (
    select
        order_id,
        line_no,
        order_date,
        cast(date_trunc('month', order_date) as date) as period,
        customer_id,
        product_id,
        quantity,
        cast(unit_price as decimal(18, 2)) as unit_price,
        cast(discount_amount as decimal(18, 2)) as discount_amount,
        ship_mode,
        order_channel,
        _source_file as source_file
    from source
)

select * from renamed
