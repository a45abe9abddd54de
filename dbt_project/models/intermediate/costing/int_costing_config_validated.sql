-- The activity configuration joined to its cost centres, built only when the configuration is coherent.
-- Any broken rule stops the build with a message that names the activity or centre and the rule.
with activities as (
    select * from {{ ref('stg_config__activities') }}
),

cost_centers as (
    select * from {{ ref('stg_config__cost_centers') }}
),

-- The drivers int_drivers_aggregated_to_customer_month computes.
known_drivers as (
    select * from (values
        ('orders'), ('order_lines'), ('express_orders'), ('returns'), ('support_minutes'), ('visit_minutes')
    ) as drivers (driver)
),

share_totals as (
    select cost_center, sum(share) as total_share
    from activities
    where method = 'share'
    group by cost_center
),

problems as (
    select 'activity ' || activities.activity || ' is on cost centre ' || activities.cost_center
        || ', which is not in cost_centers' as problem
    from activities
    anti join cost_centers on activities.cost_center = cost_centers.cost_center

    union all
    select 'activity ' || activity || ' has driver ' || driver || ', which nobody computes (known drivers: '
        || (select {{ sorted_string_agg("driver", "', '") }} from known_drivers) || ')'
    from activities
    where driver not in (select driver from known_drivers)

    union all
    select 'activity ' || activity || ' has method ' || coalesce(method, 'NULL') || ' (expected time or share)'
    from activities
    where method is null or method not in ('time', 'share')

    union all
    select 'activity ' || activity || ' uses the time method but has no positive unit_minutes'
    from activities
    where method = 'time' and coalesce(unit_minutes, 0) <= 0

    union all
    select 'activity ' || activity || ' uses the share method but has no share between 0 and 1'
    from activities
    where method = 'share' and (share is null or share <= 0 or share > 1)

    union all
    select 'cost centre ' || cost_center || ': the shares of its activities sum to '
        || cast(round(total_share * 100, 4) as {{ dbt.type_string() }}) || ' %, they must sum to 100 %'
    from share_totals
    where total_share <> 1

    union all
    select 'cost centre ' || activities.cost_center || ' has time-driven activity ' || activities.activity
        || ' but no practical_capacity_minutes'
    from activities
    inner join cost_centers on activities.cost_center = cost_centers.cost_center
    where activities.method = 'time' and coalesce(cost_centers.practical_capacity_minutes, 0) <= 0

    union all
    select 'cost centre ' || cost_center || ' mixes time and share activities; use one method per centre'
    from activities
    group by cost_center
    having count(distinct method) > 1

    union all
    select 'activity ' || activities.activity || ' is on business-sustaining cost centre '
        || activities.cost_center || ' (customer_driven = false); sustaining centres have no activities'
    from activities
    inner join cost_centers on activities.cost_center = cost_centers.cost_center
    where not cost_centers.customer_driven
),

validation as (
    select
        case
            when count(*) > 0
                then {{ fail_with("'costing configuration is broken: ' || " ~ sorted_string_agg("problem", "'; '")) }}
            else true
        end as is_valid
    from problems
),

final as (
    select
        activities.activity,
        activities.cost_center,
        activities.driver,
        activities.method,
        activities.unit_minutes,
        activities.share,
        cost_centers.practical_capacity_minutes
    from activities
    inner join cost_centers on activities.cost_center = cost_centers.cost_center
    cross join validation
    where validation.is_valid
)

select * from final
