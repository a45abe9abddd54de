{#-
    Incremental refresh by period. A run refreshes the months from $CPROF_PERIOD_FROM to $CPROF_PERIOD_TO
    (dates, first of the month; Dagster passes its partition range). They are read when the models execute,
    not when dbt parses them, so a new range keeps dbt's partial parse (--vars would force a full re-parse,
    about 3 s a run). A model keyed by `period` rebuilds only the periods that range can change, then replaces
    exactly those periods in its table:

      refresh_reach_months (model meta)  how far forward a change of one month reaches in this model:
                                         0 for a month's own figures (the default), 11 for a trailing
                                         12-month window, 'all' for a figure that depends on all history
                                         before it (first purchase, cumulative frequency).

    Without the variables every period is rebuilt. The first build, and --full-refresh, create the table whole.
-#}

{% macro refresh_window_bounds() %}
    {%- set meta = config.get('meta') or {} -%}
    {%- set reach = meta.get('refresh_reach_months', 0) -%}
    {%- set first = env_var('CPROF_PERIOD_FROM', '') if execute else '' -%}
    {%- set last = env_var('CPROF_PERIOD_TO', '') if execute else '' -%}
    {%- if not first or not last -%}
        {{ return((none, none)) }}
    {%- endif -%}
    {%- set upper = none if reach == 'all' else "date '" ~ last ~ "' + interval " ~ reach ~ " month" -%}
    {{ return(("date '" ~ first ~ "'", upper)) }}
{% endmacro %}

{#- A predicate on `column`: true for the periods this run rebuilds (every period on a full build). -#}
{% macro in_refresh_window(column) %}
    {%- set bounds = refresh_window_bounds() -%}
    {%- if not is_incremental() or bounds[0] is none -%}
        true
    {%- elif bounds[1] is none -%}
        {{ column }} >= {{ bounds[0] }}
    {%- else -%}
        {{ column }} between {{ bounds[0] }} and cast({{ bounds[1] }} as date)
    {%- endif -%}
{% endmacro %}

{#-
    incremental_strategy='replace_periods': in the model's transaction, delete the periods of the refresh window
    and insert the rebuilt rows. Unlike delete+insert on a key, a period that no longer has any rows is emptied.
-#}
{% macro get_incremental_replace_periods_sql(arg_dict) %}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set columns = arg_dict['dest_columns'] | map(attribute='quoted') | join(', ') -%}
    delete from {{ target }} where {{ in_refresh_window('period') }};
    insert into {{ target }} ({{ columns }}) select {{ columns }} from {{ arg_dict['temp_relation'] }}
{% endmacro %}

{#-
    Data tests of the incremental models check the periods a run rebuilt, not the whole history again: a test
    configured with where: 'refresh_window' (dbt_project.yml, intermediate and marts) on an incremental model
    sees the periods from $CPROF_PERIOD_FROM on. Other models, and full builds, are tested whole. The singular
    conservation tests always read every period.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where == 'refresh_window' -%}
        {%- set first = refresh_window_bounds()[0] -%}
        {%- set incremental = graph.nodes.values()
            | selectattr('resource_type', 'equalto', 'model')
            | selectattr('name', 'equalto', relation.identifier)
            | selectattr('config.materialized', 'equalto', 'incremental')
            | list -%}
        {%- if first and incremental and not flags.FULL_REFRESH -%}
            {%- do return("(select * from " ~ relation ~ " where period >= " ~ first ~ ") dbt_subquery") -%}
        {%- endif -%}
        {%- do return(relation) -%}
    {%- elif where -%}
        {%- do return("(select * from " ~ relation ~ " where " ~ where ~ ") dbt_subquery") -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}
