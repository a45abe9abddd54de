-- marts.customer_clv (written by the Python CLV asset, a dbt source) as a dbt model: a MetricFlow semantic model
-- reads a model, not a source. A view, in the second dbt step (after the Python marts); not published.
{{ config(materialized='view') }}
select * from {{ source('python_marts', 'customer_clv') }}
