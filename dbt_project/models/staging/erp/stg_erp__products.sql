with source as (
    select * from {{ source('erp', 'products') }}
),

renamed as (
    select
        product_id,
        category,
        cast(list_price as decimal(18, 2)) as list_price,
        cast(unit_cost as decimal(18, 2)) as unit_cost,
        _source_file as source_file
    from source
)

select * from renamed
