-- The validated costing configuration (the build stops on a broken one), with its centre's role.
with activities as (
    select * from {{ ref('int_costing_config_validated') }}
),

cost_centers as (
    select * from {{ ref('stg_config__cost_centers') }}
),

final as (
    select
        activities.activity,
        activities.cost_center,
        activities.driver,
        activities.method,
        activities.unit_minutes,
        activities.share,
        cost_centers.customer_driven
    from activities
    inner join cost_centers on activities.cost_center = cost_centers.cost_center
)

select * from final
