"""The warehouse seam on DuckDB (pipelines/engines/): reads with bound filters, and replace_periods, the one write
of a table keyed by period - all or nothing, a window's periods without new rows emptied, the rest kept."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipelines.engines import dbt_target, open_runtime
from pipelines.engines.base import Column, CopyRows, Filter, PeriodWindow
from pipelines.engines.duckdb_warehouse import DuckDBWarehouse
from pipelines.lib.settings import SettingError, Settings

COLUMNS = [
    Column("period", "date", nullable=False),
    Column("key", "varchar", nullable=False),
    Column("amount", "decimal(18, 2)"),
]
JAN, FEB, MAR = date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)


def _frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=[c.name for c in COLUMNS])


def _rows(database: Path) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute("select period, key, amount::varchar from marts.facts order by all").fetchall()


@pytest.fixture
def warehouse(tmp_path: Path):
    wh = DuckDBWarehouse(tmp_path / "warehouse.duckdb")
    wh.replace_periods(
        "marts.facts",
        COLUMNS,
        iter([_frame([(JAN, "a", "1.10"), (FEB, "a", "2.20")]), _frame([(MAR, "b", "3.30")])]),
        PeriodWindow(),
    )
    yield wh
    wh.close()


def test_replace_periods_replaces_the_window_empties_its_missing_periods_and_keeps_the_rest(warehouse):
    written = warehouse.replace_periods(
        "marts.facts", COLUMNS, iter([_frame([(FEB, "c", "9.99")])]), PeriodWindow(FEB, MAR)
    )
    assert written == 1
    warehouse.close()
    # January kept; February replaced; March (in the window, no new rows) emptied.
    assert _rows(warehouse.database) == [(JAN, "a", "1.10"), (FEB, "c", "9.99")]


def test_replace_periods_copies_staged_rows_under_another_value(warehouse):
    """CopyRows: the rows staged before it with the value, again with the new one (a copy before any frame, or
    of a value no row has, copies nothing); a column the table does not have is an error, and nothing is
    written."""
    frames = [
        CopyRows("key", "a", "y"),
        _frame([(JAN, "a", "1.10"), (FEB, "a", "2.20"), (FEB, "b", "0.50")]),
        CopyRows("key", "a", "z"),
        CopyRows("key", "nobody", "w"),
    ]
    assert warehouse.replace_periods("marts.facts", COLUMNS, iter(frames), PeriodWindow(JAN, FEB)) == 5
    with pytest.raises(ValueError, match="'customer'"):
        warehouse.replace_periods(
            "marts.facts", COLUMNS, iter([CopyRows("customer", "a", "z")]), PeriodWindow(JAN, FEB)
        )
    warehouse.close()
    assert _rows(warehouse.database) == [
        (JAN, "a", "1.10"),
        (JAN, "z", "1.10"),
        (FEB, "a", "2.20"),
        (FEB, "b", "0.50"),
        (FEB, "z", "2.20"),
        (MAR, "b", "3.30"),
    ]


def test_replace_periods_is_all_or_nothing(warehouse):
    def frames():
        yield _frame([(FEB, "x", "1.00")])
        raise RuntimeError("the second month could not be scored")

    with pytest.raises(RuntimeError, match="could not be scored"):
        warehouse.replace_periods("marts.facts", COLUMNS, frames(), PeriodWindow(FEB, None))
    wrong = pd.DataFrame({"period": [FEB], "amount": ["1.00"], "key": ["x"]})
    with pytest.raises(ValueError, match="frame columns"):
        warehouse.replace_periods("marts.facts", COLUMNS, iter([wrong]), PeriodWindow(FEB, None))
    with pytest.raises(duckdb.Error):  # a value that does not fit the column's type
        warehouse.replace_periods(
            "marts.facts", COLUMNS, iter([_frame([(FEB, "x", "not money")])]), PeriodWindow(FEB, None)
        )
    assert (
        warehouse.con.execute(
            "select count(*) from duckdb_tables() where schema_name = 'scratch'"
        ).fetchone()[0]
        == 0
    )
    warehouse.close()
    assert _rows(warehouse.database) == [(JAN, "a", "1.10"), (FEB, "a", "2.20"), (MAR, "b", "3.30")]


def test_reads_bind_every_value(warehouse):
    hostile = "a' or '1'='1"
    assert warehouse.read("marts.facts", where=[Filter("key", "=", hostile)]).empty
    assert warehouse.count("marts.facts", [Filter("key", "in", ["a", hostile])]) == 2
    assert warehouse.count("marts.facts", [Filter("key", "in", [])]) == 0
    assert warehouse.distinct("marts.facts", "period", PeriodWindow(FEB, None).filters()) == [FEB, MAR]
    assert warehouse.count_by("marts.facts", "key") == {"a": 2, "b": 1}
    assert warehouse.columns("marts.facts") == ["period", "key", "amount"]
    assert warehouse.columns("marts.missing") == [] and not warehouse.exists("marts.missing")
    frame = warehouse.read("marts.facts", ["key", "amount"], [Filter("period", ">=", FEB)], order_by=["key"])
    assert frame.to_dict("list") == {"key": ["a", "b"], "amount": [pytest.approx(2.2), pytest.approx(3.3)]}
    with pytest.raises(ValueError, match="unknown operator"):
        warehouse.count("marts.facts", [Filter("key", "= 'a' or 1=1 --", "a")])  # type: ignore[arg-type]


def test_the_engine_setting_picks_the_runtime_and_the_dbt_target(tmp_path: Path):
    unset = Settings.from_environ({"CPROF_DATA_DIR": str(tmp_path)})
    assert unset.engine == "duckdb" and dbt_target(unset.engine) == "local"
    spark = Settings.from_environ({"CPROF_DATA_DIR": str(tmp_path), "CPROF_ENGINE": "Spark "})
    assert spark.engine == "spark" and dbt_target(spark.engine) == "spark_thrift"
    with pytest.raises(SettingError, match="^CPROF_ENGINE='oracle': expected one of duckdb, spark$"):
        Settings.from_environ({"CPROF_ENGINE": "oracle"})
    runtime = open_runtime(unset)
    assert runtime.engine == "duckdb" and runtime.months_awaiting_publication() == []
    with runtime.session() as wh:
        assert wh.engine == "duckdb" and wh.marts() == []


def test_the_warehouse_is_three_roles_each_method_in_one():
    """Tables (the assets' reads and writes), Intake (landing to raw) and MartsSource (the publication's reads):
    every abstract method of Warehouse belongs to exactly one role, and each engine implements all of them."""
    from pipelines.engines.base import Intake, MartsSource, Tables, Warehouse
    from pipelines.engines.spark_warehouse import SparkWarehouse

    roles = {role: set(role.__abstractmethods__) for role in (Tables, Intake, MartsSource)}
    assert set(Warehouse.__abstractmethods__) == set().union(*roles.values())
    assert sum(len(methods) for methods in roles.values()) == len(Warehouse.__abstractmethods__)
    assert {role.__name__: len(methods) for role, methods in roles.items()} == {
        "Tables": 8,
        "Intake": 8,
        "MartsSource": 2,
    }
    for engine in (DuckDBWarehouse, SparkWarehouse):
        assert issubclass(engine, Warehouse) and not engine.__abstractmethods__, engine
