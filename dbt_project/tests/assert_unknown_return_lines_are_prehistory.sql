{{ config(meta={"dagster": {"ref": {"name": "int_returns_joined_to_order_lines"}}}) }}
-- A return whose order line the warehouse does not have is of a line ordered before the start of history (the
-- first month of order lines): by its order date when the returns file gives one, else it is dated within the
-- return window ($CPROF_RETURN_WINDOW_MONTHS, default 3) of the start. The landing check stops any other on
-- arrival; this catches one a reloaded month of order lines orphaned later. Reads all history, like the
-- relationships tests.
{%- set window = env_var('CPROF_RETURN_WINDOW_MONTHS', '3') or '3' -%}
{%- if not modules.re.fullmatch('[0-9]+', window) -%}
    {{ exceptions.raise_compiler_error("CPROF_RETURN_WINDOW_MONTHS must be a whole number of months, got " ~ window) }}
{%- endif %}
with returns as (
    select * from {{ ref('int_returns_joined_to_order_lines') }}
),

history as (
    select min(period) as start from {{ ref('stg_erp__order_lines') }}
)

select returns.return_id, returns.order_id, returns.line_no, returns.return_date, returns.order_date
from returns
cross join history
where returns.is_prehistory
    and not coalesce(
        returns.order_date < history.start,
        year(returns.return_date) * 12 + month(returns.return_date)
            < year(history.start) * 12 + month(history.start) + {{ window | int }}
    )
