"""The short summary ``cprof run`` prints: what was loaded, what the marts say, and where the outputs are."""

from __future__ import annotations

import duckdb

from pipelines.lib.config import Paths
from pipelines.publication.publish import PARQUET_DIR, current_database
from pipelines.publication.report import REPORT, REPORT_DIR
from pipelines.publication.report.data import CLV_FITTED
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
    any_value(window_months) as months
from marts.whale_curve
where period = (select max(period) from marts.whale_curve)
group by period
"""

# Sign flips as the mart flags them (costing_comparison.flip_direction), per customer-month over the whale
# curve's trailing 12 months: counted here, never re-derived from the profits.
FLIP_COUNTS_SQL = """
select
    count(*) filter (where flip_direction = 'hidden_loss') as hidden_losses,
    count(*) filter (where flip_direction = 'hidden_loss' and net_revenue = 0) as without_revenue,
    count(distinct customer_id) filter (where flip_direction = 'hidden_loss') as loss_customers,
    count(*) filter (where flip_direction = 'hidden_profit') as hidden_profits
from marts.costing_comparison
where period > ? - interval 12 month and period <= ?
"""

HIDDEN_LOSSES_SQL = """
select period, customer_id, segment, net_revenue, traditional_profit, abc_profit
from marts.costing_comparison
where period > ? - interval 12 month and period <= ? and flip_direction = 'hidden_loss'
order by abc_profit, period, customer_id
limit 5
"""

DEFECTION_SQL = """
select period, customer_id, profit_t12m, p_alive, clv_profit, count(*) over () as defection_prone
from marts.customer_clv
where period = ? and defection_prone
order by profit_t12m desc
limit 5
"""

# The latest CLV month, whether its models were fitted ({fitted}: an expression over customer_clv), and its
# totals (null when not fitted: its model columns are).
CLV_TOTALS_SQL = """
select period, count(*), bool_and({fitted}), sum(clv_revenue), sum(clv_profit)
from marts.customer_clv
where period = (select max(period) from marts.customer_clv)
group by period
"""

SCORECARD_SQL = """
select metric, actual, target, status, trend, owner, status_reason, window_months
from marts.customer_scorecard
where segment = 'all' and period = (select max(period) from marts.customer_scorecard)
order by case status when 'red' then 0 when 'amber' then 1 when 'green' then 2 else 3 end, metric
"""

# Why a scorecard row is not scored, as the summary says it (customer_scorecard.status_reason).
NOT_SCORED = {
    "partial_window": "window of {window} months of history",
    "clv_not_fitted": "the month's CLV models were not fitted",
    "clv_missing": "no CLV for the month",
    "no_value": "nothing to measure",
    "no_target": "no target",
}

PREHISTORY_SQL = """
select
    count(*),
    count(*) filter (where is_priced),
    min(period),
    max(period),
    coalesce(sum(returns_credit), 0),
    (select min(period) from marts.customer_profitability)
