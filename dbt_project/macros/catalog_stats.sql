{#- dbt docs with row counts: dbt-duckdb's catalog has no statistics (has_stats false), so the project overrides
    its catalog macros (a root project's macro wins over the adapter's of the same name) to add each table's
    exact row count as the catalog statistic `row_count`, which dbt docs shows on every model, seed and source.
    Counted with count(*): duckdb_tables().estimated_size also counts deleted rows. Views have none.
    tests/test_docs_catalog.py checks the counts of a real `dbt docs generate`. -#}
{% macro duckdb__get_catalog_tables_sql(information_schema) -%}
    {%- set counts = [] -%}
    {%- if execute -%}
        {%- set found = run_query(
            "select schema_name, table_name from duckdb_tables() where upper(database_name) = upper("
            ~ dbt.string_literal(information_schema.database) ~ ") order by all"
        ) -%}
        {%- for row in found -%}
            {%- do counts.append(
                "select " ~ dbt.string_literal(row[0]) ~ " as schema_name, " ~ dbt.string_literal(row[1])
                ~ " as table_name, count(*) as row_count from " ~ adapter.quote(information_schema.database)
                ~ "." ~ adapter.quote(row[0]) ~ "." ~ adapter.quote(row[1])
            ) -%}
        {%- endfor -%}
    {%- endif %}
    select *
    from (
        select
            t.database_name as table_database,
            t.schema_name as table_schema,
            t.table_name as table_name,
            'BASE TABLE' as table_type,
            t.comment as table_comment,
            'Row count' as "stats:row_count:label",
            counted.row_count as "stats:row_count:value",
            'Rows in the table when the docs were generated' as "stats:row_count:description",
            true as "stats:row_count:include"
        from duckdb_tables() t
        {% if counts -%}
        left join ({{ counts | join(' union all ') }}) as counted
            on t.schema_name = counted.schema_name and t.table_name = counted.table_name
        {%- else -%}
        left join (select null::varchar as schema_name, null::varchar as table_name, null::bigint as row_count) as counted
            on false
        {%- endif %}
        where upper(t.database_name) = upper('{{ information_schema.database }}')

        union all

        select
            v.database_name as table_database,
            v.schema_name as table_schema,
            v.view_name as table_name,
            'VIEW' as table_type,
            v.comment as table_comment,
            'Row count' as "stats:row_count:label",
            null::bigint as "stats:row_count:value",
            'Rows in the table when the docs were generated' as "stats:row_count:description",
            false as "stats:row_count:include"
        from duckdb_views() v
        where upper(v.database_name) = upper('{{ information_schema.database }}')
    ) catalog_tables
{%- endmacro %}


{% macro duckdb__get_catalog_results_sql() -%}
    select
        tables.table_database,
        tables.table_schema,
        tables.table_name,
        tables.table_type,
        tables.table_comment,
        tables."stats:row_count:label",
        tables."stats:row_count:value",
        tables."stats:row_count:description",
        tables."stats:row_count:include",
        columns.column_name,
        columns.column_index,
        columns.column_type,
        columns.column_comment,
        null as table_owner
    from tables
    join columns using (table_database, table_schema, table_name)
    order by table_schema, table_name, column_index
{%- endmacro %}
