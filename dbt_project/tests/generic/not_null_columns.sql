{#-
    Every listed column is free of nulls: one test and one scan for a model's columns, instead of one
    not_null test (a dbt node, a Dagster check and a table scan) per column. Returns a row per column that has
    nulls, with how many, so the failure names the column.
-#}
{% test not_null_columns(model, columns) %}
with counts as (
    select
        {%- for column in columns %}
        count(*) filter (where {{ column }} is null) as "{{ column }}"{{ "," if not loop.last }}
        {%- endfor %}
    from {{ model }}
)

select column_name, null_rows
from (unpivot counts on columns(*) into name column_name value null_rows)
where null_rows > 0
{% endtest %}
