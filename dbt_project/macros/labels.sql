{#- The labels of one kind of code (seeds/code_labels.csv): a relation of code, label, description. -#}
{% macro code_labels(kind) -%}
    (select code, label, description from {{ ref('code_labels') }} where kind = '{{ kind }}')
{%- endmacro %}

{#- A code's label: the seed's, else the code title-cased (never blank). -#}
{% macro label_or_code(label, code) -%}
    coalesce({{ label }}, {{ words_title_cased(code, '_') }})
{%- endmacro %}
