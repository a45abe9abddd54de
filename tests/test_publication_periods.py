"""The publication rewrites what changed: Parquet partitioned by period (hive-style folders), checksums per table
and period (``marts.publish_period_log``), and a refresh that writes and checksums only the periods it replaced,
the other periods' Parquet files hard links to the previous release's. The table checksum in ``publish_log``
stays the whole-table one; a previous release whose period log disagrees with it is written whole."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import duckdb
import pytest

from pipelines.engines.duckdb_warehouse import DuckDBWarehouse
from pipelines.lib.config import Paths
from pipelines.publication.publish import (
    CURRENT,
    PARQUET_DIR,
    TableDoc,
    current_database,
    parquet_source,
    period_sums,
    publish,
    table_checksum,
)

PERIODS = {"first_period": date(2024, 1, 1), "last_period": date(2024, 3, 1)}
KEYS = {
    "dim_customers": ("customer_id",),
    "facts": ("period", "customer_id"),
    "scenario_facts": ("scenario", "period", "customer_id"),
    "empty_facts": ("period", "customer_id"),
}
TABLES = ("dim_customers", "facts", "scenario_facts", "empty_facts")
JAN, FEB, MAR, APR = (date(2024, m, 1) for m in (1, 2, 3, 4))


def _warehouse(path: Path, facts: str, scenario: str, customers: str = "('C1', 'A'), ('C2', 'B')") -> Path:
    """``facts`` refreshed by period (incremental), ``scenario_facts`` rebuilt whole by every run (any period may
    change), ``empty_facts`` with no rows, ``dim_customers`` without periods."""
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists marts")
        con.execute(
            "create or replace table marts.dim_customers (customer_id varchar, customer_name varchar)"
        )
        con.execute(f"insert into marts.dim_customers values {customers}")
        for table, extra in [("facts", ""), ("scenario_facts", "scenario varchar, "), ("empty_facts", "")]:
            con.execute(
                f"create or replace table marts.{table} "
                f"({extra}period date, customer_id varchar, amount decimal(18, 2), note varchar)"
            )
        con.execute(f"insert into marts.facts values {facts}")
        con.execute(f"insert into marts.scenario_facts values {scenario}")
    return path


def _rows(month: str, *amounts: str, scenario: str | None = None) -> str:
    prefix = f"'{scenario}', " if scenario else ""
    return ", ".join(
        f"({prefix}date '2024-{month}-01', 'C{i + 1}', {amount}, 'row ''{i}''')"
        for i, amount in enumerate(amounts)
    )


FACTS = ", ".join(
    [_rows("01", "10.00", "20.00"), _rows("02", "11.00", "21.00"), _rows("03", "12.00", "22.00")]
)
SCENARIO = ", ".join(_rows(m, "1.00", "2.00", scenario="s1") for m in ("01", "02", "03"))


def _inodes(parquet: Path, table: str) -> dict[str, int]:
    return {
        str(file.relative_to(parquet / table)): file.stat().st_ino
        for file in sorted((parquet / table).rglob("*.parquet"))
    }


def _read_back(database: Path, table: str) -> tuple[tuple[int, str], tuple[int, str], str]:
    """The table's checksum in the release, and read back from its Parquet (with the type of ``period``)."""
    parquet = database.parent / PARQUET_DIR
    source = parquet_source(parquet, table)
    with duckdb.connect(str(database), read_only=True) as con:
        relation = f"read_parquet('{source}', hive_partitioning = true)"
        kinds = dict(
            con.execute(
                f"select column_name, column_type from (describe select * from {relation})"
            ).fetchall()
        )
        return table_checksum(con, f"marts.{table}"), table_checksum(con, relation), kinds["period"]


def _period_log(database: Path, run_id: str) -> dict[tuple[str, date], tuple[int, str]]:
    with duckdb.connect(str(database), read_only=True) as con:
        return {
            (t, p): (n, c)
            for t, p, n, c in con.execute(
                "select table_name, period, row_count, checksum from marts.publish_period_log where run_id = ?",
                [run_id],
            ).fetchall()
        }


