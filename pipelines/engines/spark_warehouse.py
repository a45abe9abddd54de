"""The Spark engine: the working warehouse is a Spark metastore of Parquet tables partitioned by ``period``.

:class:`SparkRuntime` is the engine for a run: ONE Spark session for the run's process, started on the first
:meth:`SparkRuntime.session` (or when dbt asks where Spark listens) and stopped at :meth:`SparkRuntime.close`,
which the Dagster resource calls when the run ends. dbt builds its models in that same Spark: the runtime starts
a Hive Thrift server inside the session (``HiveThriftServer2.startWithContext``, carried by the pyspark wheel) on
a free local port, and dbt's ``spark_thrift`` target (dbt_project/profiles.yml, dbt-spark ``method: thrift``)
connects to it. A second Spark process could not share the metastore anyway: Derby admits one.

Locally (the default) Spark runs in this process (``local[2]``) with Hive support, its Derby metastore and its
warehouse directory under ``<data>/spark/``, session time zone UTC, two shuffle partitions, no UI, and the
driver memory of ``$CPROF_SPARK_DRIVER_MEMORY`` (default 2g). On a cluster, ``$CPROF_SPARK_MASTER`` (a master
URL) makes the session join that master with the cluster's own metastore (its hive-site.xml), and
``$CPROF_SPARK_THRIFT`` (``host:port``) points dbt at an existing Thrift endpoint instead of starting one; that
path is not exercised on the build machine.

:class:`SparkWarehouse` is a session: reads through the DataFrame API (filters are Column expressions with
literal values, never SQL text), the period replacement as a dynamic partition overwrite, and the publication
as Parquet files DuckDB reads. Landing files are loaded by ``pipelines/engines/spark_ingest.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

from pipelines.engines.base import (
    Column,
    CopyRows,
    Filter,
    LoadResult,
    PeriodWindow,
    Released,
    SnapshotRelease,
    Warehouse,
)
from pipelines.engines.sql import ident, literal, spark_qualified
from pipelines.engines.whole_months import WholeMonths
from pipelines.landing.inventory import FileStamp
from pipelines.lib.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


# What dbt's spark_thrift target reads (dbt_project/profiles.yml): where the Thrift server listens.
THRIFT_HOST_ENV = "CPROF_SPARK_THRIFT_HOST"
THRIFT_PORT_ENV = "CPROF_SPARK_THRIFT_PORT"
LOCAL_MASTER = "local[2]"
SPARK_DIR = "spark"
COLUMN_ORDER_PROPERTY = (
    "cprof.columns"  # a table's declared column order (Spark stores the partition column last)
)
DBT_PROJECT_MANIFEST = Path(__file__).resolve().parents[2] / "dbt_project" / "target" / "manifest.json"
THRIFT_START_TIMEOUT = 120.0
# A test's hook: `drop_stale_periods:<schema>.<table>` fails replace_periods after the partition overwrite and
# before the emptied periods are dropped, as a process dying there would leave the table (tests/test_spark_pipeline.py).
FAIL_ENV = "CPROF_FAIL_AT"

_PORTABLE_TYPES = {
    "date": "date",
    "varchar": "string",
    "integer": "int",
    "double": "double",
    "boolean": "boolean",
}
_DECIMAL = re.compile(r"decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def spark_type(portable: str) -> str:
    """The Spark type of a portable column type (:class:`pipelines.engines.base.Column`)."""
    found = _DECIMAL.fullmatch(portable.strip().lower())
    if found:
        return f"decimal({found[1]},{found[2]})"
    try:
        return _PORTABLE_TYPES[portable.strip().lower()]
    except KeyError:
        raise ValueError(f"no Spark type for the column type {portable!r}") from None


def _fail_at(point: str) -> None:
    """Raise when the test's hook ``CPROF_FAIL_AT`` names ``point`` (read when reached, never at import)."""
    if os.environ.get(FAIL_ENV) == point:
        raise RuntimeError(f"{FAIL_ENV}={point}: failing here (a test's hook)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _listening(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex((host, port)) == 0


class SparkRuntime:
    """The Spark engine for a run (see the module's docstring), on the data directory of ``settings``: their
    ``spark_master`` (unset: ``local[2]``), ``spark_thrift`` (``host:port`` of an existing Thrift server; unset:
    start one in the session) and ``spark_driver_memory``."""

    engine = "spark"

    def __init__(self, settings: Settings):
        self.paths = settings.paths
        self.master = settings.spark_master or LOCAL_MASTER
        self.thrift = settings.spark_thrift
        self.driver_memory = settings.spark_driver_memory
        self.home = self.paths.data_dir / SPARK_DIR
        self.seconds: dict[str, float] = {}  # how long Spark and its Thrift server took to start
        self._spark: SparkSession | None = None
        self._server: Any = None
        self._endpoint: tuple[str, int] | None = None

    @property
    def local(self) -> bool:
        return self.master.startswith("local")

    def spark(self) -> SparkSession:
        """The run's Spark session, started on first use."""
        if self._spark is None:
            self._spark = self._start()
        return self._spark

    def _start(self) -> SparkSession:
        from pyspark.sql import SparkSession

        started = time.perf_counter()
        builder = (
            SparkSession.builder.master(self.master)
            .appName("cprof")
            .config("spark.driver.memory", self.driver_memory)
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.storeAssignmentPolicy", "ANSI")
            .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
            .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
            # The Thrift server's sessions log nothing to /tmp/<user>/operation_logs.
            .config("spark.hadoop.hive.server2.logging.operation.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            # Hive's metastore cannot filter partitions on every column name (``_period``: "no viable
            # alternative at character '_'"): list them all then, rather than fail the query.
            .config("spark.sql.hive.metastorePartitionPruningFallbackOnException", "true")
        )
        if self.local:
            self.home.mkdir(parents=True, exist_ok=True)
            java_options = (
                f"-Dderby.system.home={self.home} -Dlog4j2.configurationFile=file:{self._log_config()}"
            )
            builder = (
                builder.config("spark.sql.warehouse.dir", str(self.home / "warehouse"))
                .config(
                    "spark.hadoop.javax.jdo.option.ConnectionURL",
                    f"jdbc:derby:;databaseName={self.home / 'metastore_db'};create=true",
                )
                .config("spark.driver.extraJavaOptions", java_options)
            )
        if self.thrift is None:
            port = _free_port()
            self._endpoint = ("127.0.0.1", port)
            builder = builder.config("spark.hadoop.hive.server2.thrift.port", str(port)).config(
                "spark.hadoop.hive.server2.thrift.bind.host", "127.0.0.1"
            )
        else:
            host, _, port = self.thrift.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(
                    f"{Settings.variable('spark_thrift')}={self.thrift!r}: expected host:port of a Spark Thrift server"
                )
            self._endpoint = (host, int(port))
        spark = builder.enableHiveSupport().getOrCreate()
        self.seconds["spark_start"] = time.perf_counter() - started
        return spark

    def _log_config(self) -> Path:
        """Spark's log (warnings and errors) goes to ``<data>/logs/spark.log``, not to the run's console."""
        log = self.paths.logs / "spark.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        config = self.home / "log4j2.properties"
        config.write_text(
            "rootLogger.level = warn\n"
            "rootLogger.appenderRef.file.ref = file\n"
            "appender.file.type = File\n"
            "appender.file.name = file\n"
            f"appender.file.fileName = {log}\n"
            "appender.file.layout.type = PatternLayout\n"
            "appender.file.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex\n"
        )
        return config

    def _start_thrift(self) -> tuple[str, int]:
        """The Thrift endpoint dbt connects to: started in the session unless one was given."""
        spark = self.spark()
        assert self._endpoint is not None
        if self.thrift is not None or self._server is not None:
            return self._endpoint
        started = time.perf_counter()
        server_class = spark._jvm.org.apache.spark.sql.hive.thriftserver.HiveThriftServer2
        self._server = server_class.startWithContext(spark._jsparkSession.sqlContext())
        host, port = self._endpoint
        deadline = time.monotonic() + THRIFT_START_TIMEOUT
        while not _listening(host, port):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"Spark's Thrift server did not listen on {host}:{port} within "
                    f"{THRIFT_START_TIMEOUT:.0f} s"
                )
            time.sleep(0.2)
        self.seconds["thrift_start"] = time.perf_counter() - started
        return self._endpoint

    @contextmanager
    def session(self) -> Iterator[SparkWarehouse]:
        warehouse = SparkWarehouse(self.spark(), self.home, self.manifests())
        try:
            yield warehouse
        finally:
            warehouse.close()

    def manifests(self) -> list[Path]:
        """dbt manifests that declare the column order of the models and of the Python marts (as sources)."""
        return [m for m in (self.paths.dbt_target / "manifest.json", DBT_PROJECT_MANIFEST) if m.exists()]

    def dbt_environment(self) -> dict[str, str]:
        host, port = self._start_thrift()
        return {THRIFT_HOST_ENV: host, THRIFT_PORT_ENV: str(port)}

    def close(self) -> None:
        if self._server is not None:
            try:
                self._server.stop()
            finally:
                self._server = None
        if self._spark is not None:
            self._spark.stop()
            self._spark = None

    def check_writable(self) -> None:
        """The control file is a DuckDB file: a process holding it open keeps a run out (Spark's own metastore
        says for itself when another Spark holds it)."""
        from pipelines.engines.duckdb_warehouse import open_for_writing
        from pipelines.engines.spark_ingest import control_path

        control = control_path(self.paths)
        if control.exists():
            open_for_writing(control, {}).close()

    # -- the run's bookkeeping (pipelines/engines/spark_ingest.py)
    def months_awaiting_publication(self) -> list[str] | None:
        from pipelines.engines import spark_ingest

        return spark_ingest.months_awaiting_publication(self.paths)

    def unchanged_snapshots(
        self, landing: Path, allow_external_links: bool = Settings.allow_external_links
    ) -> dict[str, datetime]:
        from pipelines.engines import spark_ingest

        return spark_ingest.unchanged_snapshots(self.paths, landing, allow_external_links)

    def clear_awaiting_publication(self, first: date, last: date) -> int:
        from pipelines.engines import spark_ingest

        return spark_ingest.clear_awaiting_publication(self.paths, first, last)


def _condition(f: Filter):
    from pyspark.sql import functions as F

    column = F.col(f.column)
    if f.op == "in":
        values = list(f.value)
        return column.isin(values) if values else F.lit(False)
    value = F.lit(f.value)
    if f.op == "=":
        return column == value
    if f.op == "<":
        return column < value
    if f.op == "<=":
        return column <= value
    if f.op == ">":
        return column > value
    if f.op == ">=":
        return column >= value
    raise ValueError(f"unknown operator {f.op!r} in a filter on {f.column}")


def _declared_orders(manifests: Sequence[Path]) -> dict[str, list[str]]:
    """``schema.name`` -> the columns in the order the dbt project declares them (models and sources)."""
    orders: dict[str, list[str]] = {}
    for path in reversed(manifests):  # the first manifest wins
        manifest = json.loads(path.read_text())
        for node in [*manifest.get("nodes", {}).values(), *manifest.get("sources", {}).values()]:
            if node.get("resource_type") not in ("model", "source") or not node.get("columns"):
                continue
            name = node.get("alias") or node.get("identifier") or node["name"]
            orders[f"{node['schema']}.{name}"] = list(node["columns"])
    return orders


class SparkWarehouse(Warehouse):
    engine = "spark"

    def __init__(self, spark: SparkSession, home: Path, manifests: Sequence[Path] = ()):
        self.spark = spark
        self.home = home
        self.manifests = list(manifests)
        self._orders: dict[str, list[str]] | None = None
        self._duck: duckdb.DuckDBPyConnection | None = None
        self._scratch: list[Path] = []

    @property
    def duck(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB of the session: it turns Parquet into pandas frames (the DuckDB engine's dtypes)
        and stages the frames of a write, with the DuckDB engine's casts."""
        if self._duck is None:
            self._duck = duckdb.connect(":memory:")
        return self._duck

    def _scratch_dir(self, purpose: str) -> Path:
        folder = self.home / "scratch" / f"{purpose}-{uuid.uuid4().hex[:12]}"
        folder.mkdir(parents=True)
        self._scratch.append(folder)
        return folder

    def _drop_scratch(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        if folder in self._scratch:
            self._scratch.remove(folder)

    # -- reads
    def _frame(self, table: str, where: Sequence[Filter] = ()) -> DataFrame:
        frame = self.spark.table(table)
        for f in where:
            frame = frame.where(_condition(f))
        return frame

    def _pandas(self, frame: DataFrame) -> pd.DataFrame:
        """A Spark DataFrame as the pandas frame DuckDB's engine returns for the same rows (types included):
        written to Parquet by Spark, read by DuckDB, in the frame's order."""
        folder = self._scratch_dir("read")
        try:
            frame.coalesce(1).write.mode("overwrite").parquet(str(folder / "rows"))
            return self.duck.execute(
                f"select * from read_parquet({literal(folder / 'rows' / '*.parquet')})"
            ).df()
        finally:
            self._drop_scratch(folder)

    def exists(self, table: str) -> bool:
        schema = table.split(".")[0]
        return bool(self.spark.catalog.databaseExists(schema) and self.spark.catalog.tableExists(table))

    def read(self, table, columns=None, where=(), order_by=()) -> pd.DataFrame:
        frame = self._frame(table, where).select(*(columns or self.columns(table)))
        if order_by:
            frame = frame.orderBy(*order_by)
        return self._pandas(frame)

    def distinct(self, table, column, where=()) -> list[Any]:
        rows = self._frame(table, where).select(column).distinct().orderBy(column).collect()
        return [row[0] for row in rows]

    def count(self, table, where=()) -> int:
        return int(self._frame(table, where).count())

    def count_by(self, table, column, where=()) -> dict[Any, int]:
        rows = self._frame(table, where).groupBy(column).count().collect()
        return {row[0]: int(row[1]) for row in rows}

    def columns(self, table) -> list[str]:
        """The columns in their declared order (dbt's yml, or the order the Python asset wrote them), which is
        DuckDB's; Spark itself lists the partition column (``period``) last."""
        if not self.exists(table):
            return []
        actual = self.spark.table(table).columns
        declared = self._declared(table)
        if declared is not None and sorted(declared) == sorted(actual):
            return declared
        return actual

    def preview(self, sql: str, limit: int) -> pd.DataFrame:
        return self._pandas(self.spark.sql(sql.strip().rstrip(";")).limit(int(limit)))

    def _declared(self, table: str) -> list[str] | None:
        properties = {
            row.key: row.value
            for row in self.spark.sql(f"show tblproperties {spark_qualified(*table.split('.'))}").collect()
        }
        if COLUMN_ORDER_PROPERTY in properties:
            return properties[COLUMN_ORDER_PROPERTY].split(",")
        if self._orders is None:
            self._orders = _declared_orders(self.manifests)
        return self._orders.get(table)

    # -- the one write of a table keyed by period
    def replace_periods(
        self,
        table: str,
        columns: Sequence[Column],
        frames: Iterable[pd.DataFrame | CopyRows],
        window: PeriodWindow,
    ) -> int:
        from pyspark.sql import functions as F
        from pyspark.sql.types import StructField, StructType, _parse_datatype_string

        names = [c.name for c in columns]
        bad = [name for name in names if not _NAME.fullmatch(name)]
        if bad or "period" not in names:
            raise ValueError(f"{table}: columns {names} must be plain names and include period")
        schema_name, name = table.split(".")
        # Each frame is cast to the declared types by DuckDB (the DuckDB engine's casts, NOT NULL checked) and
        # staged as one Parquet file: a month in memory at a time. Nothing is written to the table before every
        # frame has been staged.
        stage = self._scratch_dir(f"stage-{table}")
        try:
            staged_rows = self._stage(table, columns, frames, stage)
            schema = StructType(
                [StructField(c.name, _parse_datatype_string(spark_type(c.type))) for c in columns]
            )
            if staged_rows:
                rows = self.spark.read.schema(schema).parquet(str(stage))
            else:
                rows = self.spark.createDataFrame([], schema)
            if not window.everything:
                outside = rows.where(~_window_condition(window)).count()
                if outside:
                    raise ValueError(f"{table}: {outside} new rows have a period outside the window {window}")
            target = spark_qualified(schema_name, name)
            rebuild = window.everything or not self.exists(table)
            if not rebuild and sorted(self.spark.table(table).columns) != sorted(names):
                raise ValueError(
                    f"{table}: has columns {self.spark.table(table).columns}, the new rows {names}: "
                    "rebuild it whole (cprof run --full-refresh)"
                )
            if rebuild:
                self.spark.sql(f"create database if not exists {spark_qualified(schema_name)}")
                rows.write.mode("overwrite").format("parquet").partitionBy("period").saveAsTable(table)
                self.spark.sql(
                    f"alter table {target} set tblproperties "
                    f"({literal(COLUMN_ORDER_PROPERTY)} = {literal(','.join(names))})"
                )
            else:
                # Dynamic partition overwrite: the periods the new rows fill are replaced in one insert; the
                # window's periods left without rows are then dropped (as dbt's empty_stale_periods does).
                existing = {
                    row[0]
                    for row in self._frame(table, window.filters()).select("period").distinct().collect()
                }
                filled = {row[0] for row in rows.select("period").distinct().collect()}
                rows.select(*[F.col(c) for c in self.spark.table(table).columns]).write.insertInto(
                    table, overwrite=True
                )
                _fail_at(f"drop_stale_periods:{table}")
                self._drop_periods(target, sorted(existing - filled))
            self.spark.catalog.refreshTable(table)
            return staged_rows
        finally:
            self._drop_scratch(stage)

    def _stage(
        self, table: str, columns: Sequence[Column], frames: Iterable[pd.DataFrame | CopyRows], stage: Path
    ) -> int:
        body = ", ".join(f"{ident(c.name)} {c.type}{'' if c.nullable else ' not null'}" for c in columns)
        selected = ", ".join(ident(c.name) for c in columns)
        total = 0
        for number, frame in enumerate(frames):
            part = stage / f"part-{number:05d}.parquet"
            if isinstance(frame, CopyRows):
                # From the parts staged so far (the glob is read before this part is written; the column is checked
                # even before any part). COPY says how many rows it wrote; a part of none is an empty Parquet
                # file, read as no rows.
                copy, parameters = frame.query(
                    table, columns, ident, f"read_parquet({literal(str(stage / 'part-*.parquet'))})"
                )
                if any(stage.glob("part-*.parquet")):
                    total += self.duck.execute(
                        f"copy ({copy}) to {literal(part)} (format parquet)", parameters
                    ).fetchone()[0]
                continue
            if list(frame.columns) != [c.name for c in columns]:
                raise ValueError(
                    f"{table}: frame columns {list(frame.columns)} are not {[c.name for c in columns]}"
                )
            self.duck.execute(f"create or replace table staged ({body})")
            self.duck.register("_frame", frame)
            try:
                total += self.duck.execute(f"insert into staged select {selected} from _frame").fetchone()[0]
            except duckdb.Error as exc:  # a NULL in a NOT NULL column, a value its type cannot hold
                raise ValueError(
                    f"{table}: frame {number + 1} does not fit the table's columns: {exc}"
                ) from exc
            finally:
                self.duck.unregister("_frame")
            self.duck.execute(f"copy staged to {literal(part)} (format parquet)")
        self.duck.execute("drop table if exists staged")
        return int(total)

    def _drop_periods(self, target: str, periods: list[date]) -> None:
        """Drop the partitions of ``periods``: ``date`` values, written as ISO dates (the partition spec takes
        no parameters)."""
        if not periods:
            return
        for period in periods:
            if not isinstance(period, date):
                raise TypeError(f"period {period!r} of {target} is not a date")
        specs = ", ".join(f"partition (period = {literal(period.isoformat())})" for period in periods)
        self.spark.sql(f"alter table {target} drop if exists {specs}")

    # -- ingest (pipelines/engines/spark_ingest.py)
    def load(
        self,
        landing: Path,
        source: str,
        month: str | None,
        reuse_unchanged: bool,
        expected: FileStamp | None = None,
        accept_row_drop: bool = False,
        max_row_drop: float = Settings.max_row_drop,
        allow_external_links: bool = Settings.allow_external_links,
    ) -> LoadResult:
        from pipelines.engines import spark_ingest

        return spark_ingest.load(
            self.spark,
            landing,
            source,
            month,
            reuse_unchanged,
            expected=expected,
            accept_row_drop=accept_row_drop,
            max_row_drop=max_row_drop,
            allow_external_links=allow_external_links,
        )

    def validation_frame(
        self,
        source: str,
        month: str | None,
        history_start: str | None = None,
        return_window: int = Settings.return_window_months,
    ) -> Any:
        from pipelines.engines import spark_ingest

        return spark_ingest.validation_frame(self.spark, source, month, history_start, return_window)

    def validation_frames(
        self,
        source: str,
        months: list[str],
        history_start: str | None = None,
        return_window: int = Settings.return_window_months,
    ) -> Any:
        from pipelines.engines import spark_ingest

        return spark_ingest.validation_frames(self.spark, source, months, history_start, return_window)

    def mark_validated(self, source: str, month: str, passed: bool, run_id: str | None) -> int:
        from pipelines.engines import spark_ingest

        return spark_ingest.mark_validated(self.spark, source, month, passed, run_id)

    def whole_months(self) -> WholeMonths:
        from pipelines.engines import spark_ingest

        return spark_ingest.whole_months(self.spark)

    def release_whole_months(self) -> list[Released]:
        from pipelines.engines import spark_ingest

        return spark_ingest.release_whole_months(self.spark)

    def release_snapshot(self, source: str) -> SnapshotRelease:
        from pipelines.engines import spark_ingest

        return spark_ingest.release_snapshot(self.spark, source)

    def snapshot_promoted(self, source: str) -> bool:
        from pipelines.engines import spark_ingest

        return spark_ingest.snapshot_promoted(self.spark, source)

    # -- publication
    def marts(self) -> list[str]:
        if not self.spark.catalog.databaseExists("marts"):
            return []
        return sorted(
            t.name
            for t in self.spark.catalog.listTables("marts")
            if not t.isTemporary and t.name not in ("publish_log", "publish_period_log")
        )

    @contextmanager
    def marts_in(self, con: duckdb.DuckDBPyConnection) -> Iterator[dict[str, str]]:
        """Every mart written by Spark to Parquet under ``<data>/spark/scratch/``, read by ``con`` with the
        columns in the mart's declared order (DuckDB's); the files are removed after the block."""
        folder = self._scratch_dir("publication")
        try:
            relations = {}
            for mart in self.marts():
                table = f"marts.{mart}"
                columns = self.columns(table)
                self.spark.table(table).select(*columns).write.mode("overwrite").parquet(str(folder / mart))
                files = literal(folder / mart / "*.parquet")
                relations[mart] = (
                    f"(select {', '.join(ident(c) for c in columns)} from read_parquet({files}))"
                )
            yield relations
        finally:
            self._drop_scratch(folder)

    def close(self) -> None:
        for folder in list(self._scratch):
            self._drop_scratch(folder)
        if self._duck is not None:
            self._duck.close()
            self._duck = None


def _window_condition(window: PeriodWindow):
    from pyspark.sql import functions as F

    condition = F.lit(True)
    for f in window.filters():
        condition = condition & _condition(f)
    return condition
