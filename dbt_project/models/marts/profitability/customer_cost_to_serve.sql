-- Cost-to-serve per period, customer and activity, with the cost centre each amount came from.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail') }}
select
    period,
    customer_id,
    activity,
    cost_center,
    driver,
    driver_volume,
    rate_per_unit,
    allocated_cost
from {{ ref('int_activity_costs_allocated_to_customers') }}
where {{ in_refresh_window('period') }}
