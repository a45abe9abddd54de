with source as (
    select * from {{ source('erp', 'returns') }}
),

renamed as (
    select
        return_id,
        order_id,
        line_no,
        return_date,
        cast(date_trunc('month', return_date) as date) as period,
        quantity as returned_quantity,
        reason,
        order_date as exported_order_date,
        customer_id as exported_customer_id,
        unit_price as exported_unit_price,
        unit_cost as exported_unit_cost,
        _source_file as source_file
    from source
)

select * from renamed
