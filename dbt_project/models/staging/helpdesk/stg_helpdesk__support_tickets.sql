with source as (
    select * from {{ source('helpdesk', 'support_tickets') }}
),

renamed as (
    select
        ticket_id,
        customer_id,
        opened_at,
        cast(date_trunc('month', opened_at) as date) as period,
        channel,
        handling_minutes,
        _source_file as source_file
    from source
)

select * from renamed
