with source as (
    select * from {{ source('survey', 'survey_responses') }}
),

renamed as (
    select
        response_id,
        customer_id,
        responded_at,
        cast(date_trunc('month', responded_at) as date) as period,
        question_id,
        score,
        _source_file as source_file
    from source
)

select * from renamed