from marts.prehistory_returns
"""

RECONCILIATION_SQL = "select count(*), count(*) filter (where balanced) from marts.company_reconciliation"


def _money(value) -> str:
    return f"{value:,.0f}"


def _figure(metric: str, value) -> str:
    """A scorecard figure as people read it: rates as percentages, the rest as whole numbers."""
    if value is None:
        return "n/a"
    if any(word in metric for word in ("pct_", "share", "rate")):
        return f"{float(value):.1%}"
    return f"{float(value):,.1f}" if metric in ("nps", "satisfaction_index") else _money(value)


def prehistory_lines(con: duckdb.DuckDBPyConnection) -> list[str]:
    """What the publication holds of pre-history returns (returns of lines ordered before the start of history),
    or nothing when there are none."""
    count, priced, first, last, credit, start = con.execute(PREHISTORY_SQL).fetchone()
    if not count:
        return []
    months = f"{first:%Y-%m}" if first == last else f"{first:%Y-%m} to {last:%Y-%m}"
    lines = [
        f"  pre-history returns: {count:,} in {months}, of lines ordered before the start of history"
        + (f" ({start:%Y-%m})" if start else "")
        + "; marts.prehistory_returns lists each and what is unknown"
    ]
    if priced:
        lines.append(
            f"    {priced:,} priced from the returns file (credit {_money(credit)}), in their customers' margin"
        )
    if count - priced:
        lines.append(
            f"    {count - priced:,} unpriced (the returns file gives no customer, unit price and unit cost): "
            "in no customer's margin until their months are loaded (`cprof backfill`)"
        )
    return lines


def print_summary(paths: Paths, summary: RunSummary, engine: str = "duckdb") -> None:
    """What a run did, from the working warehouse (``engine``'s) and the publication."""
    print()
    print(f"Summary, {summary.months[0]} to {summary.months[-1]} ({len(summary.months)} months)")
    if engine == "duckdb":
        with duckdb.connect(str(paths.warehouse), read_only=True) as con:
            customers, orders, lines, responses = con.execute(VOLUME_SQL).fetchone()
        print(
            f"  loaded: customers {customers:,} | orders {orders:,} | order lines {lines:,} | "
            f"survey responses {responses:,}"
        )
    else:  # the working warehouse is Spark's, stopped with the run: the ingest lines above give the rows loaded
        print(f"  loaded into the {engine} warehouse under {paths.data_dir / 'spark'}")
    print(
        f"  dbt: {summary.dbt_models} models built, {summary.dbt_tests_passed} tests passed (conservation included)"
    )

    database = current_database(paths.published)
    with duckdb.connect(str(database), read_only=True) as con:
        period, peak, unprofitable, ranked, months = con.execute(WHALE_SQL).fetchone()
        hidden_losses, without_revenue, loss_customers, hidden_profits = con.execute(
            FLIP_COUNTS_SQL, [period, period]
        ).fetchone()
        largest_losses = con.execute(HIDDEN_LOSSES_SQL, [period, period]).fetchall()
        months_total, balanced = con.execute(RECONCILIATION_SQL).fetchone()
        logged = con.execute("select count(*) from marts.publish_log").fetchone()[0]
        clv = con.execute(CLV_TOTALS_SQL.format(fitted=CLV_FITTED)).fetchone()
        clv_period, clv_customers, clv_fitted, clv_revenue, clv_profit = clv or (None, 0, False, None, None)
        defecting = con.execute(DEFECTION_SQL, [clv_period]).fetchall() if clv_fitted else []
        scorecard = con.execute(SCORECARD_SQL).fetchall()
        prehistory = prehistory_lines(con)
    for line in prehistory:
        print(line)
    print()
    partial = "" if months == 12 else f" (partial: history holds {months} of the 12)"
    print(f"Customer profitability, trailing 12 months to {period:%Y-%m}{partial} ({ranked:,} customers)")
    print(f"  whale curve peak: {peak:,.1f} % of total profit, earned by the profitable customers")
    print(f"  unprofitable customers under activity-based costing: {unprofitable:.1%}")
    print(f"  months reconciled to the cent (ABC, traditional, ledger): {balanced} of {months_total}")
    print(
        f"  hidden losses (traditional profit >= 0, ABC loss): {hidden_losses:,} customer-months of "
        f"{loss_customers:,} customers, {without_revenue:,} without net revenue"
    )
    print(f"  hidden profits (traditional loss, ABC profit >= 0): {hidden_profits:,} customer-months")
    if largest_losses:
        print("  the largest hidden losses:")
        print(
            f"    {'month':<7} {'customer':<10} {'segment':<15} {'net revenue':>12} {'traditional':>12} "
            f"{'ABC profit':>12}"
        )
        for month, customer, segment, revenue, traditional, abc in largest_losses:
            print(
                f"    {month:%Y-%m} {customer:<10} {segment:<15} {_money(revenue):>12} {_money(traditional):>12} "
                f"{_money(abc):>12}"
            )
    print()
    if clv_customers and clv_fitted:
        print(
            f"Customer lifetime value as of {clv_period:%Y-%m} ({clv_customers:,} customers, 12-month horizon)"
        )
        print(
            f"  expected revenue {_money(clv_revenue)}, expected profit after cost-to-serve {_money(clv_profit)}"
        )
        if defecting:
            print(f"  defection-prone customers of high past profit: {defecting[0][5]:,}; the most valuable:")
            print(f"    {'customer':<10} {'profit t12m':>12} {'P(alive)':>9} {'profit CLV':>12}")
            for _, customer, profit, alive, value, _ in defecting:
                print(f"    {customer:<10} {_money(profit):>12} {alive:>9.2f} {_money(value):>12}")
        else:
            print("  no customer of high past profit is defection-prone")
    elif clv_customers:
        print(
            f"Customer lifetime value as of {clv_period:%Y-%m}: not fitted ({clv_customers:,} customers; the "
            "models could not be fitted on the month's summary, see the customer_clv asset's metadata)"
        )
    else:
        print("Customer lifetime value: no month could be scored yet (see the customer_clv asset's metadata)")
    if scorecard:
        print()
        counts = {
            status: sum(1 for row in scorecard if row[3] == status)
            for status in ("green", "amber", "red", "not_scored")
        }
        print(
            f"Customer scorecard, {period:%Y-%m}, all customers: {counts['green']} green, {counts['amber']} amber, "
            f"{counts['red']} red, {counts['not_scored']} not scored"
        )
        for metric, actual, target, status, trend, owner, reason, window in scorecard:
            if status in ("red", "amber"):
                print(
                    f"  {status:<5} {metric:<28} {_figure(metric, actual):>12} vs target {_figure(metric, target):>12}"
                    f"  ({owner}, trend {trend or 'n/a'})"
                )
            elif status == "not_scored":
                why = NOT_SCORED.get(reason, reason).format(window=window)
                print(f"  not scored {metric:<22} {_figure(metric, actual):>12}  ({why})")
    print()
    print("Outputs")
    print(
        f"  report             {database.parent / REPORT_DIR / REPORT}  (open it in a browser; works offline)"
    )
    print(f"  published marts    {database}  (schema marts; what BI tools read)")
    print(
        f"  Parquet per mart   {database.parent / PARQUET_DIR}  (<table>/period=<YYYY-MM-DD>/ per mart with periods, "
        "hive-style; <table>.parquet without)"
    )
    print(f"  publish log        marts.publish_log in the published file ({logged} tables published so far)")
    if summary.data_docs:
        print(f"  data docs          {summary.data_docs}  (landing suites of this run)")
    print(
        f"  working warehouse  {paths.warehouse}  (schemas landed, raw, staging, intermediate, marts, semantic)"
    )
    print(f"  landing zone       {paths.landing}")
    print(f"  logs               {paths.logs}")
    print(
        f"  Dagster runs       {paths.dagster_home}  (see them with `make dev`, then http://127.0.0.1:3000)"
    )


def print_checksums(paths: Paths) -> None:
    """The current publication's tables with their row counts and checksums (from marts.publish_log): equal
    checksums between two runs mean identical tables."""
    database = current_database(paths.published)
    with duckdb.connect(str(database), read_only=True) as con:
        run_id, first, last = con.execute(
            "select run_id, first_period, last_period from marts.publish_log "
            "order by published_at desc limit 1"
        ).fetchone()
        rows = con.execute(
            "select table_name, row_count, checksum from marts.publish_log where run_id = ? order by table_name",
            [run_id],
        ).fetchall()
        prehistory = prehistory_lines(con)
    print()
    print(f"Published {len(rows)} tables, {first:%Y-%m} to {last:%Y-%m}, run {run_id}: {database}")
    for table, count, checksum in rows:
        print(f"  {table:<28} {count:>12,} rows  checksum {checksum}")
    for line in prehistory:
        print(line)


def print_scenarios(paths: Paths) -> None:
    """Each published scenario against actual over the scenario months (marts.scenario_summary): operating
    profit, ABC customer profit and unused capacity, summed, and the unprofitable customers of the last month;
    and profit CLV as of the last month (marts.scenario_customer_value), where a satisfaction lever moves it."""
    database = current_database(paths.published)
    with duckdb.connect(str(database), read_only=True) as con:
        first, last = con.execute("select min(period), max(period) from marts.scenario_summary").fetchone()
        rows = con.execute(
            """
            select s.scenario, coalesce(d.levers, ''), sum(s.operating_profit_change),
                sum(s.abc_customer_profit_change), sum(s.unused_capacity_change),
                sum(s.unprofitable_customers_change) filter (where s.period = ?), bool_and(s.balanced)
            from marts.scenario_summary s join marts.dim_scenarios d using (scenario)
            where not d.is_baseline
            group by all order by s.scenario
            """,
            [last],
        ).fetchall()
        clv = dict(
            con.execute(
                "select scenario, sum(clv_profit_change) from marts.scenario_customer_value "
                "where period = ? and satisfaction_index_change <> 0 group by all",
                [last],
            ).fetchall()
        )
    print()
    if not rows:
        print(f"No scenario in {database}: add landing/reference/scenarios.csv (docs/DESIGN.md, Scenarios).")
        return
    print(f"Scenarios against actual, {first:%Y-%m} to {last:%Y-%m} (marts.scenario_summary in {database}):")
    print(
        f"  {'scenario':<24} {'operating profit':>17} {'ABC customer profit':>20} {'unused capacity':>16}"
        f" {'unprofitable':>13} {'profit CLV':>11}  levers"
    )
    for name, levers, profit, customer_profit, unused, unprofitable, balanced in rows:
        # a satisfaction lever's worth, as of the last month; NULL (n/a) without a fitted link
        worth = ("n/a" if clv[name] is None else _signed(clv[name])) if name in clv else _signed(0)
        print(
            f"  {name:<24} {_signed(profit):>17} {_signed(customer_profit):>20} {_signed(unused):>16}"
            f" {unprofitable or 0:>+13,} {worth:>11}  {levers}{'' if balanced else '  NOT BALANCED'}"
        )
    print(
        f"  (profit CLV: as of {last:%Y-%m}, through the satisfaction-retention link: marts.scenario_customer_value)"
    )


def _signed(value) -> str:
    return f"{value:+,.0f}"
