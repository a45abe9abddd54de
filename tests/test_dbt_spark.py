"""The dbt project on Apache Spark (issue 16, portable models).

A published sample's raw tables, and the marts its Python assets wrote that dbt models read (the sources
python_marts: customer_clv, satisfaction_drivers), exported from its DuckDB warehouse to Parquet and registered in
Spark's metastore with the same types, are built with `dbt build --target spark` (dbt-spark `method: session`, so Spark
runs in this process: one session for the whole test, as the Derby metastore admits one Spark process). Every
intermediate and mart model must then equal the table DuckDB built, row for row: same columns in the same order,
same types, same values (DECIMALs compared exactly). Then a one-month refresh on Spark (insert_overwrite of the
period partitions, with planted rows it must replace or empty), with the dbt unit tests this time (they read
the column types of their inputs from the built tables), and the same comparison again.
"""

from __future__ import annotations

import shutil
import time
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipelines.engines.sql import ident, literal, qualified
from pipelines.lib.config import Paths
from tests.test_dbt_macros import ROUNDED_MEANS, ROUNDED_MEANS_SQL

pytestmark = pytest.mark.spark

pytest.importorskip("pyspark", reason="the spark extra is not installed (make install-spark)")
pytest.importorskip("dbt.adapters.spark", reason="the spark extra is not installed (make install-spark)")
if shutil.which("java") is None:
    pytest.skip("Spark needs Java 17 (make install-spark)", allow_module_level=True)

from dbt.cli.main import dbtRunner
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

DBT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
COMPARED_SCHEMAS = ("intermediate", "marts")
# What a run rebuilt of the scenario models and the signatures it built them with (docs/DESIGN.md, Scenarios):
# the state of that run on that engine, not data; the scenario tables they govern are compared.
RUN_STATE = {"int_scenario_periods", "int_scenario_built"}
# Written by Python assets (dbt sources python_marts), read by dbt models: loaded into Spark as they are.
PYTHON_MARTS = ("customer_clv", "satisfaction_drivers")
READ_FROM_PYTHON_MARTS = ("customer_satisfaction", "customer_scorecard", "incentive_attainment")
REFRESHED = "2024-02-01"  # the middle month of the sample (2024-01..2024-03)


def _spark_type(duckdb_type: str) -> str:
    """The Spark type (DataFrame.dtypes spelling) a DuckDB column type must have on Spark."""
    simple = {
        "VARCHAR": "string",
        "INTEGER": "int",
        "BIGINT": "bigint",
        "DOUBLE": "double",
        "BOOLEAN": "boolean",
        "DATE": "date",
        "TIMESTAMP": "timestamp_ntz",
    }
    if duckdb_type.startswith("DECIMAL"):
        return duckdb_type.lower().replace(" ", "")
    return simple[duckdb_type]


def _duckdb_columns(con, schema: str, table: str) -> list[tuple[str, str]]:
    return con.execute(
        "select column_name, data_type from duckdb_columns() where schema_name = ? and table_name = ?"
        " order by column_index",
        [schema, table],
    ).fetchall()


