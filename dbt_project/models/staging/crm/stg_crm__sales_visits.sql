with source as (
    select * from {{ source('crm', 'sales_visits') }}
),

renamed as (
    select
        visit_id,
        customer_id,
        visit_date,
        cast(date_trunc('month', visit_date) as date) as period,
        hours,
        cast(hours * 60 as decimal(12, 2)) as visit_minutes,
        _source_file as source_file
    from source
)

select * from renamed
