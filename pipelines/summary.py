"""The short summary ``cprof run`` prints: what was loaded, what the marts say, and where the outputs are."""

from __future__ import annotations

import duckdb

from pipelines.config import Paths
from pipelines.publish import PARQUET_DIR, PUBLISHED_FILE
from pipelines.run import RunSummary

VOLUME_SQL = """
select
    (select count(*) from staging.stg_crm__customers) as customers,
    (select count(distinct order_id) from staging.stg_erp__order_lines) as orders,
    (select count(*) from staging.stg_erp__order_lines) as order_lines,
    (select count(distinct response_id) from staging.stg_survey__responses) as survey_responses
"""

# Read from the publication, as a BI tool would.
WHALE_SQL = """
select
    period,
    max(cumulative_profit_pct) as peak_pct,
    avg(case when profit_t12m < 0 then 1.0 else 0.0 end) as unprofitable_share,
    count(*) as customers,
    any_value(months_in_window) as months
from marts.whale_curve
where period = (select max(period) from marts.whale_curve)
group by period
"""

FLIPS_SQL = """
with last_12_months as (
    select
        customer_id,
        any_value(segment) as segment,
        sum(net_revenue) as net_revenue,
        sum(abc_profit) as abc_profit,
        sum(traditional_profit) as traditional_profit
    from marts.costing_comparison
    where period > ? - interval 12 month and period <= ?
    group by customer_id
)
select customer_id, segment, net_revenue, traditional_profit, abc_profit,
       count(*) over () as flips
from last_12_months
where (abc_profit > 0) <> (traditional_profit > 0)
order by net_revenue desc
limit 5
"""

RECONCILIATION_SQL = "select count(*), count(*) filter (where balanced) from marts.company_reconciliation"


def _money(value) -> str:
    return f"{value:,.0f}"


def print_summary(paths: Paths, summary: RunSummary) -> None:
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        customers, orders, lines, responses = con.execute(VOLUME_SQL).fetchone()
    print()
    print(f"Summary, {summary.months[0]} to {summary.months[-1]} ({len(summary.months)} months)")
    print(
        f"  loaded: customers {customers:,} | orders {orders:,} | order lines {lines:,} | survey responses {responses:,}"
    )
    print(
        f"  dbt: {summary.dbt_models} models built, {summary.dbt_tests_passed} tests passed (conservation included)"
    )

    database = paths.published / PUBLISHED_FILE
    with duckdb.connect(str(database), read_only=True) as con:
        period, peak, unprofitable, ranked, months = con.execute(WHALE_SQL).fetchone()
        flips = con.execute(FLIPS_SQL, [period, period]).fetchall()
        months_total, balanced = con.execute(RECONCILIATION_SQL).fetchone()
    print()
    print(f"Customer profitability, trailing {months} months to {period:%Y-%m} ({ranked:,} customers)")
    print(f"  whale curve peak: {peak:,.1f} % of total profit, earned by the profitable customers")
    print(f"  unprofitable customers under activity-based costing: {unprofitable:.1%}")
    print(f"  months reconciled to the cent (ABC, traditional, ledger): {balanced} of {months_total}")
    if flips:
        print(
            f"  customers whose sign flips between traditional and ABC costing: {flips[0][5]:,}; the largest:"
        )
        print(
            f"    {'customer':<10} {'segment':<15} {'net revenue':>12} {'traditional':>12} {'ABC profit':>12}"
        )
        for customer, segment, revenue, traditional, abc, _ in flips:
            print(
                f"    {customer:<10} {segment:<15} {_money(revenue):>12} {_money(traditional):>12} {_money(abc):>12}"
            )
    else:
        print("  no customer's sign flips between traditional and ABC costing")
    print()
    print("Outputs")
    print(f"  published marts    {database}  (schema marts; what BI tools read)")
    print(f"  Parquet per mart   {paths.published / PARQUET_DIR}")
    print(f"  working warehouse  {paths.warehouse}  (schemas raw, staging, intermediate, marts)")
    print(f"  landing zone       {paths.landing}")
    print(f"  logs               {paths.logs}")
    print(
        f"  Dagster runs       {paths.dagster_home}  (see them with `make dev`, then http://127.0.0.1:3000)"
    )
