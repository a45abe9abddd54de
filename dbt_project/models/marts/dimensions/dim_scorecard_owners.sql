with targets as (
    select * from {{ ref('stg_config__scorecard_targets') }}
),

names as (
    select * from {{ ref('scorecard_owners') }}
),

owners as (
    select distinct owner from targets where owner is not null
),

final as (
    select
        owners.owner,
        -- an owner role without a display name in the seed is shown by its code, title-cased
        coalesce(
            names.owner_display_name,
            {{ words_title_cased('owners.owner', '_') }}
        ) as owner_display_name
    from owners
    left join names on owners.owner = names.owner
)

select * from final