def _sorted_frame(rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    def key(row):
        return tuple((value is None, value if value is not None else 0) for value in row)

    return pd.DataFrame(sorted(rows, key=key), columns=columns)


class _Dbt:
    """dbt invoked in this process on the spark target, with its own target and log folders."""

    def __init__(self, work: Path, monkeypatch):
        monkeypatch.setenv("DBT_TARGET_PATH", str(work / "dbt_target"))
        monkeypatch.setenv("DBT_LOG_PATH", str(work / "dbt_logs"))

    def __call__(self, *args: str):
        started = time.perf_counter()
        result = dbtRunner().invoke(
            [*args, "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR), "--target", "spark"]
        )
        elapsed = time.perf_counter() - started
        failed = [
            f"{r.node.name}: {r.status} {r.message}"
            for r in (getattr(result.result, "results", None) or [])
            if str(r.status) in ("error", "fail")
        ]
        assert result.success, f"dbt {' '.join(args)} failed: {failed or result.exception}"
        return result, elapsed


def _compare(spark: SparkSession, duck, models: list[str], schema_of: dict[str, str]) -> dict[str, int]:
    """Every model equal on both engines; returns the row count of each."""
    counts, problems = {}, []
    for name in models:
        schema = schema_of[name]
        duck_columns = _duckdb_columns(duck, schema, name)
        assert duck_columns, f"{schema}.{name} is missing from DuckDB's warehouse"
        names = [column for column, _ in duck_columns]
        frame = spark.table(f"{schema}.{name}")
        # A Spark table stores its partition column (period) last; the declared order is the one read.
        assert sorted(frame.columns) == sorted(names), f"{schema}.{name}: columns {frame.columns} vs {names}"
        frame = frame.select(*names)
        spark_types = dict(frame.dtypes)
        wrong_types = [(c, t, spark_types[c]) for c, t in duck_columns if _spark_type(t) != spark_types[c]]
        if wrong_types:
            problems.append(f"{schema}.{name}: types differ (column, DuckDB, Spark): {wrong_types}")
            continue
        select_list = ", ".join(ident(column) for column in names)
        duck_rows = duck.execute(f"select {select_list} from {qualified(schema, name)}").fetchall()
        spark_rows = [tuple(row) for row in frame.collect()]
        expected, actual = _sorted_frame(duck_rows, names), _sorted_frame(spark_rows, names)
        try:
            pd.testing.assert_frame_equal(actual, expected, check_dtype=False, check_exact=True)
        except AssertionError as error:
            problems.append(
                f"{schema}.{name} ({len(spark_rows)} rows on Spark, {len(duck_rows)} on DuckDB): {error}"
            )
        counts[name] = len(duck_rows)
    assert not problems, "Spark and DuckDB differ:\n" + "\n".join(problems)
    return counts


def test_dbt_build_on_spark_equals_duckdb_and_refreshes_a_month(
    published_sample: Paths, tmp_path: Path, monkeypatch
):
    test_started = time.perf_counter()
    spark_data = tmp_path / "data"
    (spark_data / "spark").mkdir(parents=True)
    monkeypatch.setenv("CPROF_DATA_DIR", str(spark_data))
    monkeypatch.delenv("CPROF_PERIOD_FROM", raising=False)
    monkeypatch.delenv("CPROF_PERIOD_TO", raising=False)
    dbt = _Dbt(tmp_path, monkeypatch)

    # The sample's raw tables and Python marts as Parquet files, with their DuckDB types.
    duck = duckdb.connect(str(published_sample.warehouse), read_only=True)
    raw_tables = [
        t
        for (t,) in duck.execute(  # views of the store (pipelines/engines/duckdb_ingest.py)
            "select table_name from information_schema.tables where table_schema = 'raw' order by table_name"
        ).fetchall()
    ]
    assert len(raw_tables) >= 12
    loaded = [("raw", table) for table in raw_tables] + [("marts", table) for table in PYTHON_MARTS]
    exported = tmp_path / "parquet"
    for schema, table in loaded:
        (exported / schema / table).mkdir(parents=True)
        target = literal(str(exported / schema / table / "data.parquet"))
        duck.execute(f"copy (select * from {qualified(schema, table)}) to {target} (format parquet)")

    # The first dbt command starts Spark in this process (the profile's settings); the test shares it.
    _, session_start = dbt("debug")
    spark = SparkSession.builder.getOrCreate()
    assert spark.conf.get("spark.sql.storeAssignmentPolicy") == "ANSI"  # the profile's settings apply
    for schema, table in loaded:
        spark.sql(f"create database if not exists {schema}")
        spark.catalog.createTable(f"{schema}.{table}", path=str(exported / schema / table), source="parquet")
        expected = [(c, _spark_type(t)) for c, t in _duckdb_columns(duck, schema, table)]
        assert spark.table(f"{schema}.{table}").dtypes == expected, (
            table,
            spark.table(f"{schema}.{table}").dtypes,
        )

    # Every model, data test and conservation test on Spark.
    build, build_seconds = dbt("build", "--exclude-resource-type", "unit_test")
    nodes = [r.node for r in build.result.results]
    models = sorted(
        n.name
        for n in nodes
        if n.resource_type == "model" and n.schema in COMPARED_SCHEMAS and n.name not in RUN_STATE
    )
    schema_of = {n.name: n.schema for n in nodes if n.resource_type == "model"}
    tests = [n for n in nodes if n.resource_type == "test"]
    assert len(models) >= 21 and len(tests) >= 80, (len(models), len(tests))
    assert set(READ_FROM_PYTHON_MARTS) <= set(models)
    assert any(n.name.startswith("assert_cost_centers_conserve") for n in tests)
    # The declared column order (each contract's yml) is DuckDB's physical order.
    for node in nodes:
        if node.resource_type == "model" and node.schema in COMPARED_SCHEMAS and node.columns:
            declared = list(node.columns)
            assert declared == [c for c, _ in _duckdb_columns(duck, node.schema, node.name)], node.name
    first = _compare(spark, duck, models, schema_of)
    assert first["customer_profitability"] > 0 and first["customer_cost_to_serve"] > 0
    assert all(first[name] > 0 for name in READ_FROM_PYTHON_MARTS), first

    # One month refreshed as the pipeline does it (partitions.py: first and last day of the range's months).
    # Planted rows: one inside the refreshed partition (insert_overwrite must replace it) and one in a period
    # of the window that the rebuild leaves without rows (empty_stale_periods must drop the partition).
    refreshed = date.fromisoformat(REFRESHED)
    planted = spark.table("marts.activity_costs").where(F.col("period") == F.lit(refreshed)).limit(1)
    planted.withColumn("activity", F.lit("planted")).write.insertInto("marts.activity_costs")
    # The scorecard reaches every month after the refreshed one: a planted row of the last month goes too.
    last_month = (
        spark.table("marts.customer_scorecard").where(F.col("period") == F.lit(date(2024, 3, 1))).limit(1)
    )
    last_month.withColumn("metric", F.lit("planted")).write.insertInto("marts.customer_scorecard")
    stale = spark.table("marts.customer_retention").limit(1).withColumn("period", F.lit(date(2030, 1, 1)))
    stale.write.insertInto("marts.customer_retention")
    assert (
        spark.table("marts.customer_retention").where(F.col("period") == F.lit(date(2030, 1, 1))).count() == 1
    )

    monkeypatch.setenv("CPROF_PERIOD_FROM", REFRESHED)
    monkeypatch.setenv("CPROF_PERIOD_TO", REFRESHED)
    refresh, refresh_seconds = dbt("build")
    unit_tests = [r for r in refresh.result.results if r.node.resource_type == "unit_test"]
    assert len(unit_tests) >= 9 and all(str(r.status) == "pass" for r in unit_tests)
    assert spark.table("marts.activity_costs").where(F.col("activity") == "planted").count() == 0
    assert spark.table("marts.customer_scorecard").where(F.col("metric") == "planted").count() == 0
    partitions = [row[0] for row in spark.sql("show partitions marts.customer_retention").collect()]
    assert "period=2030-01-01" not in partitions, partitions
    second = _compare(spark, duck, models, schema_of)
    assert second == first

    # The cross-database means give on Spark the numbers tests/test_dbt_macros.py expects of DuckDB.
    shown, _ = dbt("show", "--inline", ROUNDED_MEANS_SQL)
    (table,) = [r.agate_table for r in shown.result.results]
    assert [
        dict(zip(table.column_names, (None if v is None else float(v) for v in row))) for row in table.rows
    ] == [ROUNDED_MEANS]

    print(
        f"\nSpark: session start (dbt debug) {session_start:.1f} s, dbt build {build_seconds:.1f} s,"
        f" one-month refresh with unit tests {refresh_seconds:.1f} s, test {time.perf_counter() - test_started:.1f} s;"
        f" {len(models)} models equal to DuckDB's ({sum(first.values())} rows), {len(tests)} data tests and"
        f" {len(unit_tests)} unit tests passed"
    )
