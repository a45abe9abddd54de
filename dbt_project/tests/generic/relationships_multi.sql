{#- Every row's composite key (columns) exists in the parent model (to_columns, in the same order). -#}
{% test relationships_multi(model, columns, to, to_columns) %}
select child.*
from {{ model }} as child
left join {{ to }} as parent
    on {% for column in columns %}child.{{ column }} = parent.{{ to_columns[loop.index0] }}{% if not loop.last %} and {% endif %}{% endfor %}
where parent.{{ to_columns[0] }} is null
{% endtest %}
