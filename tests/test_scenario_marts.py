"""The scenario marts (issue 30, items 2 and 7): the costing model run on each scenario's inputs. One real run of
the small sample with a scenarios file that pulls every costing lever once, read back from the published file;
each lever's economics checked against actual and against an independent recomputation from the warehouse's
raw data: what a lever moves, and everything it must leave alone. Conservation in every scenario and `actual`
equal to the published marts are dbt tests of the run (dbt_project/tests/conservation/); here they are read
back from the publication, and a broken scenario stops the run with its name, month and centre."""

from __future__ import annotations

import csv
import shutil
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.config import Paths
from pipelines.lib.settings import Settings
from pipelines.publication.publish import CURRENT
from pipelines.run import PipelineError, run_pipeline

COLUMNS = ["scenario", "description", "lever", "target", "operation", "value", "first_month", "last_month"]
PRICED_PRODUCT = "P00001"


def _write_scenarios(paths: Paths, changes: list[tuple[str, str, str, str, str]]) -> None:
    """The scenarios file: one row per (scenario, lever, target, operation, value), over the default window."""
    with (paths.landing / "reference" / "scenarios.csv").open("w", newline="") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(COLUMNS)
        for scenario, lever, target, operation, value in changes:
            out.writerow([scenario, f"test: {lever} {target}", lever, target, operation, value, "", ""])


def _copy(published_sample: Paths, directory: Path) -> Paths:
    paths = Paths(directory / "data")
    shutil.copytree(published_sample.data_dir, paths.data_dir, symlinks=True)
    return paths


