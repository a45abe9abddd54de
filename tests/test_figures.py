"""Three published figures, as corrected in issue 13: profit CLV in one transaction unit (the purchase day), the
scorecard trend from the published (rounded) actuals, and hidden losses flagged with zero on the profitable side."""

from __future__ import annotations

import csv
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey, materialize

from pipelines.defs.assets.transform import satisfaction_and_scorecard_models
from pipelines.defs.partitions import partitions_of
from pipelines.defs.resources import resources_for
from pipelines.lib.config import Paths
from pipelines.lib.settings import Settings
from pipelines.publication.publish import current_database
from pipelines.run import RunSummary, run_pipeline
from pipelines.summary import print_summary

PLANTED_ORDER = "O999999901"


def _plant_a_second_order_on_the_same_day(landing: Path) -> tuple[str, str]:
    """Append to 2024-02's order lines a second order, on a day they already ordered, of the customer with the
    most purchase days (a copy of one of that day's lines under a new order id). Returns the customer and
    the day."""
    days: dict[str, set[str]] = {}
    for line in _landed_order_lines(landing):
        days.setdefault(line["customer_id"], set()).add(line["order_date"])
    path = landing / "order_lines" / "2024-02.csv"
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    line = max(rows, key=lambda row: (len(days[row["customer_id"]]), row["customer_id"]))
    planted = {**line, "order_id": PLANTED_ORDER, "line_no": "1", "discount_amount": "0.00"}
    with path.open("a", newline="") as handle:
        csv.DictWriter(handle, fieldnames=list(line), lineterminator="\n").writerow(planted)
    return line["customer_id"], line["order_date"]


def _landed_order_lines(landing: Path) -> list[dict[str, str]]:
    lines = []
    for path in sorted((landing / "order_lines").glob("*.csv")):
        with path.open(newline="") as handle:
            lines += list(csv.DictReader(handle))
    return lines


def test_profit_clv_divides_cost_to_serve_per_purchase_day_for_a_customer_ordering_twice_a_day(
    data_paths: Paths,
):
    """Through the whole pipeline (ingest, dbt, CLV scoring, publication): a customer with two orders on one
    day has the transactions BG/NBD counts (purchase days) as the unit of cost-to-serve and of profit CLV."""
    customer, day = _plant_a_second_order_on_the_same_day(data_paths.landing)
    run_pipeline(Settings(data_dir=data_paths.data_dir), progress=lambda _: None)

    # Independently of the code: the customer's orders and purchase days, from the landing files.
    lines = [line for line in _landed_order_lines(data_paths.landing) if line["customer_id"] == customer]
    orders = {line["order_id"] for line in lines}
    days = {line["order_date"] for line in lines}
    assert len({line["order_id"] for line in lines if line["order_date"] == day}) >= 2
    assert len(orders) > len(days) > 2  # a repeat customer whose units differ: the test can tell them apart

    with duckdb.connect(str(current_database(data_paths.published)), read_only=True) as con:
        period, frequency, spend, revenue_clv, profit_clv, margin_rate, cost_per_transaction = con.execute(
            "select period, frequency, expected_spend_per_order, clv_revenue, clv_profit, gross_margin_rate, "
            "cost_to_serve_per_order from marts.customer_clv "
            "where customer_id = ? and period = (select max(period) from marts.customer_clv)",
            [customer],
        ).fetchone()
        (cost_to_serve,) = con.execute(
            "select sum(cost_to_serve) from marts.customer_profitability where customer_id = ? and period <= ?",
            [customer, period],
        ).fetchone()
    assert period.isoformat() == "2024-03-01"  # three months of data: the trailing window is all of them
    # The model's transaction is the purchase day ...
    assert frequency == len(days) - 1
    # ... and so is the unit of cost-to-serve per transaction (not per order).
    assert cost_per_transaction == (cost_to_serve / len(days)).quantize(Decimal("0.01"))
    assert cost_per_transaction != (cost_to_serve / len(orders)).quantize(Decimal("0.01"))
    # Profit CLV = discounted transactions x (spend x margin rate - cost per transaction), the transactions
    # being those revenue CLV counts (clv_revenue / expected spend).
    transactions = float(revenue_clv) / float(spend)
    expected = transactions * (float(spend) * margin_rate - float(cost_per_transaction))
    assert float(profit_clv) == pytest.approx(expected, abs=0.05)


def test_scorecard_trend_compares_the_published_actuals(published_sample: Paths, tmp_path: Path):
    """Two months whose actuals both publish as 0.0666 are 'flat', though the later one is larger unrounded.
    (The sample's windows are partial, which would leave no trend: the two months are planted whole.)"""
    paths = Paths(tmp_path / "data")
    paths.data_dir.mkdir()
    shutil.copy(published_sample.warehouse, paths.warehouse)
    with duckdb.connect(str(paths.warehouse)) as con:
        con.execute("alter table marts.customer_retention alter retention_rate type double")
        for period, rate in (("2024-02-01", 0.06658), ("2024-03-01", 0.06664)):
            updated = con.execute(
                "update marts.customer_retention set retention_rate = ?, window_months = 12, "
                "prior_window_months = 12, window_complete = true where segment = 'all' and period = ?",
                [rate, period],
            ).fetchone()[0]
            assert updated == 1
    scorecard = AssetKey(["marts", "customer_scorecard"])
    assert materialize(
        [satisfaction_and_scorecard_models(partitions_of(Settings(data_dir=paths.data_dir)))],
        partition_key="2024-01-01",
        resources=resources_for(Settings(data_dir=paths.data_dir)),
        selection=[scorecard],
    ).success
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        rows = con.execute(
            "select period, actual, trend from marts.customer_scorecard "
            "where metric = 'retention_rate' and segment = 'all' and period >= '2024-02-01' order by period"
        ).fetchall()
    assert [(str(p), a, t) for p, a, t in rows] == [
        ("2024-02-01", Decimal("0.0666"), rows[0][2]),
        ("2024-03-01", Decimal("0.0666"), "flat"),
    ]


def test_hidden_losses_include_months_with_no_revenue_and_the_summary_counts_them(
    published_sample: Paths, capsys
):
    with duckdb.connect(str(current_database(published_sample.published)), read_only=True) as con:
        # A month of support tickets or visits and no revenue: traditional profit 0, an ABC loss: flagged.
        no_revenue, unflagged = con.execute(
            "select count(*), count(*) filter (where flip_direction is distinct from 'hidden_loss' or not sign_flip) "
            "from marts.costing_comparison where net_revenue = 0 and traditional_profit = 0 and abc_profit < 0"
        ).fetchone()
        losses, profits = con.execute(
            "select count(*) filter (where flip_direction = 'hidden_loss'), "
            "count(*) filter (where flip_direction = 'hidden_profit') from marts.costing_comparison"
        ).fetchone()
    assert no_revenue > 0 and unflagged == 0
    print_summary(published_sample, RunSummary(months=["2024-01", "2024-02", "2024-03"]))
    out = capsys.readouterr().out
    assert f"hidden losses (traditional profit >= 0, ABC loss): {losses:,} customer-months" in out
    assert f"{no_revenue:,} without net revenue" in out
    assert f"hidden profits (traditional loss, ABC profit >= 0): {profits:,} customer-months" in out
