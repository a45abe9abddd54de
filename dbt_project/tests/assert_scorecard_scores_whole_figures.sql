{{ config(meta={"dagster": {"ref": {"name": "customer_scorecard"}}}) }}
-- A colour only for a whole figure against a target; not_scored exactly when a reason is given; a trend only
-- between whole figures (docs/DESIGN.md, customer balanced scorecard).
select period, segment, metric, status, status_reason, trend
from {{ ref('customer_scorecard') }}
where {{ in_tested_window('period') }}
    and (
        (status in ('green', 'amber', 'red')
            and (status_reason is not null or not window_complete or actual is null or target is null))
        or ((status = 'not_scored') <> (status_reason is not null))
        or (trend is not null and (not window_complete or actual is null))
    )
