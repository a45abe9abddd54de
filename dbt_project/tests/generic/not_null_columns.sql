{#-
    Every listed column is free of nulls: one test and one scan for a model's columns, instead of one
    not_null test (a dbt node, a Dagster check and a table scan) per column. Returns a row per column that has
    nulls, with how many, so the failure names the column. (The counts row is turned into one row per column
    with a join to the list of names: the same SQL on DuckDB and Spark, which spell UNPIVOT differently.)
-#}
{% test not_null_columns(model, columns) %}
with counts as (
    select
        {%- for column in columns %}
        count(*) filter (where {{ column }} is null) as null_rows_{{ loop.index }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ model }}
),

listed as (
    select * from (values
        {%- for column in columns %}
        ('{{ column }}', {{ loop.index }}){{ "," if not loop.last }}
        {%- endfor %}
    ) as listed (column_name, position)
),

per_column as (
    select
        listed.column_name,
        case listed.position
            {%- for column in columns %}
            when {{ loop.index }} then counts.null_rows_{{ loop.index }}
            {%- endfor %}
        end as null_rows
    from listed
    cross join counts
)

select column_name, null_rows
from per_column
where null_rows > 0
{% endtest %}
