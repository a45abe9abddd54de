"""The CLV summary and retention from per-customer running state (int_clv_customer_state,
int_customer_first_orders, int_history_months): equal, row for row, to the same tables recomputed from all history
by the SQL the models had before (kept here as the reference), on a full build and after one-month refreshes
whose inputs changed: the first month of history, a middle month (which moves every later month's state) and the
last month; with a customer whose first purchase is in the refreshed month, one with a single purchase day
(frequency 0, monetary value 0) and a customer whose first order moves out of the month."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.config import Paths
from tests.dbt_cli import run_dbt

# int_clv_summary_by_as_of_month as it was (compiled for DuckDB): every as-of month joined to every purchase day
# before it, the first purchase over all history.
REFERENCE_SUMMARY = """
with purchase_days as (
    select * from intermediate.int_clv_purchase_days
),
profitability as (
    select * from intermediate.int_margin_joined_to_cost_to_serve
),
as_of as (
    select distinct period, cast(period + interval 1 month - interval 1 day as date) as as_of_date
    from profitability
),
first_purchases as (
    select customer_id, min(order_date) as first_purchase from purchase_days group by customer_id
),
history as (
    select as_of.period, as_of.as_of_date, purchase_days.customer_id, purchase_days.order_date,
        purchase_days.purchase_value, first_purchases.first_purchase
    from as_of
    inner join purchase_days on purchase_days.order_date <= as_of.as_of_date
    inner join first_purchases on purchase_days.customer_id = first_purchases.customer_id
),
repeats as (
    select *, case when order_date > first_purchase then purchase_value end as repeat_value from history
),
summary as (
    select
        period,
        customer_id,
        count(*) - 1 as frequency,
        date_diff('day', min(order_date)::timestamp, max(order_date)::timestamp) as recency,
        date_diff('day', min(order_date)::timestamp, any_value(as_of_date)::timestamp) as t,
        coalesce(cast(
            case when sum(cast(repeat_value * 100 as hugeint)) < 0
                then -((2 * abs(sum(cast(repeat_value * 100 as hugeint))) + count(repeat_value))
                    // (2 * nullif(count(repeat_value), 0)))
                else (2 * abs(sum(cast(repeat_value * 100 as hugeint))) + count(repeat_value))
                    // (2 * nullif(count(repeat_value), 0))
            end as double) / 100, 0) as monetary_value
    from repeats
    group by period, customer_id
),
trailing_figures as (
    select as_of.period, profitability.customer_id,
        sum(profitability.abc_profit) as profit_t12m,
        sum(profitability.net_revenue) as net_revenue_t12m,
        sum(profitability.gross_margin) as gross_margin_t12m,
        sum(profitability.cost_to_serve) as cost_to_serve_t12m
    from as_of
    inner join profitability
        on profitability.period > as_of.period - interval 12 month and profitability.period <= as_of.period
    group by as_of.period, profitability.customer_id
),
trailing_purchase_days as (
    select as_of.period, purchase_days.customer_id, count(*) as purchase_days_t12m
    from as_of
    inner join purchase_days
        on purchase_days.period > as_of.period - interval 12 month and purchase_days.period <= as_of.period
    group by as_of.period, purchase_days.customer_id
)
select
    summary.period,
    summary.customer_id,
    cast(summary.frequency as integer) as frequency,
    cast(summary.recency as integer) as recency,
    cast(summary.t as integer) as t,
    cast(summary.monetary_value as decimal(18, 2)) as monetary_value,
    cast(coalesce(trailing_figures.profit_t12m, 0) as decimal(18, 2)) as profit_t12m,
    cast(coalesce(trailing_figures.net_revenue_t12m, 0) as decimal(18, 2)) as net_revenue_t12m,
    cast(coalesce(trailing_figures.gross_margin_t12m, 0) as decimal(18, 2)) as gross_margin_t12m,
    cast(coalesce(trailing_figures.cost_to_serve_t12m, 0) as decimal(18, 2)) as cost_to_serve_t12m,
    cast(coalesce(trailing_purchase_days.purchase_days_t12m, 0) as integer) as purchase_days_t12m
from summary
left join trailing_figures
    on summary.period = trailing_figures.period and summary.customer_id = trailing_figures.customer_id
left join trailing_purchase_days
    on summary.period = trailing_purchase_days.period and summary.customer_id = trailing_purchase_days.customer_id
"""

# customer_retention as it was: first orders over every active month of history, history the distinct periods
# of customer_profitability read whole.
REFERENCE_RETENTION = """
with drivers as (
    select * from intermediate.int_drivers_aggregated_to_customer_month
),
customers as (
    select * from staging.stg_crm__customers
),
history as (
    select distinct period from marts.customer_profitability
),
active_months as (
    select distinct customer_id, period from drivers where driver = 'orders'
),
first_orders as (
    select customer_id, min(period) as first_period from active_months group by customer_id
),
acquisitions as (
    select first_orders.customer_id, first_orders.first_period
    from first_orders
    inner join customers on first_orders.customer_id = customers.customer_id
    where customers.acquired_date >= (select min(period) from history)
),
periods as (
    select period from history
),
coverage as (
    select
        periods.period,
        count(*) filter (where history.period > periods.period - interval 12 month) as window_months,
        count(*) filter (where history.period <= periods.period - interval 12 month) as prior_window_months
    from periods
    inner join history
        on history.period > periods.period - interval 24 month and history.period <= periods.period
    group by periods.period
),
windows as (
    select
        periods.period,
        active_months.customer_id,
        bool_or(active_months.period > periods.period - interval 12 month and active_months.period <= periods.period)
            as active_now,
        bool_or(
            active_months.period > periods.period - interval 24 month
            and active_months.period <= periods.period - interval 12 month
        ) as active_before
    from periods
    inner join active_months
        on active_months.period > periods.period - interval 24 month and active_months.period <= periods.period
    group by periods.period, active_months.customer_id
),
customer_status as (
    select windows.period, windows.customer_id, customers.segment, windows.active_now, windows.active_before,
        coalesce(acquisitions.first_period = windows.period, false) as is_new
    from windows
    inner join customers on windows.customer_id = customers.customer_id
    left join acquisitions on windows.customer_id = acquisitions.customer_id
),
by_segment as (
    select
        period,
        coalesce(segment, 'all') as segment,
        count(*) filter (where active_now) as active_customers,
        count(*) filter (where active_before) as prior_active_customers,
        count(*) filter (where active_now and active_before) as retained_customers,
        count(*) filter (where is_new) as new_customers,
        count(*) filter (where active_before and not active_now) as churned_customers
    from customer_status
    group by grouping sets ((period, segment), (period))
),
segments as (
    select distinct segment from customers
    union
    select 'all' as segment
)
select
    periods.period,
    segments.segment,
    cast(coalesce(by_segment.active_customers, 0) as integer) as active_customers,
    cast(coalesce(by_segment.prior_active_customers, 0) as integer) as prior_active_customers,
    cast(coalesce(by_segment.retained_customers, 0) as integer) as retained_customers,
    cast(coalesce(by_segment.new_customers, 0) as integer) as new_customers,
    cast(coalesce(by_segment.churned_customers, 0) as integer) as churned_customers,
    cast(by_segment.retained_customers / nullif(by_segment.prior_active_customers, 0) as decimal(9, 4))
        as retention_rate,
    cast(coverage.window_months as integer) as window_months,
    cast(coverage.prior_window_months as integer) as prior_window_months,
    coverage.window_months = 12 and coverage.prior_window_months = 12 as window_complete
from periods
cross join segments
inner join coverage on periods.period = coverage.period
left join by_segment on periods.period = by_segment.period and segments.segment = by_segment.segment
"""

MODELS = (
    "int_clv_customer_state",
    "int_customer_first_orders",
    "int_history_months",
    "int_clv_summary_by_as_of_month",
    "customer_retention",
)


def _run_models(data_dir: Path, month: str) -> subprocess.CompletedProcess:
    """dbt run of MODELS against the warehouse in ``data_dir``, refreshing ``month`` alone."""
    return run_dbt(data_dir, "run", "--select", *MODELS, month=month)


def _differences(con: duckdb.DuckDBPyConnection, table: str, reference: str) -> tuple[int, int]:
    """Rows of ``table`` not in the reference, and rows of the reference not in ``table`` (``except all``)."""
    extra = con.execute(f"select count(*) from (select * from {table} except all ({reference}))").fetchone()[
        0
    ]
    missing = con.execute(
        f"select count(*) from (({reference}) except all select * from {table})"
    ).fetchone()[0]
    return extra, missing


def _assert_equal_to_recomputation(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for table, reference in (
            ("intermediate.int_clv_summary_by_as_of_month", REFERENCE_SUMMARY),
            ("marts.customer_retention", REFERENCE_RETENTION),
        ):
            assert con.execute(f"select count(*) from {table}").fetchone()[0] > 0, table
            assert _differences(con, table, reference) == (0, 0), table


@pytest.fixture
def data_dir(published_sample: Paths, tmp_path: Path) -> Path:
    """A copy of the published small sample's warehouse, which the session built in full."""
    shutil.copy(published_sample.warehouse, tmp_path / "warehouse.duckdb")
    return tmp_path


def test_a_full_build_equals_the_summary_and_retention_recomputed_from_all_history(published_sample: Paths):
    _assert_equal_to_recomputation(published_sample.warehouse)


def _months(warehouse: Path) -> list:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return [
            row[0]
            for row in con.execute("select period from intermediate.int_history_months order by 1").fetchall()
        ]


@pytest.mark.parametrize("which", ["first", "middle", "last"])
def test_a_one_month_refresh_with_changed_inputs_equals_the_recomputation_from_all_history(
    data_dir: Path, which: str
):
    """The month's inputs change (as a refresh of that month reloads them): a new customer whose first purchase is
    in it, one with a single purchase day, a customer's purchase days of the month removed and another's value
    changed (moving every later month's state), a customer's first order moved out of the month and another's
    moved into it. Refreshing that month alone gives what a recomputation over all history gives."""
    warehouse = data_dir / "warehouse.duckdb"
    months = _months(warehouse)
    month = {"first": months[0], "middle": months[len(months) // 2], "last": months[-1]}[which]
    day = f"date '{month}'"
    with duckdb.connect(str(warehouse)) as con:
        # a customer of the warehouse with no purchase yet (in the last month of the sample every customer has
        # purchased: then one the customer master does not know, which the CLV summary counts and retention not)
        newcomer = (
            con.execute(
                "select min(customer_id) from staging.stg_crm__customers where customer_id not in "
                f"(select customer_id from intermediate.int_clv_purchase_days where period <= {day})"
            ).fetchone()[0]
            or "ZZ_NEW"
        )
        con.execute(
            "insert into intermediate.int_clv_purchase_days values "
            f"({day}, '{newcomer}', {day} + 3, 10.01, 1), ({day}, '{newcomer}', {day} + 5, 0.02, 2), "
            f"({day}, 'ZZ_ONE_DAY', {day} + 9, 123.45, 1)"
        )
        changed = con.execute(
            f"select customer_id from intermediate.int_clv_purchase_days where period = {day} "
            f"and customer_id <> '{newcomer}' group by customer_id order by 1 limit 2"
        ).fetchall()
        con.execute(
            f"delete from intermediate.int_clv_purchase_days where period = {day} and customer_id = ?",
            [changed[0][0]],
        )
        con.execute(
            "update intermediate.int_clv_purchase_days set purchase_value = purchase_value + 0.01 "
            f"where period = {day} and customer_id = ?",
            [changed[1][0]],
        )
        # retention: the first order of a customer whose first month is this one moves out of it (their orders
        # of the month removed), and the newcomer orders in it
        first_here = con.execute(
            "select customer_id from intermediate.int_drivers_aggregated_to_customer_month where driver = 'orders' "
            f"group by customer_id having min(period) = {day} order by 1 limit 1"
        ).fetchone()
        if first_here:
            con.execute(
                "delete from intermediate.int_drivers_aggregated_to_customer_month "
                f"where driver = 'orders' and period = {day} and customer_id = ?",
                [first_here[0]],
            )
        con.execute(
            "delete from intermediate.int_drivers_aggregated_to_customer_month "
            f"where driver = 'orders' and period = {day} and customer_id = ?",
            [newcomer],
        )
        con.execute(
            "insert into intermediate.int_drivers_aggregated_to_customer_month "
            f"values ({day}, '{newcomer}', 'orders', 2)"
        )
    done = _run_models(data_dir, str(month))
    assert done.returncode == 0, done.stdout + done.stderr
    _assert_equal_to_recomputation(warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        one_day = con.execute(
            "select frequency, recency, monetary_value from intermediate.int_clv_summary_by_as_of_month "
            f"where customer_id = 'ZZ_ONE_DAY' and period = {day}"
        ).fetchall()
        assert [(f, r, float(m)) for f, r, m in one_day] == [(0, 0, 0.0)]
        newcomer_row = con.execute(
            "select frequency, recency, monetary_value from intermediate.int_clv_summary_by_as_of_month "
            f"where customer_id = '{newcomer}' and period = {day}"
        ).fetchall()
        assert [(f, r, float(m)) for f, r, m in newcomer_row] == [(1, 2, 0.02)]
        assert con.execute(
            f"select period from intermediate.int_customer_first_orders where customer_id = '{newcomer}'"
        ).fetchall() == [(month,)]
