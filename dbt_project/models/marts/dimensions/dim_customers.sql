with customers as (
    select * from {{ ref('stg_crm__customers') }}
),

final as (
    select
        customer_id,
        customer_name,
        segment,
        region,
        acquired_date
    from customers
)

select * from final
