"""The scenario models refreshed by month (docs/DESIGN.md, Scenarios; issue 32): a run rebuilds the months of its
refresh window and those whose scenario changes moved (int_scenario_periods), and the scenario tables then equal,
row for row, the same models rebuilt whole (``--full-refresh``) from the same warehouse. On copies of the demo's
warehouse (24 months, the scenario months its trailing 12), with the scenarios changed in the warehouse as a new
scenarios file would change them: a change given its own months (months leave and enter the scenario months,
the whale curve's windows move), a price change (its returns credited in later months), a change put back (the
months it had added deleted), and a run that fails before the scenario models are all built (the next run
rebuilds what it left)."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.config import Paths
from tests.dbt_cli import run_dbt

SCENARIO_MODELS = "int_scenario_changes+"
# int_scenario_periods says what one run rebuilt, which differs from a full build by design.
NOT_COMPARED = {"int_scenario_periods", "scenario_customer_value"}


def _dbt(data_dir: Path, *args: str, month: str | None = None) -> None:
    """dbt against the warehouse in ``data_dir``, refreshing ``month`` alone (no refresh window without it)."""
    done = run_dbt(data_dir, *args, "--exclude-resource-type", "unit_test", month=month)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def _refresh(data_dir: Path, month: str) -> None:
    _dbt(data_dir, "build", "--select", SCENARIO_MODELS, month=month)


def _scenario_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return con.execute(
        "select schema_name, table_name from duckdb_tables() where database_name = 'warehouse' "
        "and schema_name in ('intermediate', 'marts') and table_name like '%scenario%' order by all"
    ).fetchall()


def _assert_equal_to_a_full_build(data_dir: Path, tmp_path: Path) -> None:
    """Every scenario table of ``data_dir``'s warehouse equals a full rebuild of a copy of it."""
    whole = tmp_path / "whole"
    whole.mkdir(exist_ok=True)
    shutil.copy(data_dir / "warehouse.duckdb", whole / "warehouse.duckdb")
    _dbt(whole, "build", "--full-refresh", "--select", SCENARIO_MODELS)
    with duckdb.connect() as con:
        con.execute("attach ? as warehouse (read_only)", [str(data_dir / "warehouse.duckdb")])
        con.execute("attach ? as whole (read_only)", [str(whole / "warehouse.duckdb")])
        tables = [(s, t) for s, t in _scenario_tables(con) if t not in NOT_COMPARED]
        assert len(tables) >= 16
        for schema, table in tables:
            here, there = f"warehouse.{schema}.{table}", f"whole.{schema}.{table}"
            rows = con.execute(f"select count(*) from {here}").fetchone()[0]
            assert rows > 0, here
            for a, b in ((here, there), (there, here)):
                (extra,) = con.execute(f"select count(*) from (from {a} except all from {b})").fetchone()
                assert extra == 0, f"{extra} rows of {a} are not in {b}"


def _flags(data_dir: Path) -> dict[str, tuple[bool, bool]]:
    """Month -> (rebuilt, whale_rebuilt) of the last run, for the months it rebuilt anything of."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "select strftime(period, '%Y-%m'), rebuilt, whale_rebuilt from intermediate.int_scenario_periods "
            "where rebuilt or whale_rebuilt order by period"
        ).fetchall()
    return {month: (rebuilt, whale) for month, rebuilt, whale in rows}


def _change(data_dir: Path, sql: str, params: list | None = None) -> None:
    """Change the promoted scenarios in place (store.scenarios, which raw.scenarios reads), keeping the file's
    version: the months must then be found from the changes themselves."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        con.execute(sql, params or [])


def _months(first: str, last: str) -> list[str]:
    months, year, month = [], int(first[:4]), int(first[5:])
    while f"{year:04d}-{month:02d}" <= last:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _changed_customers(data_dir: Path, month: date) -> int:
    """Customers whose profit express_surcharge changes in ``month``, as scenario_comparison has it."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(
            "select count(*) from marts.scenario_comparison "
            "where scenario = 'express_surcharge' and period = ? and abc_profit_change <> 0",
            [month],
        ).fetchone()[0]


@pytest.fixture
def data_dir(demo_published: Paths, tmp_path: Path) -> Path:
    """A copy of the demo's warehouse, with the scenario models built once more by this code (a full build)."""
    directory = tmp_path / "data"
    directory.mkdir()
    shutil.copy(demo_published.warehouse, directory / "warehouse.duckdb")
    _dbt(directory, "build", "--full-refresh", "--select", SCENARIO_MODELS)
    return directory


def _scenario_months(data_dir: Path) -> list[str]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return [
            m
            for (m,) in con.execute(
                "select distinct strftime(period, '%Y-%m') from intermediate.int_scenario_months order by 1"
            ).fetchall()
        ]


