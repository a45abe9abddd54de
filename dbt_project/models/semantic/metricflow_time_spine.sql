-- MetricFlow's time spine (docs/metrics.md): one row per day. MetricFlow joins it for cumulative metrics (the
-- trailing windows) and for rollups of metric_time. Its range is fixed, 2000-01-01 to 2039-12-31, wider than any
-- history the platform keeps; a constant, not a value from the data. Portable: dbt's date_spine macro, which each
-- adapter (DuckDB, Spark) renders in its own SQL.
{{ config(materialized='table') }}

with days as (
    {{ dbt.date_spine('day', "cast('2000-01-01' as date)", "cast('2040-01-01' as date)") }}
)

select cast(date_day as date) as date_day
from days
