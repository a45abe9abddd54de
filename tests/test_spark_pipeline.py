"""The pipeline on Apache Spark (issue 16): ``cprof run --engine spark`` publishes what the DuckDB engine publishes.

The small sample's landing zone is run through the whole pipeline on Spark (``cprof run --engine spark`` in a
subprocess: one Spark for the run, dbt building in it through its Thrift server), and every table of the
publication (the DuckDB file BI tools read) is compared with the DuckDB engine's publication of the same landing
(``published_sample``), row for row: same columns in the same order, same types, DECIMALs exact. Tables whose
content is equal must carry equal checksums in ``marts.publish_log``. Then one month is refreshed on Spark and
the comparison made again.

Then the Spark warehouse itself, in this process, against the DuckDB one: the same frames written with
``replace_periods`` (whole, then a window with a period left empty, then a write that fails half way) read back
equal, and published with equal checksums.

Spark tests run in their own pytest process (one JVM per process; Derby admits one Spark per metastore):
``make test-spark`` runs this module on its own.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipelines.engines.base import Column, CopyRows, Filter, PeriodWindow
from pipelines.engines.duckdb_warehouse import DuckDBWarehouse
from pipelines.engines.sql import ident, qualified
from pipelines.lib.config import Paths
from pipelines.lib.settings import Settings
from pipelines.publication.publish import current_database, publish

pytestmark = pytest.mark.spark

pytest.importorskip("pyspark", reason="the spark extra is not installed (make install-spark)")
pytest.importorskip("dbt.adapters.spark", reason="the spark extra is not installed (make install-spark)")
pytest.importorskip("pyhive", reason="the spark extra is not installed (make install-spark)")
if shutil.which("java") is None:
    pytest.skip("Spark needs Java 17 (make install-spark)", allow_module_level=True)

from pipelines.engines.spark_warehouse import SparkRuntime

RELATIVE_TOLERANCE = 1e-9  # doubles that differ in the last bits (Spark and DuckDB sum in different orders)


def _cprof(data_dir: Path, *args: str, fail_at: str | None = None) -> tuple[str, float]:
    """``cprof`` on Spark; with ``fail_at`` (the test's hook CPROF_FAIL_AT), a run expected to fail."""
    cprof = Path(sys.executable).parent / "cprof"
    env = {**os.environ, "CPROF_ENGINE": "spark", "CPROF_DATA_DIR": str(data_dir)}
    if fail_at:
        env["CPROF_FAIL_AT"] = fail_at
    started = time.perf_counter()
    done = subprocess.run(
        [str(cprof), "--data-dir", str(data_dir), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    seconds = time.perf_counter() - started
    assert (done.returncode != 0) == bool(fail_at), (
        f"cprof {' '.join(args)} exited {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    )
    return done.stdout + done.stderr, seconds


def _columns(con, table: str) -> list[tuple[str, str]]:
    return con.execute(
        "select column_name, data_type from information_schema.columns where table_schema = 'marts' "
        "and table_name = ? order by ordinal_position",
        [table],
    ).fetchall()


def _tables(con) -> set[str]:
    rows = con.execute(
        "select table_name from information_schema.tables where table_schema = 'marts'"
    ).fetchall()
    return {name for (name,) in rows}


def _last_checksums(con) -> dict[str, str]:
    rows = con.execute(
        "select table_name, checksum from marts.publish_log "
        "where published_at = (select max(published_at) from marts.publish_log)"
    ).fetchall()
    return dict(rows)


def _rows(con, table: str, columns: list[str]) -> list[tuple]:
    select = ", ".join(ident(c) for c in columns)
    return con.execute(f"select {select} from {qualified('marts', table)} order by all").fetchall()


def _near(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-12)
    return a == b


def compare_publications(spark_db: Path, duck_db: Path) -> dict[str, object]:
    """Every table of the Spark publication equals the DuckDB one; returns what was compared."""
    with (
        duckdb.connect(str(spark_db), read_only=True) as spark,
        duckdb.connect(str(duck_db), read_only=True) as duck,
    ):
        logs = {"publish_log", "publish_period_log"}
        spark_tables, duck_tables = _tables(spark) - logs, _tables(duck) - logs
        assert spark_tables == duck_tables, (
            f"only on Spark: {spark_tables - duck_tables}, missing: {duck_tables - spark_tables}"
        )
        problems, exact, close = [], [], []
        for table in sorted(spark_tables):
            columns = _columns(duck, table)
            if _columns(spark, table) != columns:
                problems.append(f"{table}: columns {_columns(spark, table)} on Spark, {columns} on DuckDB")
                continue
            names = [name for name, _ in columns]
            left, right = _rows(spark, table, names), _rows(duck, table, names)
            if left == right:
                exact.append(table)
            elif len(left) == len(right) and all(
                all(_near(a, b) for a, b in zip(x, y, strict=True)) for x, y in zip(left, right, strict=True)
            ):
                close.append(table)
            else:
                problems.append(
                    f"{table}: {len(left)} rows on Spark, {len(right)} on DuckDB, contents differ"
                )
        assert not problems, "Spark's publication differs from DuckDB's:\n" + "\n".join(problems)
        spark_sums, duck_sums = _last_checksums(spark), _last_checksums(duck)
        assert set(spark_sums) == spark_tables
        unequal = [t for t in exact if spark_sums[t] != duck_sums[t]]
        assert not unequal, f"equal content, different checksums: {unequal}"
        rows = sum(
            spark.execute(f"select count(*) from {qualified('marts', t)}").fetchone()[0] for t in exact
        )
    return {"exact": exact, "close": close, "rows": rows}


@pytest.fixture(scope="module")
def spark_run(small_landing: Path, tmp_path_factory) -> tuple[Paths, str, float]:
    """The small sample's landing run on Spark (``cprof run --engine spark``): its paths, output and seconds. The
    tests after the first work on from where the one before left it."""
    paths = Paths(tmp_path_factory.mktemp("spark_run") / "data")
    shutil.copytree(small_landing, paths.landing)
    output, run_seconds = _cprof(paths.data_dir, "run", "--engine", "spark", "--progress", "steps")
    return paths, output, run_seconds


def test_cprof_run_on_spark_publishes_what_duckdb_publishes(
    published_sample: Paths, spark_run: tuple[Paths, str, float]
):
    paths, output, run_seconds = spark_run
    assert "engine spark" in output
    first = compare_publications(
        current_database(paths.published), current_database(published_sample.published)
    )
    assert "customer_profitability" in first["exact"] and "customer_clv" in set(first["exact"]) | set(
        first["close"]
    )
    assert (paths.data_dir / "spark" / "metastore_db").is_dir()

    # One month refreshed on Spark: the publication is patched from that month on, and still equals DuckDB's.
    output, refresh_seconds = _cprof(paths.data_dir, "run", "--from", "2024-02", "--to", "2024-02")
    assert "engine spark" in output  # CPROF_ENGINE alone picks the engine
    second = compare_publications(
        current_database(paths.published), current_database(published_sample.published)
    )
    assert second["exact"] == first["exact"]
    with duckdb.connect(str(current_database(paths.published)), read_only=True) as con:
        runs = con.execute("select count(distinct run_id) from marts.publish_log").fetchone()[0]
    assert runs == 2
    print(
        f"\nSpark pipeline: cprof run {run_seconds:.1f} s, one-month refresh {refresh_seconds:.1f} s; "
        f"{len(first['exact'])} tables equal ({first['rows']} rows), within {RELATIVE_TOLERANCE:g}: "
        f"{first['close'] or 'none'}"
    )


# Rows planted in a partition the next rebuild of whale_curve leaves empty (2024-04: no order lines), as a
# correction that empties a period of a model leaves them before its emptied partitions are dropped.
PLANT_STALE_PERIOD = """
import sys
from datetime import date
from pathlib import Path

from pyspark.sql import functions as F

from pipelines.engines.spark_warehouse import SparkRuntime
from pipelines.lib.settings import Settings

runtime = SparkRuntime(Settings(data_dir=Path(sys.argv[1]), engine="spark"))
try:
    with runtime.session() as wh:
        table = wh.spark.table("marts.whale_curve")
        rows = table.where(F.col("period") == F.lit(date(2024, 3, 1)))
        rows.withColumn("period", F.lit(date(2024, 4, 1))).write.insertInto("marts.whale_curve")
        print(wh.spark.table("marts.whale_curve").where(F.col("period") == F.lit(date(2024, 4, 1))).count())
finally:
    runtime.close()
"""


def _stale_partition(paths: Paths) -> list[Path]:
    """whale_curve's 2024-04 partition folder in the Spark warehouse, if there is one (a dropped partition's
    folder is deleted: the tables are managed)."""
    return list((paths.data_dir / "spark" / "warehouse").rglob("whale_curve/period=2024-04-01"))


def test_a_run_dying_between_the_partition_overwrite_and_the_drop_publishes_nothing_stale_and_the_next_run_drops_it(
    published_sample: Paths, spark_run: tuple[Paths, str, float]
):
    """Issue 32: on Spark a model keyed by period is refreshed in two statements, a dynamic partition overwrite
    then the drop of the window's partitions the rebuilt rows left empty (empty_stale_periods). A run that fails
    between them (the hook CPROF_FAIL_AT, where a killed process would stop) publishes nothing; its months stay
    awaiting publication, so the next run, of another month, rebuilds them and drops the stale partition before
    anything reads it: the publication never holds the stale rows and equals DuckDB's."""
    paths = spark_run[0]
    published_before = current_database(paths.published).resolve()
    planted = subprocess.run(
        [sys.executable, "-c", PLANT_STALE_PERIOD, str(paths.data_dir)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert planted.returncode == 0, planted.stderr[-4000:]
    assert int(planted.stdout.split()[-1]) > 0 and _stale_partition(paths)

    # 2024-03 refreshed: whale_curve's window (reach 11) is 2024-03..2025-02; its rebuilt rows fill 2024-03 and
    # leave 2024-04 empty. The run fails after the overwrite, before the drop.
    output, _ = _cprof(
        paths.data_dir,
        "run",
        "--from",
        "2024-03",
        "--to",
        "2024-03",
        fail_at="empty_stale_periods:whale_curve",
    )
    logs = "".join(log.read_text(errors="replace") for log in paths.logs.rglob("*.log"))
    assert "whale_curve" in output and "CPROF_FAIL_AT=empty_stale_periods:whale_curve" in output + logs
    assert _stale_partition(paths), "the failed run dropped the stale partition: the hook failed too late"
    assert current_database(paths.published).resolve() == published_before  # nothing published
    with duckdb.connect(str(published_before), read_only=True) as con:
        assert con.execute(
            "select count(*) from marts.whale_curve where period > date '2024-03-01'"
        ).fetchone() == (0,)
    awaiting = SparkRuntime(Settings(data_dir=paths.data_dir, engine="spark")).months_awaiting_publication()
    assert awaiting is not None and "2024-03" in awaiting, awaiting

    # The next run, of another month, adds the months awaiting publication: the stale partition is dropped.
    output, seconds = _cprof(paths.data_dir, "run", "--from", "2024-02", "--to", "2024-02")
    assert "also refreshing 2024-03" in output, output[-4000:]
    assert not _stale_partition(paths)
    published = current_database(paths.published)
    assert published.resolve() != published_before
    with duckdb.connect(str(published), read_only=True) as con:
        assert con.execute(
            "select count(*) from marts.whale_curve where period > date '2024-03-01'"
        ).fetchone() == (0,)
    compared = compare_publications(published, current_database(published_sample.published))
    assert "whale_curve" in compared["exact"]
    print(f"\nthe repairing run (2024-02, with 2024-03 awaiting publication): {seconds:.1f} s")


COLUMNS = [
    Column("period", "date", nullable=False),
    Column("customer_id", "varchar", nullable=False),
    Column("amount", "decimal(18, 2)", nullable=False),
    Column("share", "double"),
    Column("orders", "integer"),
    Column("active", "boolean"),
]


def _month(period: date, customers: int, offset: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "period": [period] * customers,
            "customer_id": [f"C{i:03d}" for i in range(customers)],
            "amount": [Decimal(i * 1234 + offset) / 100 for i in range(customers)],
            "share": [i / 7 + offset for i in range(customers)],
            "orders": [None if i % 5 == 0 else i + offset for i in range(customers)],
            "active": [i % 2 == 0 for i in range(customers)],
        }
    )


JAN, FEB, MAR = date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)


def test_spark_warehouse_writes_reads_and_publishes_like_duckdb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    runtime = SparkRuntime(Settings(data_dir=tmp_path / "spark_data", engine="spark"))
    duck = DuckDBWarehouse(tmp_path / "warehouse.duckdb")
    table = "marts.sample_mart"
    try:
        with runtime.session() as spark:
            both = (spark, duck)
            # A whole build, then a window (Feb..Mar) whose new rows fill Feb only: Mar must end up empty.
            for wh in both:
                frames = (_month(p, n) for p, n in ((JAN, 40), (FEB, 30), (MAR, 20)))
                assert wh.replace_periods(table, COLUMNS, frames, PeriodWindow()) == 90
                assert (
                    wh.replace_periods(table, COLUMNS, iter([_month(FEB, 25, 1)]), PeriodWindow(FEB, MAR))
                    == 25
                )
            assert spark.count_by(table, "period") == duck.count_by(table, "period") == {JAN: 40, FEB: 25}
            assert spark.columns(table) == duck.columns(table) == [c.name for c in COLUMNS]
            assert spark.spark.table(table).columns[-1] == "period"  # Spark's own order: partition last

            # Rows the engine copies (CopyRows): C001's rows of both months again as C999; a copy of rows no frame
            # staged copies nothing.
            copied = "marts.copied_mart"
            for wh in both:
                frames = iter(
                    [
                        CopyRows("customer_id", "C001", "C998"),
                        _month(JAN, 3),
                        _month(FEB, 2),
                        CopyRows("customer_id", "C001", "C999"),
                        CopyRows("customer_id", "nobody", "C997"),
                    ]
                )
                assert wh.replace_periods(copied, COLUMNS, frames, PeriodWindow()) == 7
            order = ["period", "customer_id"]
            pd.testing.assert_frame_equal(
                spark.read(copied, order_by=order), duck.read(copied, order_by=order)
            )
            assert duck.count_by(copied, "customer_id") == {"C000": 2, "C001": 2, "C002": 1, "C999": 2}
            # A copy by a column the table does not have is an error on both engines, even before any frame, and
            # writes nothing.
            for wh in both:
                with pytest.raises(ValueError, match="'customer'"):
                    wh.replace_periods(
                        copied, COLUMNS, iter([CopyRows("customer", "C001", "C996")]), PeriodWindow()
                    )
                assert wh.count_by(copied, "customer_id") == {"C000": 2, "C001": 2, "C002": 1, "C999": 2}

            # A write that fails half way (a NULL in a NOT NULL column, in the second frame) changes nothing.
            broken = _month(MAR, 3)
            broken.loc[1, "customer_id"] = None
            for wh in both:
                with pytest.raises(Exception, match="(?i)not.null|null"):
                    wh.replace_periods(table, COLUMNS, iter([_month(FEB, 5), broken]), PeriodWindow(FEB, MAR))
                assert wh.count_by(table, "period") == {JAN: 40, FEB: 25}

            # A process dying between the partition overwrite and the drop of the periods the new rows leave empty
            # (the hook fails there): Mar keeps its old rows until the next write of the window, which the next
            # run makes (it rebuilds the months awaiting publication), drops it. DuckDB's one transaction has no
            # such point. Feb's and Mar's rows are then as before.
            for wh in both:
                assert (
                    wh.replace_periods(table, COLUMNS, iter([_month(MAR, 20)]), PeriodWindow(MAR, MAR)) == 20
                )
            monkeypatch.setenv("CPROF_FAIL_AT", f"drop_stale_periods:{table}")
            with pytest.raises(RuntimeError, match="CPROF_FAIL_AT"):
                spark.replace_periods(table, COLUMNS, iter([_month(FEB, 25, 1)]), PeriodWindow(FEB, MAR))
            assert spark.count_by(table, "period") == {JAN: 40, FEB: 25, MAR: 20}  # the stale period
            assert (
                duck.replace_periods(table, COLUMNS, iter([_month(FEB, 25, 1)]), PeriodWindow(FEB, MAR)) == 25
            )
            monkeypatch.delenv("CPROF_FAIL_AT")
            assert (
                spark.replace_periods(table, COLUMNS, iter([_month(FEB, 25, 1)]), PeriodWindow(FEB, MAR))
                == 25
            )
            assert spark.count_by(table, "period") == duck.count_by(table, "period") == {JAN: 40, FEB: 25}

            # Reads: bound filters, order, the DuckDB engine's pandas types.
            where = [Filter("period", "=", FEB), Filter("customer_id", "in", ["C001", "C004", "C009"])]
            got = spark.read(table, where=where, order_by=["customer_id"])
            pd.testing.assert_frame_equal(got, duck.read(table, where=where, order_by=["customer_id"]))
            assert list(got["customer_id"]) == ["C001", "C004", "C009"]
            for where in ([Filter("amount", ">", Decimal("100.5"))], [Filter("customer_id", "in", [])], []):
                assert spark.count(table, where) == duck.count(table, where)
                assert spark.distinct(table, "period", where) == duck.distinct(table, "period", where)
            assert spark.exists(table) and not spark.exists("marts.nothing_here")
            assert spark.columns("marts.nothing_here") == []

            # The publication: same tables, types, rows and checksums.
            spark_pub = publish(spark, tmp_path / "published_spark", first_period=JAN, last_period=MAR)
            duck_pub = publish(duck, tmp_path / "published_duck", first_period=JAN, last_period=MAR)
            assert spark_pub.checksums == duck_pub.checksums
            with (
                duckdb.connect(str(spark_pub.database), read_only=True) as a,
                duckdb.connect(str(duck_pub.database), read_only=True) as b,
            ):
                assert _columns(a, "sample_mart") == _columns(b, "sample_mart")
                assert ("amount", "DECIMAL(18,2)") in _columns(a, "sample_mart")
                names = [c.name for c in COLUMNS]
                assert _rows(a, "sample_mart", names) == _rows(b, "sample_mart", names)
            assert not list((runtime.home / "scratch").iterdir())  # staging and publication files removed

        # dbt reaches this Spark through the Thrift server started in it.
        environment = runtime.dbt_environment()
        port = int(environment["CPROF_SPARK_THRIFT_PORT"])
        from pyhive import hive

        con = hive.connect(host=environment["CPROF_SPARK_THRIFT_HOST"], port=port, username="cprof")
        try:
            cursor = con.cursor()
            cursor.execute(f"select count(*) from {table}")
            assert cursor.fetchall() == [(65,)]
        finally:
            con.close()
        print(
            f"\nSpark start {runtime.seconds['spark_start']:.1f} s, Thrift start {runtime.seconds['thrift_start']:.1f} s"
        )
    finally:
        duck.close()
        runtime.close()
