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
    {#- The bounds become SQL text: only ISO dates get there. -#}
    {%- for bound in (first, last) if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', bound) -%}
        {{ exceptions.raise_compiler_error("CPROF_PERIOD_FROM/CPROF_PERIOD_TO must be ISO dates (YYYY-MM-DD), got " ~ bound) }}
    {%- endfor -%}
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
    Data tests check the periods a run rebuilt or reloaded, not the whole history again. A test configured with
    where: 'refresh_window' (dbt_project.yml) on a model keyed by period (an incremental model, or a staging
    view of a monthly source, which documents a `period` column) sees the rows from $CPROF_PERIOD_FROM on:
    the rows before it are the ones earlier runs tested, and nothing in this run changed them.
      - unique tests see every row whose key occurs from $CPROF_PERIOD_FROM on, in any period, so a key
        repeated across months is still caught;
      - relationships tests stay whole: a reloaded parent (a corrected month of order lines, a new customer
        snapshot) can orphan rows of earlier periods.
    Full builds, --full-refresh, tables rebuilt whole and models without periods are tested whole. The singular
    conservation tests window themselves with in_tested_window(), the same predicate.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where == 'refresh_window' -%}
        {%- set window = in_tested_window('period') | trim -%}
        {%- set test = model.get('test_metadata') or {} -%}
        {%- set nodes = graph.nodes.values()
            | selectattr('resource_type', 'equalto', 'model')
            | selectattr('name', 'equalto', relation.identifier)
            | list -%}
        {%- set by_period = nodes and (nodes[0].config.materialized == 'incremental'
            or (nodes[0].config.materialized == 'view' and 'period' in nodes[0].columns)) -%}
        {%- if window != 'true' and by_period and test.get('name') not in ('relationships', 'relationships_multi') -%}
            {%- set kwargs = test.get('kwargs') or {} -%}
            {%- set keys = [kwargs.get('column_name')] if test.get('name') == 'unique'
                else kwargs.get('combination_of_columns') if test.get('name') == 'unique_combination_of_columns'
                else none -%}
            {%- if keys -%}
                {%- do return("(select * from " ~ relation ~ " semi join (select " ~ keys | join(', ')
                    ~ " from " ~ relation ~ " where " ~ window ~ ") dbt_window using ("
                    ~ keys | join(', ') ~ ")) dbt_subquery") -%}
            {%- endif -%}
            {%- do return("(select * from " ~ relation ~ " where " ~ window ~ ") dbt_subquery") -%}
        {%- endif -%}
        {%- do return(relation) -%}
    {%- elif where -%}
        {%- do return("(select * from " ~ relation ~ " where " ~ where ~ ") dbt_subquery") -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}

{#- For singular tests: true for the periods a data test checks (see get_where_subquery). -#}
{% macro in_tested_window(column) %}
    {%- set first = refresh_window_bounds()[0] -%}
    {%- if first and not flags.FULL_REFRESH -%}
        {{ column }} >= {{ first }}
    {%- else -%}
        true
    {%- endif -%}
{% endmacro %}