def _checks(database: Path, warehouse: Path, run_id: str) -> None:
    """Every table of the release equals the warehouse's, read back from Parquet too; its period log equals
    the periods recomputed from the release; publish_log's checksum is the whole-table checksum."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        wanted = {t: table_checksum(con, f"marts.{t}") for t in TABLES}
    for table in TABLES:
        in_file, from_parquet, period = (
            _read_back(database, table) if table != "dim_customers" else (None,) * 3
        )
        if table == "dim_customers":
            continue
        assert in_file == from_parquet == wanted[table], table
        assert period == "DATE", table
    logged = _period_log(database, run_id)
    with duckdb.connect(str(database), read_only=True) as con:
        for table in ("facts", "scenario_facts", "empty_facts"):
            columns = [
                c for (c,) in con.execute(f"select column_name from (describe marts.{table})").fetchall()
            ]
            recomputed = period_sums(con, f"marts.{table}", columns)
            assert {p: v for (t, p), v in logged.items() if t == table} == {
                p: (n, f"{n}:{s:x}") for p, (n, s) in recomputed.items()
            }, table
        assert dict(
            con.execute(
                "select table_name, checksum from marts.publish_log where run_id = ?", [run_id]
            ).fetchall()
        ) == {t: table_checksum(con, f"marts.{t}")[1] for t in TABLES}


def _publish(warehouse: Path, published: Path, **options):
    return publish(
        DuckDBWarehouse(warehouse),
        published,
        primary_keys=KEYS,
        incremental={"facts"},
        docs={"facts": TableDoc("Facts by period.", {"amount": "An amount."})},
        currency="USD",
        **PERIODS,
        **options,
    )


def test_a_refresh_writes_only_the_periods_it_replaced_and_links_the_others(tmp_path: Path):
    warehouse = _warehouse(tmp_path / "warehouse.duckdb", FACTS, SCENARIO)
    published = tmp_path / "published"
    first = _publish(warehouse, published)
    parquet = first.parquet
    assert sorted(p.name for p in (parquet / "facts").iterdir()) == [
        "period=2024-01-01",
        "period=2024-02-01",
        "period=2024-03-01",
    ]
    assert (parquet / "dim_customers.parquet").is_file() and (
        parquet / "publish_period_log.parquet"
    ).is_file()
    assert [p.name for p in (parquet / "empty_facts").iterdir()] == ["empty_facts.parquet"]
    _checks(first.database, warehouse, first.run_id)
    with duckdb.connect(
        str(first.database), read_only=True
    ) as con:  # every file keeps its key-value metadata
        for file in (parquet / "facts").rglob("*.parquet"):
            kv = dict(
                con.execute(
                    "select key::varchar, value::varchar from parquet_kv_metadata(?)", [str(file)]
                ).fetchall()
            )
            assert kv["description"] == "Facts by period." and kv["currency"] == "USD", file
    before = {t: _inodes(parquet, t) for t in ("facts", "scenario_facts")}

    # March restated and April arrives (facts, refreshed from March); the scenario table is rebuilt whole and
    # only its January changes.
    _warehouse(
        warehouse,
        ", ".join(
            [
                _rows("01", "10.00", "20.00"),
                _rows("02", "11.00", "21.00"),
                _rows("03", "12.50", "22.00"),
                _rows("04", "13.00"),
            ]
        ),
        ", ".join(
            [
                _rows("01", "1.00", "9.00", scenario="s1"),
                *(_rows(m, "1.00", "2.00", scenario="s1") for m in ("02", "03")),
            ]
        ),
        customers="('C1', 'A renamed'), ('C2', 'B')",
    )
    refresh = _publish(warehouse, published, changed_from=MAR)
    assert refresh.patched and refresh.reason == ""
    # empty_facts has no period in the log to carry: written whole (nothing to write but its empty file).
    assert refresh.kept_periods == {"facts": {JAN, FEB}, "scenario_facts": {FEB, MAR}}
    after = {t: _inodes(refresh.parquet, t) for t in ("facts", "scenario_facts")}
    for table, kept in refresh.kept_periods.items():
        for name, inode in after[table].items():
            linked = any(name.startswith(f"period={p.isoformat()}") for p in kept)
            assert (before[table].get(name) == inode) == linked, (table, name)
    assert "period=2024-04-01/data_0.parquet" in after["facts"]
    _checks(refresh.database, warehouse, refresh.run_id)

    # Equal to a release written whole from the same warehouse, checksums and period log included.
    afresh = _publish(warehouse, tmp_path / "afresh")
    assert not afresh.patched
    assert refresh.checksums == afresh.checksums and refresh.period_sums == afresh.period_sums
    assert {k: v for k, v in _period_log(refresh.database, refresh.run_id).items()} == _period_log(
        afresh.database, afresh.run_id
    )
    # The release before keeps its files (a reader may hold it): hard links, not moved.
    assert all(Path(first.release, PARQUET_DIR, "facts", name).exists() for name in before["facts"])


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        # the period log's checksum of one period, so that it no longer sums to the table's in publish_log
        (
            "update marts.publish_period_log set checksum = '2:1' where table_name = 'facts' and period = '2024-01-01'",
            "period log of facts disagrees with its publish log",
        ),
        # a row of a period the refresh would carry, removed after the release was written
        (
            "delete from marts.facts where period = '2024-01-01' and customer_id = 'C2'",
            "period log of facts disagrees with its rows per period",
        ),
        # a release of the code before the period log
        ("drop table marts.publish_period_log", "no period log"),
    ],
)
def test_a_previous_release_whose_period_log_disagrees_is_not_patched_but_written_whole(
    tmp_path: Path, tamper: str, reason: str
):
    """Carrying a period's checksum trusts the previous release's period log. Before it does, the log must sum
    to publish_log's table checksums and match the tables' row counts per period (a cheap scan of the period
    column); if not, the refresh writes the release whole from the warehouse (the source of truth), which
    repairs it, rather than failing: nothing is lost by writing it whole, and the run still publishes."""
    warehouse = _warehouse(tmp_path / "warehouse.duckdb", FACTS, SCENARIO)
    published = tmp_path / "published"
    _publish(warehouse, published)
    with duckdb.connect(str(current_database(published))) as con:
        con.execute(tamper)
    refresh = _publish(warehouse, published, changed_from=MAR)
    assert not refresh.patched
    assert reason in refresh.reason
    _checks(refresh.database, warehouse, refresh.run_id)
    assert refresh.kept_periods == {}


def test_a_refresh_without_parquet_folders_in_the_previous_release_writes_those_tables_whole(tmp_path: Path):
    """A kept period whose folder the previous release lacks (removed by hand, or a copy that failed): the
    table's Parquet is written whole, its DuckDB table still patched."""
    warehouse = _warehouse(tmp_path / "warehouse.duckdb", FACTS, SCENARIO)
    published = tmp_path / "published"
    first = _publish(warehouse, published)
    for file in (first.parquet / "facts" / "period=2024-01-01").iterdir():
        file.unlink()
    (first.parquet / "facts" / "period=2024-01-01").rmdir()
    before = _inodes(first.parquet, "facts")
    refresh = _publish(warehouse, published, changed_from=MAR)
    assert refresh.patched
    after = _inodes(refresh.parquet, "facts")
    assert set(after) == {*before, "period=2024-01-01/data_0.parquet"}
    assert not set(before.items()) & set(after.items())  # written whole: nothing linked
    _checks(refresh.database, warehouse, refresh.run_id)


