with source as (
    select * from {{ source('crm', 'customers') }}
),

renamed as (
    select
        customer_id,
        customer_name,
        segment,
        region,
        acquired_date,
        _source_file as source_file
    from source
)

select * from renamed
