{#-
    A text as a typed SQL string literal (null for none or an empty text), its quotes escaped by the adapter's own
    macro: DuckDB doubles a quote, Spark escapes it with a backslash. For texts from the project's own definitions
    (the metric catalogue, models/marts/dimensions/dim_metrics.sql), never for data.
-#}
{% macro text_literal(text) -%}
    {%- if text is none or text == '' -%}
        cast(null as {{ dbt.type_string() }})
    {%- else -%}
        cast('{{ dbt.escape_single_quotes(text | string) }}' as {{ dbt.type_string() }})
    {%- endif -%}
{%- endmacro %}
