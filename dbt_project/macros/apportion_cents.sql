{#-
    Splits an amount of whole cents over the rows of each partition in proportion to an integer weight, so that
    the parts are whole cents and add up to the amount exactly (largest-remainder method). Integer arithmetic
    throughout (HUGEINT on DuckDB, DECIMAL(38, 0) on Spark): no floating point, no drift. Ties in the remainder go to the first row by `tiebreak`.

    relation      a subquery or CTE with one row per recipient; it carries the amount on every row of a partition
    amount_cents  integer expression: the amount to split (the same on every row of a partition)
    weight        non-negative integer expression; the weights of a partition must not all be zero
    partition_by  the columns that identify one amount
    tiebreak      a deterministic order for equal remainders

    Returns every column of `relation`, the working columns _base_cents, _remainder, _rank and _leftover, and
    apportioned_cents; callers select the columns they keep by name.
-#}
{% macro apportion_cents(relation, amount_cents, weight, partition_by, tiebreak) %}
{%- set int128 = type_int128() -%}
(
    select
        *,
        _base_cents + case when _rank <= _leftover then 1 else 0 end as apportioned_cents
    from (
        select
            *,
            row_number() over (partition by {{ partition_by }} order by _remainder desc, {{ tiebreak }}) as _rank,
            ({{ amount_cents }}) - sum(_base_cents) over (partition by {{ partition_by }}) as _leftover
        from (
            select
                *,
                {{ integer_divide(
                    "cast(" ~ amount_cents ~ " as " ~ int128 ~ ") * cast(" ~ weight ~ " as " ~ int128 ~ ")",
                    "sum(cast(" ~ weight ~ " as " ~ int128 ~ ")) over (partition by " ~ partition_by ~ ")",
                ) }} as _base_cents,
                (cast({{ amount_cents }} as {{ int128 }}) * cast({{ weight }} as {{ int128 }}))
                    % sum(cast({{ weight }} as {{ int128 }})) over (partition by {{ partition_by }}) as _remainder
            from {{ relation }}
        )
    )
)
{% endmacro %}
