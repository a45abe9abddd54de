"""Activity-based costing end to end: the published marts, conservation to the cent, and broken configuration."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.config import DBT_PROJECT_DIR, PROJECT_ROOT, Paths
from pipelines.lib.settings import Settings
from pipelines.publication.publish import PARQUET_DIR, current_database, parquet_source
from pipelines.run import PipelineError, run_pipeline
from tests.dbt_cli import run_dbt

# What the contract requires, written out independently of the code that publishes it.
SEVEN = (
    "customer_profitability",
    "customer_cost_to_serve",
    "activity_costs",
    "cost_center_capacity",
    "company_reconciliation",
    "whale_curve",
    "costing_comparison",
)
PUBLISHED = (*SEVEN, "customer_clv", "publish_log")
CHECK_CONTRACT = PROJECT_ROOT / "tools" / "check_contract.py"  # reads the contract in docs/DESIGN.md


@pytest.fixture(scope="module")
def built(published_sample: Paths) -> Paths:
    """The small sample run once through ingest, checks, dbt, CLV and publish (read only here)."""
    return published_sample


def _published(paths: Paths):
    return duckdb.connect(str(current_database(paths.published)), read_only=True)


def test_published_file_carries_the_contract_columns_of_the_seven_tables(built: Paths):
    done = subprocess.run(
        [sys.executable, str(CHECK_CONTRACT), str(current_database(built.published))],
        capture_output=True,
        text=True,
        check=False,
    )
    problems = [line for line in done.stdout.splitlines() if any(f"marts.{t}" in line for t in PUBLISHED)]
    assert problems == [], done.stdout
    assert "contract tables complete" in done.stdout
    assert done.returncode == 0, done.stdout  # every contract table present, every table and column described


def test_parquet_per_mart_matches_the_published_tables(built: Paths):
    with _published(built) as con:
        for table in SEVEN:
            parquet = parquet_source(current_database(built.published).parent / PARQUET_DIR, table)
            assert "/period=" not in parquet and parquet.endswith("/**/*.parquet"), (
                table
            )  # partitioned by period
            in_file = con.execute(f"select count(*) from marts.{table}").fetchone()[0]
            assert (
                con.execute(
                    "select count(*) from read_parquet(?, hive_partitioning = true)", [parquet]
                ).fetchone()[0]
                == in_file
                > 0
            )


def test_conservation_recomputed_in_python_decimals(built: Paths):
    """Independently of the dbt tests: every dollar of the ledger is accounted for, to the cent, every month."""
    with _published(built) as con:
        allocated = defaultdict(Decimal)
        for period, activity, amount in con.execute(
            "select period, activity, allocated_cost from marts.customer_cost_to_serve"
        ).fetchall():
            allocated[period, activity] += amount
        activity_cost = {
            (p, a): c
            for p, a, c in con.execute(
                "select period, activity, activity_cost from marts.activity_costs where activity_cost <> 0"
            ).fetchall()
        }
        assert allocated == activity_cost

        assigned = defaultdict(Decimal)
        for (period, activity), cost in activity_cost.items():
            centre = con.execute(
                "select any_value(cost_center) from marts.activity_costs where activity = ?", [activity]
            ).fetchone()[0]
            assigned[period, centre] += cost
        for period, centre, ledger, assigned_cost, unused, sustaining in con.execute(
            "select period, cost_center, ledger_cost, assigned_cost, unused_capacity_cost, sustaining_cost "
            "from marts.cost_center_capacity"
        ).fetchall():
            assert assigned_cost == assigned.get((period, centre), Decimal("0.00"))
            assert assigned_cost + unused + sustaining == ledger

        customers = con.execute(
            "select period, sum(gross_margin), sum(abc_profit), sum(traditional_profit) "
            "from marts.customer_profitability group by period"
        ).fetchall()
        centres = {
            p: (ledger, unused, sustaining)
            for p, ledger, unused, sustaining in con.execute(
                "select period, sum(ledger_cost), sum(unused_capacity_cost), sum(sustaining_cost) "
                "from marts.cost_center_capacity group by period"
            ).fetchall()
        }
        assert len(customers) == len(centres) == 3
        for period, margin, abc, traditional in customers:
            ledger, unused, sustaining = centres[period]
            operating = margin - ledger
            assert abc - unused - sustaining == operating == traditional, period
        assert con.execute("select bool_and(balanced) from marts.company_reconciliation").fetchone()[0]


def test_ledger_landing_files_reconcile_with_the_published_ledger_cost(built: Paths):
    landed = (
        duckdb.connect()
        .execute(
            f"select sum(amount) from read_csv('{built.landing}/gl_costs/*.csv', "
            "columns = {'period': 'varchar', 'cost_center': 'varchar', 'account': 'varchar', 'amount': 'decimal(18,2)'})"
        )
        .fetchone()[0]
    )
    with _published(built) as con:
        assert (
            con.execute("select sum(ledger_cost) from marts.company_reconciliation").fetchone()[0] == landed
        )


def test_profitability_views_are_coherent(built: Paths):
    with _published(built) as con:
        # Whale curve: ranks are 1..n per period and the last customer's cumulative share is 100 %.
        bad_ranks = con.execute(
            "select count(*) from (select period, count(*) n, max(customer_rank) m, min(customer_rank) lo "
            "from marts.whale_curve group by period) where n <> m or lo <> 1"
        ).fetchone()[0]
        assert bad_ranks == 0
        last = con.execute(
            "select cumulative_profit_pct from marts.whale_curve w where customer_rank = "
            "(select max(customer_rank) from marts.whale_curve v where v.period = w.period)"
        ).fetchall()
        assert all(value == Decimal("100.0000") for (value,) in last)
        # Deciles: decile 1 holds the month's most profitable customers.
        order = con.execute(
            "select profit_decile, min(abc_profit), max(abc_profit) from marts.customer_profitability "
            "where period = (select max(period) from marts.customer_profitability) group by 1 order by 1"
        ).fetchall()
        assert [d for d, _, _ in order] == list(range(1, 11))
        assert all(order[i][1] >= order[i + 1][2] for i in range(9))
        # Sign flips are exactly the customers profitable (zero included) under one method only.
        mismatched = con.execute(
            "select count(*) from marts.costing_comparison "
            "where sign_flip <> ((abc_profit >= 0) <> (traditional_profit >= 0)) "
            "or sign_flip <> (flip_direction is not null) "
            "or flip_direction is distinct from case when abc_profit < 0 and sign_flip then 'hidden_loss' "
            "when sign_flip then 'hidden_profit' end"
        ).fetchone()[0]
        assert mismatched == 0
        quadrants = {
            q
            for (q,) in con.execute(
                "select distinct matrix_quadrant from marts.customer_profitability"
            ).fetchall()
        }
        assert {"passive", "carriage_trade", "bargain_basement", "aggressive"} <= quadrants


def test_a_month_with_support_tickets_and_no_orders_shows_as_a_loss(built: Paths):
    with _published(built) as con:
        rows = con.execute(
            "select count(*), max(abc_profit) from marts.customer_profitability "
            "where gross_revenue = 0 and cost_to_serve > 0"
        ).fetchone()
    assert rows[0] > 0 and rows[1] < 0


def _dbt_test(
    data_dir: Path, select: str, *more: str, month: str | None = None
) -> subprocess.CompletedProcess:
    """``dbt test --select`` against the warehouse in ``data_dir`` (refreshing ``month`` alone, when given)."""
    return run_dbt(data_dir, "test", "--select", select, *more, month=month)


def _copy_warehouse(built: Paths, data_dir: Path, *statements: str) -> Path:
    """The built warehouse copied into ``data_dir``, with ``statements`` run on the copy."""
    warehouse = data_dir / "warehouse.duckdb"
    shutil.copy(built.warehouse, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        for statement in statements:
            con.execute(statement)
    return warehouse


def test_a_broken_conservation_rule_fails_the_build(built: Paths, tmp_path: Path):
    """The conservation tests are not decorative: move one cent and dbt fails, naming the rule."""
    _copy_warehouse(
        built,
        tmp_path,
        "update marts.customer_cost_to_serve set allocated_cost = allocated_cost + 0.01 "
        "where (period, customer_id, activity) in "
        "(select (period, customer_id, activity) from marts.customer_cost_to_serve limit 1)",
    )
    done = _dbt_test(tmp_path, "assert_activity_costs_fully_allocated")
    assert done.returncode == 1, done.stdout
    assert "FAIL 1 assert_activity_costs_fully_allocated" in done.stdout


def test_a_key_repeated_across_months_fails_its_unique_test_under_the_refresh_window(
    built: Paths, tmp_path: Path
):
    """A refresh tests the rows of its months, but a key of those months repeated in an earlier month still fails."""
    _copy_warehouse(
        built,
        tmp_path,
        # raw is a view of the promoted rows in the store (pipelines/engines/duckdb_ingest.py): plant the row there
        "insert into store.returns select return_id, order_id, line_no, date '2024-03-20', quantity, reason, "
        "order_date, customer_id, unit_price, unit_cost, date '2024-03-01', _source_file, _loaded_at, "
        "(select generation from landed._generations where source = 'returns' and period = date '2024-03-01' "
        "and promoted) from raw.returns where return_date < date '2024-02-01' order by return_id limit 1",
    )
    done = _dbt_test(tmp_path, "stg_erp__returns,test_name:unique", month="2024-03-01")
    assert done.returncode == 1, done.stdout
    assert "FAIL 1 unique_stg_erp__returns_return_id" in done.stdout


def test_a_key_with_its_period_repeated_in_a_tested_month_fails_its_test(built: Paths, tmp_path: Path):
    """A key that includes the period is tested on the refreshed months' rows alone (it has no rows elsewhere):
    a row repeated in the refreshed month fails its key test; the same test of a later month reads past it."""
    _copy_warehouse(
        built,
        tmp_path,
        "insert into marts.customer_cost_to_serve select * from marts.customer_cost_to_serve "
        "where period = date '2024-03-01' order by customer_id, activity limit 1",
    )
    test = "customer_cost_to_serve,test_name:unique_combination_of_columns"
    done = _dbt_test(tmp_path, test, month="2024-03-01")
    assert done.returncode == 1, done.stdout
    assert "FAIL 1 unique_combination_of_columns_customer_cost_to_serve" in done.stdout
    later = _dbt_test(tmp_path, test, month="2024-04-01")
    assert later.returncode == 0, later.stdout
    assert "PASS=1" in later.stdout


def test_a_null_fails_its_models_not_null_test_naming_the_column(built: Paths, tmp_path: Path):
    """One not_null_columns test per model stands for one not_null test per column: it still names the column."""
    warehouse = _copy_warehouse(
        built,
        tmp_path,
        "update store.order_lines set quantity = null where (order_id, line_no) in "
        "(select (order_id, line_no) from raw.order_lines order by order_id, line_no limit 2)",
    )
    done = _dbt_test(tmp_path, "stg_erp__order_lines,test_name:not_null_columns", "--store-failures")
    assert done.returncode == 1, done.stdout
    assert "FAIL 1 not_null_columns_stg_erp__order_lines" in done.stdout
    with duckdb.connect(str(warehouse), read_only=True) as con:
        (audit,) = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_schema like '%dbt_test__audit' and table_name like 'not_null_columns_stg_erp__orde%'"
        ).fetchone()
        assert con.execute(f"select column_name, null_rows from {audit}").fetchall() == [("quantity", 2)]


def test_dbt_unit_tests_pass(built: Paths, tmp_path: Path):
    """The dbt unit tests (fixtures in, expected rows out) run here, not in every refresh."""
    _copy_warehouse(built, tmp_path)
    declared = sum(
        path.read_text().count("\n  - name: ")
        for path in (DBT_PROJECT_DIR / "models").rglob("*unit_tests.yml")
    )
    done = _dbt_test(tmp_path, "test_type:unit")
    assert done.returncode == 0, done.stdout
    assert declared >= 7 and f"PASS={declared} " in done.stdout, done.stdout


def test_broken_configuration_fails_naming_each_problem_and_publishes_nothing(built: Paths, tmp_path: Path):
    paths = Paths(tmp_path / "data")
    shutil.copytree(built.landing, paths.landing)
    activities = paths.landing / "reference" / "activities.csv"
    text = activities.read_text()
    text = text.replace(
        "invoice_orders,billing,orders,share,,0.6", "invoice_orders,billing,orders,share,,0.7"
    )
    text = text.replace("enter_order_line,order_desk,", "enter_order_line,order_entry,")
    text = text.replace(
        "visit_customer,field_sales,visit_minutes,", "visit_customer,field_sales,visit_hours,"
    )
    activities.write_text(text)
    with pytest.raises(PipelineError) as caught:
        run_pipeline(Settings(data_dir=paths.data_dir), progress=lambda _: None)
    message = str(caught.value)
    assert "cost centre billing: the shares of its activities sum to 110.0000 %" in message
    assert "activity enter_order_line is on cost centre order_entry, which is not in cost_centers" in message
    assert "activity visit_customer has driver visit_hours, which nobody computes" in message
    assert not current_database(paths.published).exists()
