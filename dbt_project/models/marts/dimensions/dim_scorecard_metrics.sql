with metrics as (
    select * from {{ ref('scorecard_metrics') }}
),

company_targets as (
    select * from {{ ref('stg_config__scorecard_targets') }}
    where segment = 'all'
),

owners as (
    select * from {{ ref('dim_scorecard_owners') }}
),

final as (
    select
        coalesce(metrics.metric, company_targets.metric) as metric,
        metrics.label,
        metrics.unit,
        metrics.description,
        company_targets.direction,
        company_targets.owner,
        owners.owner_display_name
    from metrics
    -- full join: a target on a metric the code does not label fails the not_null test on label
    full join company_targets on metrics.metric = company_targets.metric
    left join owners on company_targets.owner = owners.owner
)

select * from final
