-- One row per cost driver of the costing configuration's activities, with its label and unit.
with codes as (
    select distinct driver from {{ ref('stg_config__activities') }} where driver is not null
),

labels as (
    select * from {{ code_labels('driver') }}
),

units as (
    select * from {{ ref('driver_units') }}
),

final as (
    select
        codes.driver,
        {{ label_or_code('labels.label', 'codes.driver') }} as driver_label,
        units.unit
    from codes
    left join labels on codes.driver = labels.code
    left join units on codes.driver = units.driver
)

select * from final
