-- One row per customer segment code the marts use: the CRM's segments, the scorecard targets' and `all` (the
-- company rows of customer_scorecard and customer_retention), each with its label.
with codes as (
    select segment from {{ ref('stg_crm__customers') }} where segment is not null
    union
    select segment from {{ ref('stg_config__scorecard_targets') }} where segment is not null
    union
    select 'all' as segment
),

labels as (
    select * from {{ code_labels('segment') }}
),

final as (
    select
        codes.segment,
        {{ label_or_code('labels.label', 'codes.segment') }} as segment_label,
        labels.description,
        codes.segment = 'all' as is_all_segments
    from codes
    left join labels on codes.segment = labels.code
)

select * from final
