{{ config(meta={"dagster": {"ref": {"name": "scenario_customer_profitability"}}}) }}
-- Scenario `actual` is the published marts: in each scenario month, scenario_customer_profitability,
-- scenario_activity_costs, scenario_cost_center_capacity and scenario_whale_curve of actual hold exactly the
-- rows of customer_profitability, activity_costs, cost_center_capacity and whale_curve (every column of the
-- published mart, each row as often), computed independently by the scenario models from the same inputs.
{%- set pairs = [
    ('scenario_customer_profitability', 'customer_profitability'),
    ('scenario_activity_costs', 'activity_costs'),
    ('scenario_cost_center_capacity', 'cost_center_capacity'),
    ('scenario_whale_curve', 'whale_curve'),
] %}
with months as (
    select period from {{ ref('int_scenario_months') }} where scenario = 'actual'
)
{%- for scenario_model, published_model in pairs %}
{%- set node = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model')
    | selectattr('name', 'equalto', published_model) | first %}
{%- set columns = (node.columns.keys() | list) if execute else ['period'] %}
{%- if execute and columns | length == 0 %}
    {{ exceptions.raise_compiler_error(published_model ~ " documents no columns to compare") }}
{%- endif %}
, {{ published_model }}_missing as (
    select {{ columns | join(', ') }} from {{ ref(published_model) }} where period in (select period from months)
    except all
    select {{ columns | join(', ') }} from {{ ref(scenario_model) }} where scenario = 'actual'
)
, {{ published_model }}_extra as (
    select {{ columns | join(', ') }} from {{ ref(scenario_model) }} where scenario = 'actual'
    except all
    select {{ columns | join(', ') }} from {{ ref(published_model) }} where period in (select period from months)
)
{%- endfor %}
{%- for scenario_model, published_model in pairs %}
select '{{ published_model }}' as published_mart, 'missing from scenario actual' as difference, count(*) as rows_differing
from {{ published_model }}_missing having count(*) > 0
union all
select '{{ published_model }}', 'only in scenario actual', count(*) from {{ published_model }}_extra having count(*) > 0
{% if not loop.last %}union all{% endif %}
{%- endfor %}
