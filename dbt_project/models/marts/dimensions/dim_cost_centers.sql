with cost_centers as (
    select * from {{ ref('stg_config__cost_centers') }}
),

methods as (
    -- one method per centre (int_costing_config_validated stops the build on mixed methods)
    select cost_center, min(method) as method
    from {{ ref('stg_config__activities') }}
    group by cost_center
),

labels as (
    select * from {{ code_labels('cost_center') }}
),

final as (
    select
        cost_centers.cost_center,
        {{ label_or_code('labels.label', 'cost_centers.cost_center') }} as cost_center_label,
        cost_centers.customer_driven,
        cost_centers.is_business_sustaining,
        methods.method,
        cost_centers.practical_capacity_minutes
    from cost_centers
    left join methods on cost_centers.cost_center = methods.cost_center
    left join labels on cost_centers.cost_center = labels.code
)

select * from final
