with source as (
    select * from {{ source('survey', 'survey_questions') }}
),

renamed as (
    select
        question_id,
        kind,
        label
    from source
)

select * from renamed
