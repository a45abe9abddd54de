-- The months in the warehouse, one row each with its customers (every month has customer rows in
-- customer_profitability): history starts at the first of them. Small, so that retention reads the start of
-- history and the months of its windows without reading the mart.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail') }}
select
    period,
    cast(count(*) as integer) as customers
from {{ ref('customer_profitability') }}
where {{ in_refresh_window('period') }}
group by period
