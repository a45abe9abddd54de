with source as (
    select * from {{ source('ledger', 'gl_costs') }}
),

renamed as (
    select
        {{ month_start_from_text('period') }} as period,
        cost_center,
        account,
        cast(amount as decimal(18, 2)) as amount,
        _source_file as source_file
    from source
)

select * from renamed
