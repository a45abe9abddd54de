-- The validated costing configuration (the build stops on a broken one), with its centre's role.
with activities as (
    select * from {{ ref('int_costing_config_validated') }}
),

cost_centers as (
    select * from {{ ref('stg_config__cost_centers') }}
),

activity_labels as (
    select * from {{ code_labels('activity') }}
),

cost_center_labels as (
    select * from {{ code_labels('cost_center') }}
),

driver_labels as (
    select * from {{ code_labels('driver') }}
),

final as (
    select
        activities.activity,
        {{ label_or_code('activity_labels.label', 'activities.activity') }} as activity_label,
        activities.cost_center,
        {{ label_or_code('cost_center_labels.label', 'activities.cost_center') }} as cost_center_label,
        activities.driver,
        {{ label_or_code('driver_labels.label', 'activities.driver') }} as driver_label,
        activities.method,
        activities.unit_minutes,
        activities.share,
        cost_centers.customer_driven
    from activities
    inner join cost_centers on activities.cost_center = cost_centers.cost_center
    left join activity_labels on activities.activity = activity_labels.code
    left join cost_center_labels on activities.cost_center = cost_center_labels.code
    left join driver_labels on activities.driver = driver_labels.code
)

select * from final
