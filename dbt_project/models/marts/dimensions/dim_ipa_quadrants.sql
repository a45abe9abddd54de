-- The importance-performance quadrants (satisfaction_drivers.ipa_quadrant), with label and meaning.
with labels as (
    select * from {{ code_labels('ipa_quadrant') }}
),

final as (
    select
        code as ipa_quadrant,
        label as ipa_quadrant_label,
        description
    from labels
)

select * from final
