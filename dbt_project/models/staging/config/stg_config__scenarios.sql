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
        {{ month_start_from_text('first_month') }} as first_period,
        {{ month_start_from_text('last_month') }} as last_period,
        -- the SHA-256 of the file the rows were loaded from: the scenarios' version
        _file_sha256 as version
    from source
)

select * from renamed