def test_the_sample_publication_is_partitioned_and_its_period_log_sums_to_publish_log(
    published_sample: Paths,
):
    """On the published sample: every table with a period column is a folder of period folders whose rows
    read back equal the DuckDB table; the period log of the last run sums to publish_log's table checksums
    and equals the periods recomputed from the release."""
    database = current_database(published_sample.published)
    parquet = published_sample.published / CURRENT / PARQUET_DIR
    with duckdb.connect(str(database), read_only=True) as con:
        (run_id,) = con.execute("select max_by(run_id, published_at) from marts.publish_log").fetchone()
        logged = dict(
            con.execute(
                "select table_name, checksum from marts.publish_log where run_id = ?", [run_id]
            ).fetchall()
        )
        periods: dict[str, dict] = {}
        for table, period, count, checksum in con.execute(
            "select table_name, period, row_count, checksum from marts.publish_period_log where run_id = ?",
            [run_id],
        ).fetchall():
            periods.setdefault(table, {})[period] = (count, checksum)
        with_periods = {
            t
            for (t,) in con.execute(
                "select table_name from duckdb_columns() where schema_name = 'marts' and column_name = 'period' "
                "and data_type = 'DATE' and table_name not in ('publish_log', 'publish_period_log')"
            ).fetchall()
        }
        assert with_periods and {t for t in with_periods if logged[t] != "0:0"} == set(periods)
        for table in sorted(with_periods):
            assert (parquet / table).is_dir() and not (parquet / f"{table}.parquet").exists(), table
            source = parquet_source(parquet, table)
            assert table_checksum(
                con, f"read_parquet('{source}', hive_partitioning = true)"
            ) == table_checksum(con, f"marts.{table}"), table
            columns = [
                c for (c,) in con.execute(f"select column_name from (describe marts.{table})").fetchall()
            ]
            recomputed = period_sums(con, f"marts.{table}", columns)
            assert periods.get(table, {}) == {p: (n, f"{n}:{s:x}") for p, (n, s) in recomputed.items()}, table
            count, total = sum(n for n, _ in recomputed.values()), sum(s for _, s in recomputed.values())
            assert logged[table] == f"{count}:{total:x}" == table_checksum(con, f"marts.{table}")[1], table
        for table in set(logged) - with_periods:
            assert (parquet / f"{table}.parquet").is_file(), table
    assert os.path.islink(published_sample.published / CURRENT)


