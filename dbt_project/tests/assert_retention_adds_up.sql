{{ config(meta={"dagster": {"ref": {"name": "customer_retention"}}}) }}
-- Retained + churned = active before; the segments add up to 'all'.
with retention as (
    select * from {{ ref('customer_retention') }}
),

segments as (
    select
        period,
        sum(active_customers) as active_customers,
        sum(retained_customers) as retained_customers,
        sum(new_customers) as new_customers,
        sum(churned_customers) as churned_customers
    from retention
    where segment <> 'all'
    group by period
)

select retention.period, retention.segment
from retention
where retention.retained_customers + retention.churned_customers <> retention.prior_active_customers

union all

select segments.period, 'all'
from segments
inner join retention on retention.period = segments.period and retention.segment = 'all'
where segments.active_customers <> retention.active_customers
    or segments.retained_customers <> retention.retained_customers
    or segments.new_customers <> retention.new_customers
    or segments.churned_customers <> retention.churned_customers
