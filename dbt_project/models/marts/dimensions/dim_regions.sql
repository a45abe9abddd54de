-- One row per sales region of the CRM's customers, with its label.
with codes as (
    select distinct region from {{ ref('stg_crm__customers') }} where region is not null
),

labels as (
    select * from {{ code_labels('region') }}
),

final as (
    select
        codes.region,
        {{ label_or_code('labels.label', 'codes.region') }} as region_label,
        labels.description
    from codes
    left join labels on codes.region = labels.code
)

select * from final
