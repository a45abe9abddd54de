-- The metric catalogue: one row per metric of the semantic layer (models/semantic/metrics.yml, docs/metrics.md),
-- generated at run time from dbt's graph of those metric definitions (their label, description and config.meta
-- unit and formula), so that it cannot drift from what MetricFlow computes. currency: the dbt var `currency`
-- (ISO 4217, the platform's setting) for a metric in money (unit currency), else null. Each text goes into the
-- SQL as a literal (text_literal, macros/text_literal.sql).
{%- set metrics = [] %}
{%- if execute %}
    {%- for metric in graph.metrics.values() | sort(attribute='name') %}
        {%- do metrics.append(metric) %}
    {%- endfor %}
{%- endif %}


with catalogue as (
    {%- for metric in metrics %}
    {%- set meta = metric.config.meta if metric.config and metric.config.meta else metric.meta %}
    select
        {{ text_literal(metric.name) }} as name,
        {{ text_literal(metric.label) }} as label,
        {{ text_literal(metric.description) }} as description,
        {{ text_literal(meta.get('formula')) }} as formula,
        {{ text_literal(meta.get('unit')) }} as unit,
        {{ text_literal(var('currency') if meta.get('unit') == 'currency' else none) }} as currency
    {{- "\n    union all" if not loop.last }}
    {%- else %}
    -- no metric defined (or the graph not read yet, at parse): an empty catalogue of the same columns
    select
        {{ text_literal(none) }} as name,
        {{ text_literal(none) }} as label,
        {{ text_literal(none) }} as description,
        {{ text_literal(none) }} as formula,
        {{ text_literal(none) }} as unit,
        {{ text_literal(none) }} as currency
    where 1 = 0
    {%- endfor %}
)

select * from catalogue
