{#-
    SQL that differs between the engines the models run on, one macro per construct, dispatched the way
    dbt-utils writes its macros: default__ is DuckDB (the embedded default, the SQL the models had before the
    port, so DuckDB's results do not change), spark__ is Apache Spark (dbt-spark). Where one spelling works on
    both, the models use it directly; dbt's own cross-database macros (dbt.datediff, dbt.type_string) are used
    where they give the same result on both.
-#}

{#- An exact integer type wide enough for products of cents and scaled weights. -#}
{% macro type_int128() %}{{ return(adapter.dispatch('type_int128', 'cprof')()) }}{% endmacro %}
{% macro default__type_int128() %}hugeint{% endmacro %}
{% macro spark__type_int128() %}decimal(38, 0){% endmacro %}

{#- Integer division truncating toward zero (both operands exact integers). -#}
{% macro integer_divide(numerator, denominator) %}
    {{- return(adapter.dispatch('integer_divide', 'cprof')(numerator, denominator)) -}}
{% endmacro %}
{% macro default__integer_divide(numerator, denominator) %}({{ numerator }}) // ({{ denominator }}){% endmacro %}
{% macro spark__integer_divide(numerator, denominator) %}cast(({{ numerator }}) div ({{ denominator }}) as decimal(38, 0)){% endmacro %}

{#-
    A ratio as DuckDB computes `/` on DECIMAL and INTEGER operands: in double precision. Spark divides
    decimals exactly and rounds differently, so it is told to divide doubles; a ratio is then the same
    number on both engines, and so is the DECIMAL it is cast to.
-#}
{% macro ratio(numerator, denominator) %}
    {{- return(adapter.dispatch('ratio', 'cprof')(numerator, denominator)) -}}
{% endmacro %}
{% macro default__ratio(numerator, denominator) %}{{ numerator }} / {{ denominator }}{% endmacro %}
{% macro spark__ratio(numerator, denominator) %}cast({{ numerator }} as double) / cast({{ denominator }} as double){% endmacro %}

{#-
    A DOUBLE as a DECIMAL(precision, scale) the way DuckDB casts it: the value times 10^scale, in double
    precision, rounded half away from zero. Spark's cast rounds the double's shortest decimal spelling instead
    (259.965 becomes 259.97 on Spark, 259.96 on DuckDB, whose 259.965 * 100 is 25996.4999...), so on Spark the
    same steps are written out; round() of a DOUBLE there rounds half away from zero too.
-#}
{% macro double_as_decimal(expression, precision, scale) %}
    {{- return(adapter.dispatch('double_as_decimal', 'cprof')(expression, precision, scale)) -}}
{% endmacro %}
{% macro default__double_as_decimal(expression, precision, scale) %}cast({{ expression }} as decimal({{ precision }}, {{ scale }})){% endmacro %}
{% macro spark__double_as_decimal(expression, precision, scale) -%}
    cast(
        cast(round(({{ expression }}) * cast(1e{{ scale }} as double), 0) as decimal(38, 0)) * 0.{{ '0' * (scale - 1) }}1
        as decimal({{ precision }}, {{ scale }})
    )
{%- endmacro %}

{#-
    The mean of a DECIMAL expression with `input_scale` decimals, rounded half away from zero to `scale`
    decimals (scale >= input_scale) in exact integer arithmetic, then given as a DOUBLE: the same number on
    every engine, even when the exact mean lies halfway between two roundings (629,429.73 over 120 customers is
    5,245.24775: a mean computed in double precision may fall either side of that half, and round either way).
    Null when the expression has no non-null value.
-#}
{% macro rounded_mean(expression, input_scale, scale) -%}
    {%- set total = "sum(cast((" ~ expression ~ ") * " ~ (10 ** input_scale) ~ " as " ~ type_int128() ~ "))" -%}
    {%- set count = "count(" ~ expression ~ ")" -%}
    {%- set half_up = integer_divide(
        "2 * abs(" ~ total ~ ") * " ~ (10 ** (scale - input_scale)) ~ " + " ~ count,
        "2 * nullif(" ~ count ~ ", 0)"
    ) -%}
    cast(case when {{ total }} < 0 then -({{ half_up }}) else {{ half_up }} end as double) / {{ 10 ** scale }}
{%- endmacro %}

{#-
    rounded_mean from a group's running figures: `total`, the exact DECIMAL sum of the values (`input_scale`
    decimals), over `count` values; the same number rounded_mean gives of those values (null when count is 0).
-#}
{% macro rounded_quotient(total, count, input_scale, scale) -%}
    {%- set total = "cast((" ~ total ~ ") * " ~ (10 ** input_scale) ~ " as " ~ type_int128() ~ ")" -%}
    {%- set half_up = integer_divide(
        "2 * abs(" ~ total ~ ") * " ~ (10 ** (scale - input_scale)) ~ " + " ~ count,
        "2 * nullif(" ~ count ~ ", 0)"
    ) -%}
    cast(case when {{ total }} < 0 then -({{ half_up }}) else {{ half_up }} end as double) / {{ 10 ** scale }}
{%- endmacro %}

{#-
    The sum of a group's `term`s added one by one in the order of `order_by` (unique within the group), left to
    right, a null term making the sum null: a floating-point sum whose additions, and so whose bits, do not
    depend on how the engine groups the rows. DuckDB reduces the ordered list; Spark folds the sorted
    (order_by, term) pairs, starting from 0.0 (0.0 + the first term is that term).
-#}
{% macro ordered_sum(term, order_by) %}
    {{- return(adapter.dispatch('ordered_sum', 'cprof')(term, order_by)) -}}
{% endmacro %}
{% macro default__ordered_sum(term, order_by) -%}
    list_reduce(list({{ term }} order by {{ order_by }}), lambda total, term: total + term)
{%- endmacro %}
{% macro spark__ordered_sum(term, order_by) -%}
    aggregate(
        array_sort(collect_list(named_struct('position', {{ order_by }}, 'term', {{ term }}))),
        cast(0 as double),
        (total, pair) -> total + pair.term
    )
{%- endmacro %}

{#-
    Written after `name as` in a CTE referenced twice: DuckDB would otherwise materialize every period of it
    before the refresh window filters. Spark inlines CTEs and has no such hint.
-#}
{% macro cte_not_materialized() %}{{ return(adapter.dispatch('cte_not_materialized', 'cprof')()) }}{% endmacro %}
{% macro default__cte_not_materialized() %}not materialized{% endmacro %}
{% macro spark__cte_not_materialized() %}{% endmacro %}

{#- The strings of a group joined by a delimiter in ascending order (dbt.listagg ignores the order on Spark). -#}
{% macro sorted_string_agg(measure, delimiter) %}
    {{- return(adapter.dispatch('sorted_string_agg', 'cprof')(measure, delimiter)) -}}
{% endmacro %}
{% macro default__sorted_string_agg(measure, delimiter) %}string_agg({{ measure }}, {{ delimiter }} order by {{ measure }}){% endmacro %}
{% macro spark__sorted_string_agg(measure, delimiter) %}array_join(array_sort(collect_list({{ measure }})), {{ delimiter }}){% endmacro %}

{#- Fails the query with the message (a string expression) when evaluated. -#}
{% macro fail_with(message) %}{{ return(adapter.dispatch('fail_with', 'cprof')(message)) }}{% endmacro %}
{% macro default__fail_with(message) %}error({{ message }}){% endmacro %}
{% macro spark__fail_with(message) %}raise_error({{ message }}){% endmacro %}

{#- A 'YYYY-MM' text as the DATE of the first of that month; anything else fails the query. -#}
{% macro month_start_from_text(text) %}
    {{- return(adapter.dispatch('month_start_from_text', 'cprof')(text)) -}}
{% endmacro %}
{% macro default__month_start_from_text(text) %}cast(strptime({{ text }} || '-01', '%Y-%m-%d') as date){% endmacro %}
{% macro spark__month_start_from_text(text) %}to_date({{ text }} || '-01', 'yyyy-MM-dd'){% endmacro %}

{#-
    Model contracts on Spark: the yml data types are written as DuckDB spells them, and Spark has no VARCHAR
    without a length; its strings are STRING. dbt builds the contract's empty schema query from those types.
-#}
{% macro spark__get_empty_schema_sql(columns) %}
    {%- set translated = {} -%}
    {%- for name, column in columns.items() -%}
        {%- set spark_column = column.copy() -%}
        {%- if (column.get('data_type') or '') | lower | trim == 'varchar' -%}
            {%- do spark_column.update({'data_type': 'string'}) -%}
        {%- endif -%}
        {%- do translated.update({name: spark_column}) -%}
    {%- endfor -%}
    {{ return(dbt.default__get_empty_schema_sql(translated)) }}
{% endmacro %}

{#- A code such as head_of_sales as words with capitals: Head Of Sales. -#}
{% macro words_title_cased(expression, separator) %}
    {{- return(adapter.dispatch('words_title_cased', 'cprof')(expression, separator)) -}}
{% endmacro %}
{% macro default__words_title_cased(expression, separator) -%}
    list_aggregate(
        list_transform(string_split({{ expression }}, '{{ separator }}'), lambda w: upper(w[1]) || w[2:]), 'string_agg', ' '
    )
{%- endmacro %}
{% macro spark__words_title_cased(expression, separator) -%}
    array_join(transform(split({{ expression }}, '{{ separator }}'), w -> concat(upper(substr(w, 1, 1)), substr(w, 2))), ' ')
{%- endmacro %}

{#-
    In a select list: `count` rows for each row of the relation (an integer expression, at least 1), numbered
    from 0 (DuckDB) or 1 (Spark): a generator, so the select has no other.
-#}
{% macro rows_of(count) %}{{ return(adapter.dispatch('rows_of', 'cprof')(count)) }}{% endmacro %}
{% macro default__rows_of(count) %}unnest(range({{ count }})){% endmacro %}
{% macro spark__rows_of(count) %}explode(sequence(1, {{ count }})){% endmacro %}
