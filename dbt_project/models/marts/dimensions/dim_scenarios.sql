-- One row per what-if scenario of landing/reference/scenarios.csv, and the implicit baseline `actual`.
-- A change without months applies to the release's trailing 12 months (docs/DESIGN.md, Scenarios).
with changes as (
    select * from {{ ref('stg_config__scenarios') }}
),

release as (
    select max(period) as last_period from {{ ref('stg_erp__order_lines') }}
),

file as (
    -- the SHA-256 of the scenarios file whose rows raw holds (none when the file is absent)
    select max(sha256) as version
    from {{ source('ingest_records', '_snapshot_files') }}
    where source = 'scenarios' and promoted_at is not null and sha256 <> 'absent'
),

resolved as (
    select
        changes.scenario,
        changes.description,
        changes.lever,
        coalesce(
            changes.first_period, cast({{ dbt.dateadd('month', -11, 'release.last_period') }} as date)
        ) as first_period,
        coalesce(changes.last_period, release.last_period) as last_period
    from changes
    cross join release
),

scenarios as (
    select
        scenario,
        min(description) as description,
        false as is_baseline,
        cast(count(*) as integer) as changes,
        string_agg(distinct lever, ', ' order by lever) as levers,
        min(first_period) as first_period,
        max(last_period) as last_period
    from resolved
    group by scenario
),

baseline as (
    select
        'actual' as scenario,
        'The baseline: the published marts as they are, no lever changed; every scenario is compared with it.'
            as description,
        true as is_baseline,
        0 as changes,
        cast(null as varchar) as levers,
        cast(null as date) as first_period,
        cast(null as date) as last_period
),

final as (
    select baseline.*, cast(null as varchar) as version from baseline
    union all
    select scenarios.*, file.version from scenarios cross join file
)

select * from final