def test_a_keyed_table_replacing_more_than_a_tenth_of_its_rows_is_written_whole(tmp_path: Path):
    """Deleting rows under an enforced key costs DuckDB several times what writing them does: a refresh that
    would replace more than a tenth of a keyed table's rows (and more than ``indexed_patch_rows``) writes that
    table whole instead, equal to the patch it replaces; a table under the share is still patched."""
    many = ", ".join(f"(date '2024-0{m}-01', 'C{i}', {i}.00, 'n')" for m in (1, 2, 3) for i in range(20))
    customers = ", ".join(f"('C{i}', 'name')" for i in range(100))
    warehouse = _warehouse(tmp_path / "warehouse.duckdb", many, SCENARIO, customers)
    published = tmp_path / "published"
    _publish(warehouse, published, indexed_patch_rows=1)
    # facts: replaced from March on, its 20 rows of 60 (a third); scenario_facts: one row changes, in January
    # (its 2 rows of 6)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "update marts.facts set amount = amount + 1 where period = date '2024-03-01' and customer_id = 'C1'"
        )
        con.execute("insert into marts.facts values (date '2024-04-01', 'C1', 1.00, 'n')")
        con.execute(
            "update marts.scenario_facts set amount = 9.00 where period = date '2024-01-01' and customer_id = 'C2'"
        )
    refresh = _publish(warehouse, published, changed_from=MAR, indexed_patch_rows=1)
    assert refresh.patched and refresh.kept_periods == {}
    _checks(refresh.database, warehouse, refresh.run_id)
    afresh = _publish(warehouse, tmp_path / "afresh")
    assert refresh.checksums == afresh.checksums and refresh.period_sums == afresh.period_sums

    # a year of 100 rows a month refreshed from December: 100 of 1,200 rows replaced, under a tenth: patched
    larger = ", ".join(
        f"(date '2024-{m:02d}-01', 'C{i}', {i}.00, 'n')" for m in range(1, 13) for i in range(100)
    )
    _warehouse(warehouse, larger, SCENARIO, customers)
    again = tmp_path / "again"
    year = {"first_period": JAN, "last_period": date(2024, 12, 1)}
    publish(DuckDBWarehouse(warehouse), again, primary_keys=KEYS, incremental={"facts"}, **year)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "update marts.facts set amount = amount + 1 where period = date '2024-12-01' and customer_id = 'C1'"
        )
    patched = publish(
        DuckDBWarehouse(warehouse),
        again,
        primary_keys=KEYS,
        incremental={"facts"},
        changed_from=date(2024, 12, 1),
        indexed_patch_rows=1,
        **year,
    )
    assert patched.kept_periods["facts"] == {date(2024, m, 1) for m in range(1, 12)}
