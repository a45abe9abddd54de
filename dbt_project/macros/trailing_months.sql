{#-
    The trailing 12 months of `relation` at each as-of month, as running sums (customer_profit_levers): one row per
    as-of month of the model's `months` CTE (period, month_index = year x 12 + month) and `keys`, where the keys
    have a row in the 12 months up to it, with the max of each of `maxima` and the sum of each of `sums` over those
    months. `relation` has `keys`, month_index and the columns, one row per keys and month.

    Not a join of every as-of month to its 12 months, which aggregates 12 rows per row: a row of month m is in
    the windows of the as-of months m to m + 11, so each row spans the as-of months up to the next row of its keys
    or 11 months on (its own values in its month, none after), and a window's figures are those of the rows from
    11 months before its as-of month (a decimal sum is exact in any order).
-#}
{% macro trailing_12_months(relation, keys, maxima, sums) %}
{%- set partition = keys | join(', ') -%}
select
    as_of_period,
    {{ partition }},
    {%- for column in maxima %}
    max({{ column }}) over last_12 as {{ column }},
    {%- endfor %}
    {%- for column in sums %}
    sum({{ column }}) over last_12 as {{ column }}{{ ',' if not loop.last }}
    {%- endfor %}
from (
    select
        months.period as as_of_period,
        months.month_index,
        {%- for key in keys %}
        spans.{{ key }},
        {%- endfor %}
        {%- for column in maxima + sums %}
        case when months.month_index = spans.month_index then spans.{{ column }} end as {{ column }}
            {{- ',' if not loop.last }}
        {%- endfor %}
    from (
        select
            *,
            -- The last as-of month of the row's span, plus one.
            least(
                coalesce(lead(month_index) over (partition by {{ partition }} order by month_index), month_index + 12),
                month_index + 12
            ) as span_end
        from {{ relation }}
    ) as spans
    inner join months
        on months.month_index >= spans.month_index
        and months.month_index < spans.span_end
) as spine
window last_12 as (partition by {{ partition }} order by month_index range between 11 preceding and current row)
{% endmacro %}
