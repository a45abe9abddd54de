{#-
    The costing method's arithmetic that both the actual costing models and the scenario models compute, written
    once so that a scenario is the same model run on changed inputs (docs/DESIGN.md, Scenarios).
-#}

{#-
    A time-driven activity's cost in whole cents (costing method, step 2): rate x unit_minutes x driver volume,
    with rate = ledger cost / practical capacity, rounded half up in integer arithmetic (minutes and volumes
    scaled to integers at 4 decimals, the scale the model keeps them at).
-#}
{% macro time_driven_cost_cents(ledger_cost, unit_minutes, driver_volume, practical_capacity_minutes) %}
{%- set int128 = type_int128() -%}
{{ integer_divide(
    "cast(" ~ ledger_cost ~ " * 100 as " ~ int128 ~ ") * cast(" ~ unit_minutes ~ " * 10000 as " ~ int128 ~ ")
    * cast(" ~ driver_volume ~ " * 10000 as " ~ int128 ~ ")
    + cast(" ~ practical_capacity_minutes ~ " as " ~ int128 ~ ") * 50000000",
    "cast(" ~ practical_capacity_minutes ~ " as " ~ int128 ~ ") * 100000000",
) }}
{%- endmacro %}

{#-
    A quantity after one scenario change (docs/DESIGN.md, Scenarios): `change` is the alias of a joined row of
    int_scenario_changes, or of none (a left join that found no change: the quantity is unchanged).
-#}
{% macro scenario_applied(quantity, change) -%}
case {{ change }}.operation
    when 'set' then {{ change }}.value
    when 'multiply' then {{ quantity }} * {{ change }}.value
    when 'add' then {{ quantity }} + {{ change }}.value
    else {{ quantity }}
end
{%- endmacro %}

{#- The join condition of a change to the scenario and month of `row`: its scenario, lever and months. -#}
{% macro scenario_change_applies(change, row, lever) -%}
{{ change }}.scenario = {{ row }}.scenario
    and {{ change }}.lever = '{{ lever }}'
    and {{ row }}.period between {{ change }}.first_period and {{ change }}.last_period
{%- endmacro %}
