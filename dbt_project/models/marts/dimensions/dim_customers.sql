with customers as (
    select * from {{ ref('stg_crm__customers') }}
),

segments as (
    select * from {{ code_labels('segment') }}
),

regions as (
    select * from {{ code_labels('region') }}
),

final as (
    select
        customers.customer_id,
        customers.customer_name,
        customers.segment,
        {{ label_or_code('segments.label', 'customers.segment') }} as segment_label,
        customers.region,
        {{ label_or_code('regions.label', 'customers.region') }} as region_label,
        customers.acquired_date
    from customers
    left join segments on customers.segment = segments.code
    left join regions on customers.region = regions.code
)

select * from final
