with source as (
    select * from {{ source('config', 'cost_centers') }}
),

renamed as (
    select
        cost_center,
        practical_capacity_minutes,
        customer_driven,
        not customer_driven as is_business_sustaining
    from source
)

select * from renamed
