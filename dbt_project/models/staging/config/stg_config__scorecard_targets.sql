with source as (
    select * from {{ source('config', 'scorecard_targets') }}
),

renamed as (
    select
        metric,
        segment,
        target,
        direction,
        amber_tolerance,
        owner,
        incentive_weight
    from source
)

select * from renamed
