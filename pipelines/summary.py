"""The short summary ``cprof run`` prints: what was loaded and where the outputs are."""

from __future__ import annotations

import duckdb

from pipelines.config import Paths
from pipelines.run import RunSummary

SUMMARY_SQL = """
select
    (select count(*) from staging.stg_crm__customers) as customers,
    (select count(distinct order_id) from staging.stg_erp__order_lines) as orders,
    (select count(*) from staging.stg_erp__order_lines) as order_lines,
    (select sum(quantity * unit_price - discount_amount) from staging.stg_erp__order_lines) as invoiced,
    (select sum(amount) from staging.stg_ledger__gl_costs) as ledger_cost,
    (select count(distinct response_id) from staging.stg_survey__responses) as survey_responses
"""


def print_summary(paths: Paths, summary: RunSummary) -> None:
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        customers, orders, lines, invoiced, ledger, responses = con.execute(SUMMARY_SQL).fetchone()
    print()
    print(f"Summary, {summary.months[0]} to {summary.months[-1]} ({len(summary.months)} months)")
    print(
        f"  customers {customers:,} | orders {orders:,} | order lines {lines:,} | survey responses {responses:,}"
    )
    print(f"  invoiced (after line discounts) {invoiced:,.2f} | indirect cost in the ledger {ledger:,.2f}")
    print(f"  dbt: {summary.dbt_models} models built, {summary.dbt_tests_passed} tests passed")
    print()
    print("Outputs")
    print(f"  landing zone       {paths.landing}")
    print(f"  working warehouse  {paths.warehouse}  (schemas raw, staging)")
    print(f"  logs               {paths.logs}")
    print(
        f"  Dagster runs       {paths.dagster_home}  (see them with `make dev`, then http://127.0.0.1:3000)"
    )