def test_a_month_s_refresh_rebuilds_that_month_and_the_whale_curves_that_read_it(
    data_dir: Path, tmp_path: Path
):
    months = _scenario_months(data_dir)
    assert len(months) == 12
    middle = months[5]
    _refresh(data_dir, f"{middle}-01")
    assert _flags(data_dir) == {m: (m == middle, True) for m in months[5:]}
    _assert_equal_to_a_full_build(data_dir, tmp_path)


def test_changes_given_their_own_months_rebuild_the_months_they_move(data_dir: Path, tmp_path: Path):
    """fewer_visits' change given months before the scenario months (the scenario months start there), a price
    change of one product in four middle months (its lines' returns credited in the months after), and
    express_surcharge's changes starting three months later: the months whose changes differ are rebuilt, and the
    whale curves whose windows hold one, the other months are kept; then fewer_visits put back deletes the months
    it had added."""
    months = _scenario_months(data_dir)
    last = months[-1]
    _change(
        data_dir,
        "update store.scenarios set first_month = '2024-06', last_month = '2024-09' where scenario = 'fewer_visits'",
    )
    _refresh(data_dir, f"{last}-01")
    assert _scenario_months(data_dir)[0] == "2024-06"
    _assert_equal_to_a_full_build(data_dir, tmp_path)

    # the product most returned after the change's months, of lines ordered in them
    start, after = (date.fromisoformat(f"{m}-01") for m in (months[4], months[8]))
    _change(
        data_dir,
        "insert into store.scenarios select 'price_rise', 'a tenth more for one product', 'unit_price', "
        "(select product_id from intermediate.int_returns_joined_to_order_lines where period >= ? and order_date "
        ">= ? and order_date < ? group by 1 order by count(*) desc, 1 limit 1), 'multiply', 1.1, ?, ?, _period, "
        "_source_file, _loaded_at, "
        "_file_sha256, _generation from store.scenarios where scenario = 'fewer_visits'",
        [after, start, after, months[4], months[7]],
    )
    _change(
        data_dir,
        "update store.scenarios set first_month = ? where scenario = 'express_surcharge'",
        [months[3]],
    )
    _refresh(data_dir, f"{last}-01")
    rebuilt = {m for m, (flag, _) in _flags(data_dir).items() if flag}
    # every month rebuilt: a new scenario's name is in every month's signature
    assert rebuilt == set(_months("2024-06", last))
    _assert_equal_to_a_full_build(data_dir, tmp_path)

    _change(
        data_dir,
        "update store.scenarios set first_month = ? where scenario = 'express_surcharge'",
        [months[2]],
    )
    _refresh(data_dir, f"{months[9]}-01")
    flags = _flags(data_dir)
    assert {m for m, (flag, _) in flags.items() if flag} == {months[2], months[9]}
    assert {m for m, (_, whale) in flags.items() if whale} == set(months[2:])
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        (credited,) = con.execute(
            "select count(*) from intermediate.int_scenario_margin as s join intermediate.int_scenario_margin as a "
            "on a.scenario = 'actual' and s.period = a.period and s.customer_id = a.customer_id "
            "where s.scenario = 'price_rise' and s.period > ? and s.returns_credit <> a.returns_credit",
            [date.fromisoformat(f"{months[7]}-01")],
        ).fetchone()
    assert credited > 0  # returns after the change's months, credited at its price
    _assert_equal_to_a_full_build(data_dir, tmp_path)

    _change(
        data_dir,
        "update store.scenarios set first_month = null, last_month = null where scenario = 'fewer_visits'",
    )
    _refresh(data_dir, f"{last}-01")
    assert _scenario_months(data_dir)[0] == months[0]
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        (first,) = con.execute("select min(period) from marts.scenario_customer_profitability").fetchone()
    assert first == date.fromisoformat(f"{months[0]}-01")
    _assert_equal_to_a_full_build(data_dir, tmp_path)


def test_a_run_that_stops_before_the_scenarios_are_built_leaves_their_months_to_the_next(
    data_dir: Path, tmp_path: Path
):
    """The scenario models are built but the run stops before int_scenario_built records it (a failed test, a
    killed process): the next run, for another month, rebuilds the moved months again."""
    months = _scenario_months(data_dir)
    _change(
        data_dir,
        "update store.scenarios set first_month = ? where scenario = 'express_surcharge'",
        [months[4]],
    )
    # the scenario models and their tests up to the marts, not the record of their signatures
    _dbt(
        data_dir,
        "build",
        "--select",
        SCENARIO_MODELS,
        "--exclude",
        "int_scenario_built",
        "scenario_comparison+",
        month=f"{months[-1]}-01",
    )
    moved = date.fromisoformat(f"{months[0]}-01")
    assert _changed_customers(data_dir, moved) > 0  # scenario_comparison still has the change in that month
    _refresh(data_dir, f"{months[-1]}-01")
    assert {m for m, (flag, _) in _flags(data_dir).items() if flag} == {*months[:4], months[-1]}
    assert _changed_customers(data_dir, moved) == 0
    _assert_equal_to_a_full_build(data_dir, tmp_path)