def _query(paths: Paths, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(paths.published / CURRENT / "cprof.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _by(paths: Paths, table: str, key: str, value: str, scenario: str) -> dict:
    """``{key: value}`` of scenario ``scenario``'s rows of ``table`` (every scenario month summed)."""
    return dict(
        _query(
            paths,
            f"select {key}, sum({value}) from marts.{table} where scenario = ? group by {key}",
            [scenario],
        )
    )


def _cents(value: Decimal) -> Decimal:
    """Half away from zero to the cent, as the models round money."""
    sign = -1 if value < 0 else 1
    return sign * abs(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@pytest.fixture(scope="module")
def levers(published_sample: Paths, tmp_path_factory) -> tuple[Paths, str]:
    """The small sample run with one scenario per costing lever (and a customer whose support it triples)."""
    paths = _copy(published_sample, tmp_path_factory.mktemp("levers"))
    (customer,) = _query(
        paths,
        "select customer_id from marts.customer_cost_to_serve where activity = 'resolve_ticket' "
        "group by customer_id order by sum(allocated_cost) desc, customer_id limit 1",
    )[0]
    _write_scenarios(
        paths,
        [
            ("double_pick", "unit_minutes", "pick_and_pack", "multiply", "2"),
            ("half_warehouse", "practical_capacity_minutes", "warehouse", "multiply", "0.5"),
            ("price_rise", "unit_price", PRICED_PRODUCT, "multiply", "1.1"),
            ("price_rise", "unit_price", "enterprise", "add", "1"),
            ("leaner_field", "ledger_cost", "field_sales", "multiply", "0.8"),
            ("invoice_half", "share", "invoice_orders", "set", "0.5"),
            ("one_customer", "driver_volume", f"resolve_ticket:{customer}", "multiply", "3"),
        ],
    )
    run_pipeline(Settings(data_dir=paths.data_dir), progress=lambda _: None)
    return paths, customer


def test_every_scenario_is_published_balanced_with_actual_beside_it(levers):
    paths, _ = levers
    scenarios = {row[0] for row in _query(paths, "select scenario from marts.dim_scenarios")}
    assert scenarios == {
        "actual",
        "double_pick",
        "half_warehouse",
        "price_rise",
        "leaner_field",
        "invoice_half",
        "one_customer",
    }
    # every scenario has every scenario month (the sample's three), each balanced to the cent
    assert _query(
        paths, "select count(distinct scenario), count(*), bool_and(balanced) from marts.scenario_summary"
    ) == [(7, 21, True)]
    # actual is the published marts (a dbt test of the run; read back here on the publication)
    for scenario_table, table in (
        ("scenario_customer_profitability", "customer_profitability"),
        ("scenario_whale_curve", "whale_curve"),
    ):
        columns = [
            name
            for (name,) in _query(
                paths,
                "select column_name from duckdb_columns() where table_name = ? order by column_index",
                [table],
            )
        ]
        listed = ", ".join(columns)
        assert _query(
            paths,
            f"select count(*) from (select {listed} from marts.{scenario_table} where scenario = 'actual' "
            f"except all select {listed} from marts.{table})",
        ) == [(0,)]
        assert _query(
            paths, f"select count(*) from marts.{scenario_table} where scenario = 'actual'"
        ) == _query(paths, f"select count(*) from marts.{table}")


def test_doubling_a_unit_time_moves_that_activity_and_only_its_customers(levers):
    paths, _ = levers
    actual = _by(paths, "scenario_activity_costs", "activity", "activity_cost", "actual")
    doubled = _by(paths, "scenario_activity_costs", "activity", "activity_cost", "double_pick")
    assert actual["pick_and_pack"] > 0
    # the cost doubles (each month rounded to the cent once: within a cent a month)
    assert abs(doubled["pick_and_pack"] - 2 * actual["pick_and_pack"]) <= Decimal("0.03")
    assert {a: v for a, v in doubled.items() if a != "pick_and_pack"} == {
        a: v for a, v in actual.items() if a != "pick_and_pack"
    }
    # the warehouse's unused capacity pays for it, cent for cent; no other centre moves, nor operating profit
    unused = _by(paths, "scenario_cost_center_capacity", "cost_center", "unused_capacity_cost", "actual")
    unused_doubled = _by(
        paths, "scenario_cost_center_capacity", "cost_center", "unused_capacity_cost", "double_pick"
    )
    assert (
        unused["warehouse"] - unused_doubled["warehouse"]
        == doubled["pick_and_pack"] - actual["pick_and_pack"]
    )
    assert {c: v for c, v in unused_doubled.items() if c != "warehouse"} == {
        c: v for c, v in unused.items() if c != "warehouse"
    }
    assert (
        _by(paths, "scenario_summary", "scenario", "operating_profit", "double_pick")["double_pick"]
        == _by(paths, "scenario_summary", "scenario", "operating_profit", "actual")["actual"]
    )
    # a customer's cost to serve changes if and only if it has order lines picked in the month
    moved = _query(
        paths,
        """
        select
            a.period, a.customer_id, a.cost_to_serve <> s.cost_to_serve,
            exists (select 1 from marts.customer_cost_to_serve c where c.period = a.period
                and c.customer_id = a.customer_id and c.activity = 'pick_and_pack' and c.allocated_cost <> 0)
        from marts.scenario_customer_profitability a
        join marts.scenario_customer_profitability s
            on s.scenario = 'double_pick' and a.period = s.period and a.customer_id = s.customer_id
        where a.scenario = 'actual'
        """,
    )
    assert moved and all(changed == uses for _, _, changed, uses in moved)
    assert sum(changed for _, _, changed, _ in moved) > 0


def test_cutting_a_centres_capacity_moves_exactly_its_unused_capacity(levers):
    paths, _ = levers
    rows = _query(
        paths,
        """
        select a.cost_center, a.period, a.ledger_cost = s.ledger_cost, s.assigned_cost - a.assigned_cost,
            a.unused_capacity_cost - s.unused_capacity_cost, a.practical_capacity_minutes, s.practical_capacity_minutes,
            a.used_minutes is not distinct from s.used_minutes
        from marts.scenario_cost_center_capacity a
        join marts.scenario_cost_center_capacity s
            on s.scenario = 'half_warehouse' and a.period = s.period and a.cost_center = s.cost_center
        where a.scenario = 'actual'
        """,
    )
    for centre, _, same_ledger, assigned_up, unused_down, capacity, capacity_after, same_minutes in rows:
        assert same_ledger and same_minutes
        assert assigned_up == unused_down  # what activities take more, unused capacity gives, to the cent
        if centre == "warehouse":
            assert assigned_up > 0 and capacity_after * 2 == capacity
        else:
            assert assigned_up == 0 and capacity_after == capacity
    summary = dict(
        _query(paths, "select scenario, sum(operating_profit) from marts.scenario_summary group by 1")
    )
    assert summary["half_warehouse"] == summary["actual"]


def test_a_price_lever_moves_revenue_and_the_revenue_spread_not_the_cost_to_serve(levers):
    paths, _ = levers
    # recomputed independently from the warehouse's validated order lines and returns
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        lines = con.execute(
            """
            select o.order_id, o.line_no, date_trunc('month', o.order_date)::date, o.customer_id, o.product_id,
                c.segment, o.quantity, o.unit_price
            from raw.order_lines o join raw.customers c using (customer_id)
            """
        ).fetchall()
        returns = con.execute(
            "select order_id, line_no, date_trunc('month', return_date)::date, quantity from raw.returns"
        ).fetchall()
    change: dict[tuple, Decimal] = {}
    new_price = {}
    for order_id, line_no, period, customer, product, segment, quantity, price in lines:
        scenario_price = price * Decimal("1.1") if product == PRICED_PRODUCT else price
        scenario_price = _cents(scenario_price + (1 if segment == "enterprise" else 0))
        new_price[order_id, line_no] = (customer, scenario_price - price)
        change[period, customer] = change.get((period, customer), Decimal(0)) + quantity * (
            scenario_price - price
        )
    for order_id, line_no, period, quantity in returns:
        if (order_id, line_no) in new_price:
            customer, delta = new_price[order_id, line_no]
            change[period, customer] = change.get((period, customer), Decimal(0)) - quantity * delta
    compared = _query(
        paths,
        """
        select a.period, a.customer_id, s.net_revenue - a.net_revenue, s.gross_margin - a.gross_margin,
            s.cost_to_serve - a.cost_to_serve, s.cogs - a.cogs, s.traditional_overhead - a.traditional_overhead
        from marts.scenario_customer_profitability a
        join marts.scenario_customer_profitability s
            on s.scenario = 'price_rise' and a.period = s.period and a.customer_id = s.customer_id
        where a.scenario = 'actual'
        """,
    )
    assert len(compared) == len(_query(paths, "select 1 from marts.customer_profitability"))
    for period, customer, revenue, margin, cost_to_serve, cogs, _ in compared:
        assert revenue == margin == change.get((period, customer), 0), (period, customer)
        assert cost_to_serve == 0 and cogs == 0
    assert sum(row[2] for row in compared) > 0
    # the traditional spread moves with revenue, and still spreads the whole ledger
    assert any(row[6] != 0 for row in compared)
    totals = dict(
        _query(
            paths,
            "select scenario, sum(operating_profit - traditional_customer_profit) from marts.scenario_summary group by 1",
        )
    )
    assert set(totals.values()) == {0}
    summary = dict(
        _query(paths, "select scenario, sum(operating_profit) from marts.scenario_summary group by 1")
    )
    assert summary["price_rise"] - summary["actual"] == sum(row[2] for row in compared)


def test_a_ledger_cut_moves_operating_profit_by_the_cut(levers):
    paths, _ = levers
    rows = _query(
        paths,
        """
        select a.period, a.ledger_cost, s.ledger_cost
        from marts.scenario_cost_center_capacity a
        join marts.scenario_cost_center_capacity s
            on s.scenario = 'leaner_field' and a.period = s.period and a.cost_center = s.cost_center
        where a.scenario = 'actual' and a.cost_center = 'field_sales'
        """,
    )
    assert rows and all(new == _cents(old * Decimal("0.8")) for _, old, new in rows)
    cut = sum(old - new for _, old, new in rows)
    summary = dict(
        _query(paths, "select scenario, sum(operating_profit) from marts.scenario_summary group by 1")
    )
    assert summary["leaner_field"] - summary["actual"] == cut > 0


def test_a_share_lever_resplits_its_centre_and_nothing_else(levers):
    paths, _ = levers
    rows = _query(
        paths,
        """
        select s.period, s.activity, s.share, s.activity_cost, c.ledger_cost
        from marts.scenario_activity_costs s
        join marts.scenario_cost_center_capacity c
            on c.scenario = s.scenario and c.period = s.period and c.cost_center = s.cost_center
        where s.scenario = 'invoice_half' and s.cost_center = 'billing'
        """,
    )
    shares = {activity: share for _, activity, share, _, _ in rows}
    # the other shares (0.25 and 0.15 in the sample) fill what invoice_orders leaves, in proportion
    assert shares == {
        "invoice_orders": Decimal("0.5"),
        "credit_returns": Decimal("0.3125"),
        "rush_billing": Decimal("0.1875"),
    }
    for _, activity, share, cost, ledger in rows:
        if activity == "invoice_orders":
            assert abs(cost - ledger * share) <= Decimal("0.01")
    actual = _by(paths, "scenario_cost_center_capacity", "cost_center", "ledger_cost", "actual")
    assert _by(paths, "scenario_cost_center_capacity", "cost_center", "ledger_cost", "invoice_half") == actual


def test_a_customers_driver_volume_moves_its_share_of_the_activity(levers):
    paths, customer = levers
    rows = dict(
        _query(
            paths,
            "select scenario, sum(cost_to_serve) from marts.scenario_customer_profitability "
            "where customer_id = ? and scenario in ('actual', 'one_customer') group by 1",
            [customer],
        )
    )
    assert rows["one_customer"] > rows["actual"]
    compared = _query(
        paths,
        """
        select s.customer_id, s.abc_profit_change, s.flip_direction
        from marts.scenario_comparison s where s.scenario = 'one_customer'
        """,
    )
    moved = {c for c, change, _ in compared if change != 0}
    assert moved == {customer}  # a time-driven activity: only the customer's own cost moves


def test_a_broken_scenario_stops_the_run_naming_it(published_sample: Paths, tmp_path: Path):
    paths = _copy(published_sample, tmp_path)
    before = (paths.published / CURRENT).resolve()
    _write_scenarios(
        paths,
        [
            ("too_much", "share", "invoice_orders", "set", "0.7"),
            ("too_much", "share", "credit_returns", "set", "0.5"),
        ],
    )
    with pytest.raises(PipelineError) as failure:
        run_pipeline(Settings(data_dir=paths.data_dir), progress=lambda _: None)
    message = str(failure.value)
    assert "scenario too_much" in message and "cost centre billing" in message and "sum to 1.2" in message
    assert (paths.published / CURRENT).resolve() == before
