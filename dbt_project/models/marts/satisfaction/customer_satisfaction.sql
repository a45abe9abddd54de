-- The satisfaction of each responding customer per month: responses, NPS, CSAT (% overall >= 8) and the 0-100
-- satisfaction index, sum of weight x (mean rating - 1) / 9 x 100 over the attributes answered, weighted by the
-- month's derived importance (marts.satisfaction_drivers, written by the Python asset before this model runs).
-- Those weights use a trailing 12-month window of responses, so a changed month reaches the 11 after it.
-- Question ids are data: the questions are told apart by their kind (stg_survey__questions), never by id.
{{ config(materialized='incremental', incremental_strategy=period_incremental_strategy(), partition_by=period_partition_by(), on_schema_change='fail', meta={'refresh_reach_months': 11}) }}
with questions as (
    select * from {{ ref('stg_survey__questions') }}
),

answers as (
    select
        responses.response_id,
        responses.customer_id,
        responses.period,
        responses.question_id,
        responses.score,
        questions.kind
    from {{ ref('stg_survey__responses') }} as responses
    left join questions on responses.question_id = questions.question_id
    where {{ in_refresh_window('responses.period') }}
),

responses as (
    select
        response_id,
        any_value(customer_id) as customer_id,
        any_value(period) as period,
        max(score) filter (where kind = 'nps') as nps_score,
        max(score) filter (where kind = 'overall') as overall_score
    from answers
    group by response_id
),

attribute_means as (
    select period, customer_id, question_id, avg(score) as mean_score
    from answers
    where kind = 'attribute'
    group by period, customer_id, question_id
),

-- Summed in question order, one term per answered attribute: the same additions, in the same order, as a sum
-- over every attribute with 0 for the unanswered ones (adding 0.0 is exact), and the same on every engine.
indexed as (
    select
        means.period,
        means.customer_id,
        {{ ordered_sum('coalesce(weights.importance_weight * (means.mean_score - 1) / 9, 0)', 'means.question_id') }}
            as weighted,
        {{ ordered_sum('weights.importance_weight', 'means.question_id') }} as answered
    from attribute_means as means
    left join {{ source('python_marts', 'satisfaction_drivers') }} as weights
        on means.period = weights.period and means.question_id = weights.question_id
    group by means.period, means.customer_id
),

customers as (
    select * from {{ ref('stg_crm__customers') }}
),

final as (
    select
        s.period,
        s.customer_id,
        any_value(c.segment) as segment,
        cast(count(*) as integer) as responses,
        cast(
            {{ ratio('100.0 * (count(*) filter (where s.nps_score >= 9) - count(*) filter (where s.nps_score <= 6))', 'nullif(count(s.nps_score), 0)') }}
            as double
        ) as nps,
        cast({{ ratio('100.0 * count(*) filter (where s.overall_score >= 8)', 'nullif(count(s.overall_score), 0)') }} as double)
            as csat,
        cast(100 * any_value(i.weighted) / nullif(any_value(i.answered), 0) as double) as satisfaction_index
    from responses as s
    left join customers as c on s.customer_id = c.customer_id
    left join indexed as i on s.period = i.period and s.customer_id = i.customer_id
    group by s.period, s.customer_id
)

select * from final
