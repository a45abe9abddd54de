with source as (
    select * from {{ source('config', 'scenarios') }}
),

renamed as (
    select
        scenario,
        description,
        lever,
        target,
        operation,
        value,
        -- YYYY-MM (checked by the landing suite) as the first day of the month, like every period
        cast(first_month || '-01' as date) as first_period,
        cast(last_month || '-01' as date) as last_period
    from source
)

select * from renamed
