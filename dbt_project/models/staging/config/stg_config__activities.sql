with source as (
    select * from {{ source('config', 'activities') }}
),

renamed as (
    select
        activity,
        cost_center,
        driver,
        method,
        unit_minutes,
        share
    from source
)

select * from renamed
