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
            list_aggregate(
                list_transform(string_split(owners.owner, '_'), lambda w: upper(w[1]) || w[2:]), 'string_agg', ' '
            )
        ) as owner_display_name
    from owners
    left join names on owners.owner = names.owner
)

select * from final
