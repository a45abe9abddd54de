"""customer_profit_levers (DESIGN.md "Why a customer loses money"): recomputed independently in pandas from the
published customer_cost_to_serve and customer_profitability and compared row for row; a hand-made segment
built through dbt names the customer that needs three times its segment's support; the break-even price
change, applied, brings the profit to zero."""

from __future__ import annotations

import shutil
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipelines.lib.config import Paths
from pipelines.publication.publish import current_database
from tests.dbt_cli import run_dbt

COLUMNS = [
    "period",
    "time_window",
    "customer_id",
    "segment",
    "activity",
    "cost_center",
    "driver",
    "lever_reason",
    "window_months",
    "window_complete",
    "net_revenue",
    "abc_profit",
    "driver_volume",
    "norm_driver_volume",
    "volume_to_norm",
    "allocated_cost",
    "cost_per_revenue",
    "segment_median_cost_per_revenue",
    "segment_customers",
    "excess_cost",
    "profit_at_norm",
    "break_even_price_change_pct",
    "revenue_to_break_even",
]


def _decimal(value: float | None, scale: int) -> Decimal | None:
    """A double as DECIMAL(_, scale) the way DuckDB casts it (macros/cross_database.sql, double_as_decimal):
    the value times 10^scale in double precision, rounded half away from zero."""
    if value is None or pd.isna(value):
        return None
    scaled = Decimal(value * 10**scale).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return scaled.scaleb(-scale)


def expected_levers(profit: pd.DataFrame, cost_to_serve: pd.DataFrame) -> list[tuple]:
    """The levers of every as-of month and window, from the definitions in DESIGN.md, in plain pandas."""
    periods = sorted(profit["period"].unique())
    rows = []
    for as_of in periods:
        start = (pd.Timestamp(as_of) - pd.DateOffset(months=11)).date()
        for window, months in (("month", [as_of]), ("t12m", [p for p in periods if start <= p <= as_of])):
            customers = (
                profit[profit["period"].isin(months)]
                .groupby("customer_id")
                .agg(
                    segment=("segment", "max"), net_revenue=("net_revenue", "sum"), abc=("abc_profit", "sum")
                )
            )
            carried = (
                cost_to_serve[cost_to_serve["period"].isin(months)]
                .groupby(["customer_id", "activity"])
                .agg(
                    cost_center=("cost_center", "max"),
                    driver=("driver", "max"),
                    volume=("driver_volume", "sum"),
                    cost=("allocated_cost", "sum"),
                )
                .reset_index()
            )
            # Peers: every customer with positive net revenue, 0 for an activity it does not carry.
            peers = customers[customers["net_revenue"] > 0]
            grid = pd.MultiIndex.from_product(
                [peers.index, sorted(carried["activity"].unique())], names=["customer_id", "activity"]
            )
            costs = carried.set_index(["customer_id", "activity"])["cost"].reindex(
                grid, fill_value=Decimal(0)
            )
            ratios = pd.DataFrame(
                {
                    "segment": peers["segment"].reindex(grid.get_level_values(0)).to_numpy(),
                    "ratio": [
                        float(cost) / float(peers.at[customer, "net_revenue"])
                        for (customer, _), cost in costs.items()
                    ],
                },
                index=grid,
            ).reset_index()
            medians = ratios.groupby(["segment", "activity"])["ratio"].agg(["median", "count"])
            for lever in carried.itertuples():
                customer = customers.loc[lever.customer_id]
                revenue, cost = customer["net_revenue"], lever.cost
                has_revenue = revenue > 0
                median, peer_count = (
                    medians.loc[(customer["segment"], lever.activity)]
                    if (customer["segment"], lever.activity) in medians.index
                    else (None, 0)
                )
                if has_revenue:
                    norm_cost = median * float(revenue)
                else:
                    norm_cost = 0.0
                excess = _decimal(float(cost) - norm_cost, 2)
                if not excess > 0:
                    continue
                abc = customer["abc"]
                rows.append(
                    (
                        as_of,
                        window,
                        lever.customer_id,
                        customer["segment"],
                        lever.activity,
                        lever.cost_center,
                        lever.driver,
                        "above_segment_median" if has_revenue else "no_net_revenue",
                        len(months),
                        len(months) == (1 if window == "month" else 12),
                        revenue,
                        abc,
                        lever.volume,
                        _decimal(norm_cost * float(lever.volume) / float(cost), 4),
                        _decimal(float(cost) / norm_cost, 4) if norm_cost > 0 else None,
                        cost,
                        _decimal(float(cost) / float(revenue), 6) if has_revenue else None,
                        _decimal(median, 6),
                        int(peer_count),
                        excess,
                        abc + excess,
                        _decimal(float(-100 * abc) / float(revenue), 6) if abc <= 0 and has_revenue else None,
                        -abc if abc < 0 else Decimal("0.00"),
                    )
                )
    return rows


