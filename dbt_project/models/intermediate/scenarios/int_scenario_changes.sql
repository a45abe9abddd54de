-- Every change of the scenarios file with its target resolved and its months (docs/DESIGN.md, Scenarios): a
-- change without months applies to the release's trailing 12 months, within history. target_name is what the
-- lever changes (an activity, a cost centre, a survey question; for unit_price the whole target) and
-- target_scope the part after ':' (for unit_price the target again); scope_kind says what the scope is:
-- `all` (no scope), `segment` or `customer`, and for unit_price `product`, `segment` or `customer`, looked up
-- in that order.
with changes as (
    select * from {{ ref('stg_config__scenarios') }}
),

release as (
    select min(period) as first_period, max(period) as last_period from {{ ref('stg_erp__order_lines') }}
),

products as (
    select product_id from {{ ref('stg_erp__products') }}
),

segments as (
    select distinct segment from {{ ref('stg_crm__customers') }}
),

parts as (
    select
        *,
        case when lever = 'unit_price' then target
            when instr(target, ':') > 0 then substr(target, 1, instr(target, ':') - 1)
            else target end as target_name,
        case when lever = 'unit_price' then target
            when instr(target, ':') > 0 then substr(target, instr(target, ':') + 1) end as target_scope
    from changes
),

final as (
    select
        parts.scenario,
        parts.description,
        parts.lever,
        parts.target,
        parts.target_name,
        parts.target_scope,
        case
            when parts.lever = 'unit_price' and products.product_id is not null then 'product'
            when parts.target_scope is null then 'all'
            when segments.segment is not null then 'segment'
            else 'customer'
        end as scope_kind,
        parts.operation,
        parts.value,
        coalesce(
            parts.first_period,
            greatest(release.first_period, cast({{ dbt.dateadd('month', -11, 'release.last_period') }} as date))
        ) as first_period,
        coalesce(parts.last_period, release.last_period) as last_period,
        parts.version
    from parts
    cross join release
    left join products on parts.lever = 'unit_price' and parts.target = products.product_id
    left join segments on parts.target_scope = segments.segment
)

select * from final
