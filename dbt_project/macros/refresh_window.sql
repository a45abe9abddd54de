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
      scenario_periods (model meta)      a scenario model: the months it rebuilds are those
                                         int_scenario_periods flags (`rebuilt`, or `whale_rebuilt` for a
                                         trailing window), which may precede the range (docs/DESIGN.md,
                                         Scenarios).

    Without the variables every period is rebuilt. The first build, and --full-refresh, create the table whole.
-#}

{% macro refresh_window_bounds(reach=none) %}
    {#- reach: the model's own (its meta), unless given (a test that checks another model's rebuilt periods) -#}
    {%- if reach is none -%}
        {%- set meta = config.get('meta') or {} -%}
        {%- set reach = meta.get('refresh_reach_months', 0) -%}
    {%- endif -%}
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

{#-
    A predicate on `column`: true for the periods this run rebuilds (every period on a full build). A scenario
    model (meta scenario_periods: a flag of int_scenario_periods, `rebuilt` or `whale_rebuilt`) rebuilds the
    months that model flags, which may lie outside the refresh window (docs/DESIGN.md, Scenarios).
-#}
{% macro in_refresh_window(column) %}
    {%- set flag = (config.get('meta') or {}).get('scenario_periods') -%}
    {%- if flag -%}
        {{ in_scenario_rebuild(column, flag) }}
    {%- else -%}
        {{ in_period_window(column) }}
    {%- endif -%}
{% endmacro %}

{#- The months a scenario model rebuilds: those int_scenario_periods flags with `flag` (every month on a full build). -#}
{% macro in_scenario_rebuild(column, flag) %}
    {%- if flag not in ('rebuilt', 'whale_rebuilt') -%}
        {{ exceptions.raise_compiler_error("scenario_periods must be rebuilt or whale_rebuilt, got " ~ flag) }}
    {%- endif -%}
    {#- dbt parses with is_incremental() false: each scenario model declares the ref (a depends_on hint) -#}
    {%- if not is_incremental() -%}
        true
    {%- else -%}
        {{ column }} in (select period from {{ ref('int_scenario_periods') }} where {{ flag }})
    {%- endif -%}
{% endmacro %}

{% macro in_period_window(column) %}
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
      - key tests (unique, unique_combination_of_columns) see every row whose key occurs from
        $CPROF_PERIOD_FROM on, in any period, so a key repeated across months is still caught: they get the
        whole relation and window their keys themselves (duplicate_keys); a key that includes `period` occurs
        in one period only, so its rows in the tested periods are all its rows, read without the rest;
      - relationships tests stay whole: a reloaded parent (a corrected month of order lines, a new customer
        snapshot) can orphan rows of earlier periods.
    Full builds, --full-refresh, tables rebuilt whole and models without periods are tested whole. The singular
    conservation tests window themselves with in_tested_window(), the same predicate.

    This overrides dbt's default__get_where_subquery, not the get_where_subquery dispatcher, so an adapter's
    own version would still apply (neither dbt-duckdb nor dbt-spark has one).
-#}
{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where == 'refresh_window' -%}
        {%- set test = model.get('test_metadata') or {} -%}
        {%- set window = tested_window_of(relation) -%}
        {%- if window and test.get('name') not in whole_relation_tests() -%}
            {%- do return("(select * from " ~ relation ~ " where " ~ window ~ ") dbt_subquery") -%}
        {%- endif -%}
        {%- do return(relation) -%}
    {%- elif where -%}
        {%- do return("(select * from " ~ relation ~ " where " ~ where ~ ") dbt_subquery") -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}

{#- Tests that get the whole relation under the refresh window (see above). -#}
{% macro whole_relation_tests() %}
    {{- return(('relationships', 'relationships_multi', 'unique', 'unique_combination_of_columns')) -}}
{% endmacro %}

{#-
    The predicate on `period` a test of `relation` checks under where: 'refresh_window', or none when the test
    sees every row (no window in this run, a full refresh, no such test config, a model not keyed by period).
-#}
{% macro tested_window_of(relation) %}
    {%- if config.get('where', '') != 'refresh_window' or relation.identifier is not defined -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set window = in_tested_window('period') | trim -%}
    {%- set nodes = graph.nodes.values()
        | selectattr('resource_type', 'equalto', 'model')
        | selectattr('name', 'equalto', relation.identifier)
        | list -%}
    {%- set by_period = nodes and (nodes[0].config.materialized == 'incremental'
        or (nodes[0].config.materialized == 'view' and 'period' in nodes[0].columns)) -%}
    {%- if window == 'true' or not by_period -%}
        {{ return(none) }}
    {%- endif -%}
    {#- A scenario model: the months it rebuilt, which int_scenario_periods flags (read by name: a test's node
        does not depend on it). -#}
    {%- set flag = (nodes[0].config.meta or {}).get('scenario_periods') -%}
    {%- if flag -%}
        {%- set flagging = graph.nodes.values()
            | selectattr('resource_type', 'equalto', 'model')
            | selectattr('name', 'equalto', 'int_scenario_periods')
            | list -%}
        {%- set periods = api.Relation.create(
            database=flagging[0].database, schema=flagging[0].schema, identifier=flagging[0].alias) -%}
        {{ return("period in (select period from " ~ periods ~ " where " ~ flag ~ ")") }}
    {%- endif -%}
    {{ return(window) }}
{% endmacro %}

{#-
    The keys of `relation` that occur more than once, with how many rows each: the body of the key tests.
    Under the refresh window only keys that occur in the tested periods count, in whichever period their
    other rows are (a key with its period has no rows in other periods: the tested periods are read alone).
    key_name: one key column, renamed as dbt's unique test names it (nulls are not keys).
-#}
{% macro duplicate_keys(relation, keys, count_name='occurrences', key_name=none) %}
{%- set window = tested_window_of(relation) -%}
select
    {% if key_name %}{{ keys[0] }} as {{ key_name }}{% else %}{{ keys | join(', ') }}{% endif %},
    count(*) as {{ count_name }}
from {{ relation }} as tested
where {% if key_name %}{{ keys[0] }} is not null{% else %}true{% endif %}
{%- if window and 'period' in keys %}
    and {{ window }}
{%- elif window %}
    and exists (
        select 1
        from {{ relation }} as windowed
        where {{ window }}
        {%- for key in keys %}
            and windowed.{{ key }} = tested.{{ key }}
        {%- endfor %}
    )
{%- endif %}
group by {{ keys | join(', ') }}
having count(*) > 1
{% endmacro %}

{#- dbt's `unique` test on every engine, with the refresh window of a key test (duplicate_keys). -#}
{% macro default__test_unique(model, column_name) %}
{{ duplicate_keys(model, [column_name], count_name='n_records', key_name='unique_field') }}
{% endmacro %}

{#-
    For a singular test of several models keyed by period: true for the periods this run rebuilt in a model whose
    refresh_reach_months is `reach` (every period on a full build, or without a refresh window).
-#}
{% macro in_rebuilt_window(column, reach) %}
    {%- set bounds = refresh_window_bounds(reach) -%}
    {%- if flags.FULL_REFRESH or bounds[0] is none -%}
        true
    {%- elif bounds[1] is none -%}
        {{ column }} >= {{ bounds[0] }}
    {%- else -%}
        {{ column }} between {{ bounds[0] }} and cast({{ bounds[1] }} as date)
    {%- endif -%}
{% endmacro %}

{#- For singular tests: true for the periods a data test checks (see default__get_where_subquery). -#}
{% macro in_tested_window(column) %}
    {%- set first = refresh_window_bounds()[0] -%}
    {%- if first and not flags.FULL_REFRESH -%}
        {{ column }} >= {{ first }}
    {%- else -%}
        true
    {%- endif -%}
{% endmacro %}

{#-
    How a model keyed by period replaces the periods of the refresh window, per engine:
      DuckDB  replace_periods (above): delete the window's periods and insert the rebuilt rows, one transaction;
      Spark   insert_overwrite of the table's `period` partitions (dbt-spark, dynamic partition overwrite, parquet),
              which replaces the partitions the rebuilt rows fill; empty_stale_periods then drops the window's
              partitions that no longer have any row, so a period that lost all its rows is emptied as on DuckDB.
    A Spark table stores its partition column last; the column order a model declares (its yml columns, DuckDB's
    order) is the one readers select.
-#}
{% macro period_incremental_strategy() %}
    {{- return(adapter.dispatch('period_incremental_strategy', 'cprof')()) -}}
{% endmacro %}
{% macro default__period_incremental_strategy() %}{{ return('replace_periods') }}{% endmacro %}
{% macro spark__period_incremental_strategy() %}{{ return('insert_overwrite') }}{% endmacro %}

{% macro period_partition_by() %}{{ return(adapter.dispatch('period_partition_by', 'cprof')()) }}{% endmacro %}
{% macro default__period_partition_by() %}{{ return(none) }}{% endmacro %}
{% macro spark__period_partition_by() %}{{ return(['period']) }}{% endmacro %}

{#- Post-hook of every model (dbt_project.yml): SQL that empties the refresh window's periods left without rows. -#}
{% macro empty_stale_periods() %}{{ return(adapter.dispatch('empty_stale_periods', 'cprof')()) }}{% endmacro %}

{#- replace_periods deletes the whole window before inserting: nothing is left to empty. -#}
{% macro default__empty_stale_periods() %}{% endmacro %}

{#-
    After insert_overwrite: the window's partitions of the table that the rebuilt rows (dbt-spark's temporary view
    <model>__dbt_tmp, present only in an incremental run) did not fill are dropped, with their files.
-#}
{% macro spark__empty_stale_periods() %}
    {%- if not execute or config.get('materialized') != 'incremental' or not is_incremental() -%}
        {{ return('') }}
    {%- endif -%}
    {%- set rebuilt = this.identifier ~ '__dbt_tmp' -%}
    {%- if run_query("show views like '" ~ rebuilt ~ "'").rows | length == 0 -%}
        {{ return('') }}
    {%- endif -%}
    {%- set stale = run_query(
        "select distinct cast(period as string) from " ~ this ~ " where " ~ in_refresh_window('period')
        ~ " and period not in (select distinct period from " ~ rebuilt ~ ")"
    ).columns[0].values() -%}
    {#- Not run_query: a statement without a result set has no cursor description over Thrift (PyHive). -#}
    {%- do adapter.execute("drop view if exists " ~ rebuilt, fetch=False) -%}
    {#- A test's hook (CPROF_FAIL_AT, as in pipelines/engines/spark_warehouse.py): the model fails after its partitions
        were overwritten and before the emptied ones are dropped, as a process dying there would leave it. -#}
    {%- if env_var('CPROF_FAIL_AT', '') == 'empty_stale_periods:' ~ this.identifier -%}
        {{ exceptions.raise_compiler_error("CPROF_FAIL_AT=empty_stale_periods:" ~ this.identifier ~ ": failing here (a test's hook), stale periods " ~ (stale | join(', '))) }}
    {%- endif -%}
    {%- if stale | length > 0 -%}
        {%- for period in stale if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', period) -%}
            {{ exceptions.raise_compiler_error("unexpected period " ~ period ~ " in " ~ this) }}
        {%- endfor -%}
        alter table {{ this }} drop if exists
        {%- for period in stale | sort %} partition (period = '{{ period }}'){{ "," if not loop.last }}{% endfor %}
    {%- endif -%}
{% endmacro %}

{#-
    For a model that carries a per-customer state forward (int_clv_customer_state): the latest period of its own
    table before the refresh window, as an ISO date, or none when the run rebuilds from the start (a full build,
    --full-refresh, no window, or no period of the table before the window). Queried when the model executes,
    so the model reads that one period of itself by a literal (a partition on Spark).
-#}
{% macro carried_state_period() %}
    {%- if not execute or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set first = refresh_window_bounds()[0] -%}
    {%- if first is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set found = run_query(
        "select cast(max(period) as " ~ dbt.type_string() ~ ") from " ~ this ~ " where period < " ~ first
    ).columns[0].values()[0] -%}
    {%- if found is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', found | string) -%}
        {{ exceptions.raise_compiler_error("unexpected period " ~ found ~ " in " ~ this) }}
    {%- endif -%}
    {{ return(found | string) }}
{% endmacro %}

{#-
    A predicate on `column` for the rows a trailing window of the rebuilt periods reads: true on a full build (every
    period rebuilt), else the periods after the window's first month minus `months` months. It lets the engine skip
    the older periods of the relation before it joins them to the rebuilt ones.
-#}
{% macro in_trailing_reach(column, months) %}
    {%- set bounds = refresh_window_bounds() -%}
    {%- if not is_incremental() or bounds[0] is none -%}
        true
    {%- else -%}
        {{ column }} > cast({{ bounds[0] }} - interval {{ months }} month as date)
    {%- endif -%}
{% endmacro %}
