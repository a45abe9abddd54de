{#- Whole cents (an integer) to a DECIMAL(18, 2) money amount, exactly (no floating-point division). -#}
{% macro cents_to_money(cents) -%}
    cast(cast({{ cents }} as decimal(18, 0)) * 0.01 as decimal(18, 2))
{%- endmacro %}
