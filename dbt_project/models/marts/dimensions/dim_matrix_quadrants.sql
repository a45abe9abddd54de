-- The profitability matrix's quadrants (customer_profitability.matrix_quadrant), with label and meaning.
with labels as (
    select * from {{ code_labels('matrix_quadrant') }}
),

final as (
    select
        code as matrix_quadrant,
        label as matrix_quadrant_label,
        description
    from labels
)

select * from final