def _published(paths: Paths):
    return duckdb.connect(str(current_database(paths.published)), read_only=True)


def _frame(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    cursor = con.execute(sql)
    return pd.DataFrame(cursor.fetchall(), columns=[d[0] for d in cursor.description])


def _levers(con: duckdb.DuckDBPyConnection, table: str = "marts.customer_profit_levers") -> list[tuple]:
    return con.execute(f"select {', '.join(COLUMNS)} from {table} order by all").fetchall()


def _inputs(con: duckdb.DuckDBPyConnection) -> tuple[pd.DataFrame, pd.DataFrame]:
    profit = _frame(
        con, "select period, customer_id, segment, net_revenue, abc_profit from marts.customer_profitability"
    )
    cost_to_serve = _frame(
        con,
        "select period, customer_id, activity, cost_center, driver, driver_volume, allocated_cost "
        "from marts.customer_cost_to_serve",
    )
    return profit, cost_to_serve


def test_the_published_levers_are_the_definition_recomputed_in_pandas(published_sample: Paths):
    with _published(published_sample) as con:
        published = _levers(con)
        expected = sorted(expected_levers(*_inputs(con)), key=lambda row: tuple(str(v) for v in row[:5]))
    published.sort(key=lambda row: tuple(str(v) for v in row[:5]))
    assert len(published) == len(expected) > 0
    for got, want in zip(published, expected, strict=True):
        assert dict(zip(COLUMNS, got, strict=True)) == dict(zip(COLUMNS, want, strict=True))
    # the sample has both kinds of lever in a month, and levers over the trailing window
    assert {(row[1], row[7]) for row in published} >= {
        ("month", "above_segment_median"),
        ("month", "no_net_revenue"),
        ("t12m", "above_segment_median"),
    }


def test_the_break_even_price_change_applied_brings_abc_profit_to_zero(published_sample: Paths):
    """Net revenue x (1 + change) - cogs - cost to serve, from customer_profitability's own figures."""
    with _published(published_sample) as con:
        applied = con.execute(
            """
            with windows as (
                select distinct period, time_window, customer_id, break_even_price_change_pct as pct
                from marts.customer_profit_levers
                where break_even_price_change_pct is not null
            )
            select w.period, w.time_window, w.customer_id, w.pct, sum(p.abc_profit),
                   sum(p.net_revenue) * (1 + w.pct / 100) - sum(p.cogs) - sum(p.cost_to_serve)
            from windows as w
            inner join marts.customer_profitability as p
                on p.customer_id = w.customer_id and p.period <= w.period
                and p.period > w.period - interval 12 month
                and (w.time_window = 't12m' or p.period = w.period)
            group by w.period, w.time_window, w.customer_id, w.pct
            """
        ).fetchall()
        profitable = con.execute(
            "select count(*) from marts.customer_profit_levers "
            "where abc_profit > 0 and break_even_price_change_pct is not null"
        ).fetchone()[0]
    assert applied and profitable == 0
    for period, window, customer, pct, abc, after in applied:
        assert abc <= 0 and pct >= 0, (period, window, customer)
        assert abs(after) < Decimal("0.01"), (period, window, customer, pct, abc, after)


# A hand-made segment of one month: five small businesses with the same margin and order handling; E is twice
# the size of the others and needs 60 support minutes where its size would need 20 (3x the norm); F has support
# and no revenue; G is alone in its segment, so it is its own median.
MONTH = "2024-05-01"
PROFIT = [
    # customer, segment, net_revenue, abc_profit (gross margin - orders - support)
    ("A", "small_business", "1000.00", "20.00"),
    ("B", "small_business", "1000.00", "20.00"),
    ("C", "small_business", "1000.00", "20.00"),
    ("D", "small_business", "1000.00", "20.00"),
    ("E", "small_business", "2000.00", "-40.00"),
    ("F", "small_business", "0.00", "-30.00"),
    ("G", "enterprise", "1000.00", "-10.00"),
]
COST_TO_SERVE = [
    # customer, activity, cost_center, driver, driver_volume, allocated_cost (support: 2.00 a minute)
    *((c, "enter_order", "order_desk", "orders", "5", "10.00") for c in "ABCD"),
    ("E", "enter_order", "order_desk", "orders", "10", "20.00"),
    ("G", "enter_order", "order_desk", "orders", "5", "10.00"),
    *((c, "resolve_ticket", "customer_service", "support_minutes", "10", "20.00") for c in "ABCD"),
    ("E", "resolve_ticket", "customer_service", "support_minutes", "60", "120.00"),
    ("F", "resolve_ticket", "customer_service", "support_minutes", "15", "30.00"),
    ("G", "resolve_ticket", "customer_service", "support_minutes", "30", "60.00"),
]


def test_three_times_the_segments_support_names_support_as_the_lever_with_its_excess(
    published_sample: Paths, tmp_path: Path
):
    """The model built by dbt on a warehouse whose two input marts hold the hand-made month."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(published_sample.warehouse, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("delete from marts.customer_profitability")
        con.execute("delete from marts.customer_cost_to_serve")
        con.executemany(
            "insert into marts.customer_profitability (period, customer_id, segment, net_revenue, abc_profit) "
            "values (?, ?, ?, ?, ?)",
            [(MONTH, *row) for row in PROFIT],
        )
        con.executemany(
            "insert into marts.customer_cost_to_serve "
            "(period, customer_id, activity, cost_center, driver, driver_volume, allocated_cost) "
            "values (?, ?, ?, ?, ?, ?, ?)",
            [(MONTH, *row) for row in COST_TO_SERVE],
        )
    done = run_dbt(tmp_path, "run", "--select", "customer_profit_levers", "--full-refresh")
    assert done.returncode == 0, done.stdout
    with duckdb.connect(str(warehouse), read_only=True) as con:
        levers = {
            (row[0], row[1], row[2]): dict(zip(COLUMNS[4:], row[3:], strict=True))
            for row in con.execute(
                f"select time_window, customer_id, activity, {', '.join(COLUMNS[4:])} "
                "from marts.customer_profit_levers order by all"
            ).fetchall()
        }
    # E and F only; the month and its (one-month) trailing window alike; G is its segment's norm
    assert set(levers) == {(w, c, "resolve_ticket") for w in ("month", "t12m") for c in "EF"}
    support = levers[("month", "E", "resolve_ticket")]
    assert support["lever_reason"] == "above_segment_median"
    assert support["segment_median_cost_per_revenue"] == Decimal("0.020000")  # 20.00 of 1,000.00
    assert support["cost_per_revenue"] == Decimal("0.060000")
    assert support["norm_driver_volume"] == Decimal("20.0000")  # 0.02 x 2,000.00 / 2.00 a minute
    assert support["volume_to_norm"] == Decimal("3.0000")
    assert support["excess_cost"] == Decimal("80.00")  # 40 minutes above the norm at 2.00
    assert support["profit_at_norm"] == Decimal("40.00")  # -40.00 + 80.00
    assert support["break_even_price_change_pct"] == Decimal("2.000000")  # 40.00 of 2,000.00
    assert support["revenue_to_break_even"] == Decimal("40.00")
    assert support["segment_customers"] == 5  # A-E; F has no revenue
    no_revenue = levers[("month", "F", "resolve_ticket")]
    assert no_revenue["lever_reason"] == "no_net_revenue"
    assert no_revenue["norm_driver_volume"] == 0 and no_revenue["excess_cost"] == Decimal("30.00")
    assert no_revenue["profit_at_norm"] == 0 and no_revenue["break_even_price_change_pct"] is None
    assert no_revenue["cost_per_revenue"] is None and no_revenue["revenue_to_break_even"] == Decimal("30.00")
    trailing = levers[("t12m", "E", "resolve_ticket")]
    assert {k: v for k, v in trailing.items() if k not in ("window_complete",)} == {
        k: v for k, v in support.items() if k not in ("window_complete",)
    }
    assert support["window_complete"] and not trailing["window_complete"]


@pytest.mark.parametrize("window", ["month", "t12m"])
def test_every_lever_is_above_its_norm_in_cost_and_in_volume(published_sample: Paths, window):
    with _published(published_sample) as con:
        levers, below = con.execute(
            """
            select count(*), count(*) filter (where not (
                cost_per_revenue > segment_median_cost_per_revenue and driver_volume > norm_driver_volume
                and excess_cost > 0 and profit_at_norm > abc_profit))
            from marts.customer_profit_levers
            where time_window = ? and lever_reason = 'above_segment_median'
            """,
            [window],
        ).fetchone()
    assert levers > 0 and below == 0


@pytest.mark.parametrize(
    "column, window",
    [("profit_at_norm", "month"), ("net_revenue", "t12m"), ("abc_profit", "t12m")],
)
def test_a_lever_one_cent_off_fails_the_build(
    published_sample: Paths, tmp_path: Path, column: str, window: str
):
    """The data test is not decorative: profit_at_norm = abc_profit + excess_cost, and a window's net revenue and
    ABC profit are the customer's months' sums, to the cent: one lever a cent off fails it, alone."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(published_sample.warehouse, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        # abc_profit moves profit_at_norm with it: only the window's sum is then off
        moved = [column, "profit_at_norm"] if column == "abc_profit" else [column]
        con.execute(
            f"update marts.customer_profit_levers set {', '.join(f'{c} = {c} + 0.01' for c in moved)} "
            "where (period, time_window, customer_id, activity) in "
            "(select (period, time_window, customer_id, activity) from marts.customer_profit_levers "
            "where time_window = ? order by all limit 1)",
            [window],
        )
    done = run_dbt(tmp_path, "test", "--select", "assert_profit_levers_add_up")
    assert done.returncode == 1, done.stdout
    assert "FAIL 1 assert_profit_levers_add_up" in done.stdout
