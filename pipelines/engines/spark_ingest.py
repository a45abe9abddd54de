"""Loading landing files into the working warehouse on Apache Spark. Plain functions on a SparkSession, no Dagster:
the Spark counterpart of ``pipelines/engines/duckdb_ingest.py``, with the same rules and the same messages.

A file is loaded into ``landed.<source>`` (quarantine), validated there (data_checks.gx_run, GX's Spark execution
engine), and only then promoted to ``raw.<source>``, which the dbt models read. Tables live in the session's
metastore as Parquet, every one partitioned by ``_period``: a monthly file replaces exactly its month, a snapshot
is the table's one partition whose ``_period`` is NULL. A file's rows are written once (GENERATIONS below): into
a new folder of their own, a generation, which no table reads until the load points ``landed``'s partition at it
(one metastore statement); promotion points ``raw``'s partition at the same folder, copying nothing. A file that
fails half-way (a value that is not exact raises inside the job) leaves every partition as it was. Column types are
the Spark equivalents of the DuckDB DDL: VARCHAR -> string, DECIMAL(p,s) kept, DATE -> date, TIMESTAMP ->
``timestamp_ntz`` (a wall-clock time without zone, as DuckDB's TIMESTAMP and the landing spec's). As Spark puts
partition columns last, a table's columns are the source's, ``_source_file``, ``_loaded_at`` and ``_period``.

Values are parsed exactly (pipelines.landing.parsing): each is read as text and must match its declared type's pattern
and cast without loss before it is cast; otherwise the file fails naming its line (Parquet: row), column, value
and rule, in the very text DuckDB's load gives (the same ``describe_offenders``). A CSV row with a wrong number of
fields fails the file naming its line. Structure (header, columns), file naming and digests are the engine-free
checks of pipelines.landing.structure and pipelines.landing.inventory.

The bookkeeping DuckDB keeps in ``landed._snapshot_files`` and ``landed._awaiting_publication`` is kept here
outside Spark, in a small DuckDB file, ``<data>/spark/control.duckdb`` (same tables), so ``cprof`` reads the
months awaiting publication and unchanged snapshots before a run without starting Spark. Spark's writes and the control file's are
not one transaction, so they are ordered to make a crash between them safe: a month is marked awaiting
publication before it is promoted; a snapshot is marked unpromoted before ``landed`` changes and recorded as
promoted only after ``raw`` has it. A crash can only make the next run do more (revalidate, refresh), never less.

Whole months (pipelines/engines/whole_months.py): a month's validation outcome is recorded in the control file
(``landed._validations``) with the generation folder it validated, so a later load of the month (another folder)
is not validated until its own suite passes. A whole month is released by pointing ``raw``'s six partitions at
``landed``'s, one metastore statement each, after the month is recorded as awaiting publication: Spark has no
transaction across them, so a crash in between leaves the month partly pointed, and the next raw step of any run
(before anything is built) completes it. The suites read ``validated.<source>`` as a temporary view: ``raw`` with
the months validated and not yet released taken from ``landed``.
"""

from __future__ import annotations

import csv
import functools
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from pipelines.engines import duckdb_ingest
from pipelines.engines.base import LoadResult, Released, SnapshotRelease
from pipelines.engines.duckdb_ingest import AWAITING, AWAITING_DDL, SNAPSHOT_FILES, SNAPSHOT_FILES_DDL
from pipelines.engines.sql import spark_literal
from pipelines.engines.whole_months import Partition, WholeMonths, month_of
from pipelines.landing.inventory import (
    ABSENT,
    FileStamp,
    file_to_load,
    is_absent,
    landing_path,
    month_start,
    row_drop_error,
    verify_unchanged,
)
from pipelines.landing.parsing import csv_lines, describe_offenders, rule_for
from pipelines.landing.sources import BY_NAME, LINEAGE_COLUMNS, MONTHLY, SOURCES, Source
from pipelines.landing.structure import (
    LandingError,
    check_columns,
    check_csv_header,
    check_parquet_file,
    check_scalar_columns,
    csv_problem,
)
from pipelines.lib.config import Paths
from pipelines.lib.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = [
    "LandingError",
    "clear_awaiting_publication",
    "control_path",
    "ensure_tables",
    "load",
    "mark_validated",
    "months_awaiting_publication",
    "promote",
    "release_snapshot",
    "release_whole_months",
    "snapshot_promoted",
    "spark_frame_sql",
    "spark_type",
    "unchanged_snapshots",
    "validation_frame",
    "validation_frames",
    "whole_months",
]

LANDED, RAW = "landed", "raw"
CONTROL_FILE = "control.duckdb"
_ROW = "_cprof_row"  # a row's position in its file (0-based), while a file is read
_CORRUPT = "_cprof_malformed"  # Spark's text of a CSV row whose fields do not fit the header, else NULL
_FAILURE = "cprof: "  # how the errors raised inside a load's job start (raise_error)

# -- types ---------------------------------------------------------------------------------------------------

_SPARK_TYPES = {
    "VARCHAR": "string",
    "INTEGER": "int",
    "BIGINT": "bigint",
    "SMALLINT": "smallint",
    "DOUBLE": "double",
    "FLOAT": "float",
    "REAL": "float",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP": "timestamp_ntz",
}
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


def spark_type(kind: str) -> str:
    """The Spark SQL type of a declared (DuckDB) column type: VARCHAR -> string, DECIMAL(p,s) kept, TIMESTAMP ->
    timestamp_ntz (no time zone, like DuckDB's TIMESTAMP)."""
    kind = kind.upper().replace(" ", "")
    decimal = _DECIMAL.fullmatch(kind)
    if decimal:
        return f"decimal({decimal.group(1)},{decimal.group(2)})"
    return _SPARK_TYPES[kind]


def _declared_kind(spark_kind: str) -> str:
    """The DuckDB spelling of a Spark column type (a Parquet file's, as Spark reads it), to compare with the
    spec's."""
    decimal = re.fullmatch(r"decimal\((\d+),(\d+)\)", spark_kind)
    if decimal:
        return f"DECIMAL({decimal.group(1)},{decimal.group(2)})"
    names = {value: key for key, value in _SPARK_TYPES.items() if key != "REAL"}
    return names.get(spark_kind, spark_kind.upper())


def _name(*parts: str) -> str:
    """A backquoted Spark name (the spec's schema, table and column names)."""
    return ".".join("`" + part.replace("`", "``") + "`" for part in parts)


# -- tables --------------------------------------------------------------------------------------------------


def _ddl(source: Source, schema: str) -> str:
    lineage = {k: v for k, v in source.lineage_columns.items() if k != "_period"}
    columns = {**source.table_columns, **lineage, "_period": "DATE"}
    body = ", ".join(f"{_name(name)} {spark_type(kind)}" for name, kind in columns.items())
    return f"create table if not exists {_name(schema, source.name)} ({body}) using parquet partitioned by (_period)"


# A Hive metastore cannot filter partitions on a column whose name starts with an underscore (its filter grammar
# has no such identifier): Spark then asks for every partition of the table and prunes them itself. A session
# setting, set by every function here (reads of these tables also happen later, when GX evaluates a frame).
_PRUNING_FALLBACK = "spark.sql.hive.metastorePartitionPruningFallbackOnException"

# The sessions (application id, warehouse directory) whose tables are known to exist: checking the metastore on
# every call took 2 s on a loaded machine (Derby).
_ENSURED: set[tuple[str, str]] = set()


def ensure_tables(spark: SparkSession) -> None:
    """Create the schemas ``landed`` and ``raw`` and every source's table in them that does not exist yet
    (empty, Parquet, partitioned by ``_period``), so suites can join against them; once per session. Sets the
    session's ``spark.sql.hive.metastorePartitionPruningFallbackOnException`` (see ``_PRUNING_FALLBACK``)."""
    spark.conf.set(_PRUNING_FALLBACK, "true")
    key = (spark.sparkContext.applicationId, spark.conf.get("spark.sql.warehouse.dir"))
    if key in _ENSURED:
        return
    for schema in (LANDED, RAW):
        spark.sql(f"create database if not exists {_name(schema)}")
        present = {row.tableName for row in spark.sql(f"show tables in {_name(schema)}").collect()}
        for source in SOURCES:
            if source.name not in present:
                spark.sql(_ddl(source, schema))
    _ENSURED.add(key)


def _partition(frame: DataFrame, period: date | None) -> DataFrame:
    from pyspark.sql import functions as F

    return frame.where(F.col("_period").isNull() if period is None else F.col("_period") == F.lit(period))


def _count(spark: SparkSession, table: str, period: date | None) -> int:
    return _partition(spark.table(table), period).count()


# -- generations: each load's rows in a folder of their own ----------------------------------------------------
#
# ``<warehouse dir>/cprof_generations/<source>/<YYYY-MM-DD | snapshot>/<generation>``: a load writes its rows
# into a new generation folder (a Spark job; the files appear when it commits, and a failed job's folder is
# removed), then points ``landed``'s partition at it; a promotion points ``raw``'s partition at the folder
# ``landed``'s reads. Each pointing is one metastore statement (``alter table ... set location``, or ``add
# partition ... location`` for a new partition), so a reader sees the old rows or the new, never a mix. A
# folder neither table reads any more is deleted; one left behind by a process killed between writing and
# pointing is swept at the next load of its partition. Partitions are never dropped or overwritten in place: on
# these managed tables either would delete the files the other table may still read. (Tables written by an
# older version, in Spark's default partition folders, switch to generations at their next load.)

GENERATIONS_DIR = "cprof_generations"


def _spec(period: date | None) -> str:
    """The partition spec of a month (a date, never text from data) or of the snapshot (NULL)."""
    value = "null" if period is None else f"date'{period.isoformat()}'"
    return f"(_period = {value})"


def _hadoop_path(spark: SparkSession, location: str):
    """The JVM ``Path`` of ``location``, fully qualified (``file:/...``), and its Hadoop file system."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(location)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return fs.makeQualified(path), fs


def _qualified(spark: SparkSession, location: str) -> str:
    return _hadoop_path(spark, location)[0].toString()


def _generations_of(spark: SparkSession, source: Source, period: date | None) -> str:
    """The folder of a partition's generations, qualified."""
    root = spark.conf.get("spark.sql.warehouse.dir").rstrip("/")
    return _qualified(
        spark, f"{root}/{GENERATIONS_DIR}/{source.name}/{period.isoformat() if period else 'snapshot'}"
    )


def _location(spark: SparkSession, table: str, period: date | None) -> str | None:
    """The folder a table's partition reads (qualified), or None when the table has no such partition."""
    from pyspark.errors import AnalysisException

    schema, name = table.split(".")
    try:
        rows = spark.sql(f"describe formatted {_name(schema, name)} partition {_spec(period)}").collect()
    except AnalysisException:  # no such partition
        return None
    # The partition's location comes first; the table's follows it.
    found = next((row.data_type for row in rows if row.col_name == "Location"), None)
    return _qualified(spark, found) if found else None


def _locations(spark: SparkSession, table: str) -> dict[date | None, str]:
    """Every partition of ``table`` and the folder it reads (qualified), with one metastore call: the session
    catalog's listing (Spark's Python API has none with locations; ``describe formatted`` takes a call per
    partition, which on Derby took seconds for a year of months)."""
    schema, name = table.split(".")
    catalog = spark._jsparkSession.sessionState().catalog().externalCatalog()
    listed = catalog.listPartitions(schema, name, spark.sparkContext._jvm.scala.Option.empty()).iterator()
    found: dict[date | None, str] = {}
    while listed.hasNext():
        partition = listed.next()
        value = partition.spec().apply("_period")
        period = None if value in (None, "__HIVE_DEFAULT_PARTITION__") else date.fromisoformat(value)
        found[period] = _qualified(spark, partition.location().toString())
    return found


def _point(spark: SparkSession, table: str, period: date | None, location: str, before: str | None) -> None:
    """Make the partition of ``table`` read the files in ``location`` (``before``: the folder it read until now,
    None when it did not exist)."""
    schema, name = table.split(".")
    target = spark_literal(location)
    if before is None:
        spark.sql(f"alter table {_name(schema, name)} add partition {_spec(period)} location {target}")
    elif before != location:
        spark.sql(f"alter table {_name(schema, name)} partition {_spec(period)} set location {target}")


def _delete(spark: SparkSession, location: str) -> None:
    path, fs = _hadoop_path(spark, location)
    fs.delete(path, True)


def _release(spark: SparkSession, location: str | None, read: set[str | None]) -> None:
    """Delete ``location``, a folder a partition read until now, unless it is one the tables still ``read``."""
    if location is not None and location not in read:
        _delete(spark, location)


def _sweep(spark: SparkSession, generations: str, read: set[str | None]) -> None:
    """Delete the generations in a partition's folder ``generations`` other than those the tables ``read`` (a
    killed process's)."""
    folder, fs = _hadoop_path(spark, generations)
    if fs.exists(folder):
        for status in fs.listStatus(folder):
            if status.getPath().toString() not in read:
                fs.delete(status.getPath(), True)


# -- the control file (outside Spark) -------------------------------------------------------------------------


def control_path(paths: Paths) -> Path:
    """Where the Spark warehouse's bookkeeping is kept: ``<data>/spark/control.duckdb``."""
    return paths.data_dir / "spark" / CONTROL_FILE


def _control_of(spark: SparkSession) -> Path:
    """The control file beside the session's warehouse directory (``<data>/spark/warehouse`` in SparkRuntime's
    layout): used when a function is not given ``control``."""
    location = spark.conf.get("spark.sql.warehouse.dir")
    location = re.sub(r"^file:(//)?", "", location)
    return Path(location).parent / CONTROL_FILE


@contextmanager
def _control(control: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The control file, open for writing (created with its tables when missing), for one short step."""
    control.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(control)) as con:
        con.execute(f"create schema if not exists {LANDED}")
        con.execute(SNAPSHOT_FILES_DDL)
        con.execute(AWAITING_DDL)
        con.execute(VALIDATIONS_DDL)
        yield con


# The outcome of each monthly partition's last validation, and the generation folder it validated (a later load
# is another folder: not validated until its own suite passes).
VALIDATIONS = "landed._validations"
VALIDATIONS_DDL = (
    f"create table if not exists {VALIDATIONS} (source varchar not null, period date not null, "
    "location varchar not null, validated boolean not null, validation_run varchar, rows bigint not null, "
    "primary key (source, period))"
)


def _promoted_rows(control: Path, source_name: str, sha256: str) -> int | None:
    """Rows of the snapshot in ``raw`` when it was promoted from a file with this checksum, else None."""
    if not control.exists():
        return None
    try:
        with duckdb.connect(str(control), read_only=True) as con:
            row = con.execute(
                f"select rows from {SNAPSHOT_FILES} where source = ? and sha256 = ? and promoted_at is not null",
                [source_name, sha256],
            ).fetchone()
    except duckdb.Error:  # no record yet, or a writer holds the file for the moment of a step
        return None
    return None if row is None else int(row[0])


def months_awaiting_publication(paths: Paths) -> list[str] | None:
    """The months (YYYY-MM, sorted) promoted to Spark's ``raw`` by a run that did not publish them (it failed or
    was killed after promoting): the next run refreshes them with its own. Reads the control file only (no Spark):
    [] when there is no record yet, None when another process holds it for writing."""
    # the control file keeps DuckDB's record
    return duckdb_ingest.months_awaiting_publication(control_path(paths))


def unchanged_snapshots(
    paths: Paths, landing: Path, allow_external_links: bool = Settings.allow_external_links
) -> dict[str, datetime]:
    """The reference snapshots whose landing file is the one already validated and promoted to Spark's ``raw``
    (by checksum), each with when that file was loaded and validated. Reads the control file only (no Spark):
    nothing when there is no record yet or another process is writing it."""
    # the control file keeps DuckDB's record
    return duckdb_ingest.unchanged_snapshots(control_path(paths), landing, allow_external_links)


def clear_awaiting_publication(paths: Paths, first: date, last: date) -> int:
    """After a successful publication (the swap done): the months first..last it refreshed no longer await it.
    Returns how many (month, source) marks were cleared. Writes the control file only (no Spark)."""
    with _control(control_path(paths)) as con:
        cleared = con.execute(
            f"delete from {AWAITING} where period between ? and ?", [first, last]
        ).fetchone()[0]
    return int(cleared)


def snapshot_promoted(spark: SparkSession, source_name: str, control: Path | None = None) -> bool:
    """True when the snapshot now in ``landed.<source>`` is the one in ``raw`` (it passed its suite when it was
    loaded), as the control file records it (``control``: default beside the session's warehouse directory)."""
    control = control or _control_of(spark)
    if not control.exists():
        return False
    with duckdb.connect(str(control), read_only=True) as con:
        try:
            row = con.execute(
                f"select promoted_at is not null from {SNAPSHOT_FILES} where source = ?", [source_name]
            ).fetchone()
        except duckdb.CatalogException:
            return False
    return bool(row and row[0])


# -- reading a landing file as text ---------------------------------------------------------------------------


def _check_csv_format(path: Path) -> None:
    """Spark decodes a CSV file replacing bytes that are not UTF-8, and reads a quote that never closes as one value
    holding the rest of the file: refuse such a file first, in DuckDB's words (pipelines.landing.structure.csv_problem:
    the line where it stops being UTF-8, where the quote opens, or with the wrong number of fields)."""
    problem = csv_problem(path)
    if problem:
        raise LandingError(path, f"does not parse: {problem}")


def _csv_has_rows(path: Path) -> bool:
    """Whether a CSV file has a line after its header that is not blank (a header-only month has none)."""
    with path.open("rb") as handle:
        handle.readline()
        return any(line.strip() for line in handle)


def _csv_text(spark: SparkSession, path: Path, kinds: dict[str, str]) -> DataFrame:
    """The CSV file's rows, every column (``kinds``: the file's columns, in its order) as text exactly as written
    (NULL when empty), with each row's position in the file and, for a row whose fields do not match the
    header, its text (``_CORRUPT``)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    schema = StructType([StructField(name, StringType()) for name in [*kinds, _CORRUPT]])
    frame = (
        spark.read.schema(schema)
        .option("header", True)
        .option("multiLine", True)  # a quoted value may span lines; the file is then read whole, in order
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", _CORRUPT)
        .option("quote", '"')
        .option("escape", '"')
        .option("encoding", "UTF-8")
        .option("enforceSchema", True)
        .csv(str(path))
    )
    # One partition per file (multiLine): ids are consecutive, in file order.
    return frame.withColumn(_ROW, F.monotonically_increasing_id())


def _parquet(spark: SparkSession, path: Path) -> DataFrame:
    from pyspark.sql import functions as F

    return spark.read.parquet(str(path)).withColumn(_ROW, F.col("_metadata.row_index"))


_FLOATS = ("DOUBLE", "FLOAT")


def _parquet_text(
    frame: DataFrame, kinds: dict[str, str], stored: dict[str, str], keep_typed: bool
) -> DataFrame:
    """The Parquet file's columns (``kinds``: their declared types) as text, except (with ``keep_typed``) those
    already stored in their declared type. A double becomes its shortest exact decimal: 8.0 fits an INTEGER
    column (the ``.0`` dropped), 8.4 does not (as on DuckDB)."""
    from pyspark.sql import functions as F

    columns = [F.col(_ROW)]
    for name, kind in kinds.items():
        column = F.col(_name(name))
        if stored.get(name) == kind and keep_typed:
            text = column
        elif stored.get(name) in _FLOATS and kind in ("INTEGER", "BIGINT"):
            text = F.regexp_replace(column.cast("string"), r"\.0$", "")
        else:
            text = column.cast("string")
        columns.append(text.alias(name))
    return frame.select(*columns)


def _fits(name: str, kind: str) -> Column:
    """True when the text column ``name`` is NULL or written exactly in ``kind`` (the rule's pattern, whole, and
    a cast that does not fail or overflow; Spark's cast gives NULL where DuckDB's fails)."""
    from pyspark.sql import functions as F

    rule = rule_for(kind)
    column = F.col(_name(name))
    if rule is None:
        return F.lit(True)
    pattern = rule.pattern
    flags = ""
    if pattern.startswith("(?i)"):
        flags, pattern = "(?i)", pattern[4:]
    matches = column.rlike(rf"{flags}\A(?:{pattern})\z")
    return column.isNull() | (matches & F.expr(f"try_cast({_name(name)} as {spark_type(kind)})").isNotNull())


def _checked(name: str, kind: str) -> Column:
    """The text column ``name`` cast to ``kind``, or an error raised in the job when a value does not fit."""
    from pyspark.sql import functions as F

    if rule_for(kind) is None:
        return F.col(_name(name)).alias(name)
    failure = F.raise_error(F.concat(F.lit(f"{_FAILURE}not an exact {kind}: "), F.col(_name(name))))
    return F.when(_fits(name, kind), F.col(_name(name)).cast(spark_type(kind))).otherwise(failure).alias(name)


def _malformed_rows(text: DataFrame, path: Path, kinds: dict[str, str]) -> LandingError | None:
    """The first CSV row whose fields do not match the header, as DuckDB's reader would name it."""
    from pyspark.sql import functions as F

    bad = text.where(F.col(_CORRUPT).isNotNull()).select(_ROW, _CORRUPT, *kinds)
    first = bad.orderBy(_ROW).limit(1).collect()
    if not first:
        return None
    row, raw = first[0][_ROW], first[0][_CORRUPT]
    fields = next(csv.reader([raw]), [])
    line = csv_lines(path, {row}).get(row)
    where = f"line {line}: " if line else ""
    return LandingError(
        path,
        f"does not parse: {where}expected {len(kinds)} columns, found {len(fields)} "
        f"(the line reads: {raw.strip()[:200]})",
    )


def _inexact_values(text: DataFrame, kinds: dict[str, str], where) -> LandingError | None:
    """The values of the file that are not exactly of their declared type (the first three in file order, with
    their line or row, and how many in all), or None when every value fits. ``text``: every column as text,
    with ``_ROW``; ``where``: the rows shown (0-based) -> how a person finds them."""
    from functools import reduce

    from pyspark.sql import functions as F

    parts = [
        text.where(~_fits(name, kind)).select(
            F.col(_ROW).alias("position"),
            F.lit(name).alias("column_name"),
            F.col(_name(name)).alias("value"),
            F.lit(kind).alias("kind"),
        )
        for name, kind in kinds.items()
        if rule_for(kind) is not None
    ]
    if not parts:
        return None
    offenders = reduce(lambda a, b: a.unionByName(b), parts).cache()
    try:
        total = offenders.count()
        if not total:
            return None
        shown = offenders.orderBy("position", "column_name").limit(3).collect()
    finally:
        offenders.unpersist()
    rows = [(r.position, r.column_name, r.value, r.kind, total) for r in shown]
    return describe_offenders(rows, where({r[0] for r in rows}))


def _spark_error_line(exc: BaseException) -> str:
    """The first line of what Spark says, without its JVM stack."""
    text = str(getattr(exc, "desc", None) or exc).strip()
    found = re.search(r"\[[A-Z_.]+\][^\n]*", text)
    return (found.group(0) if found else text.splitlines()[0] if text else type(exc).__name__)[:300]


# -- load, validate, promote ---------------------------------------------------------------------------------


def _kinds(source: Source, present: list[str]) -> dict[str, str]:
    """The declared type of each column of a file (``present``: its columns, checked by check_columns: the
    source's, then any of its optional ones), in the file's order."""
    return {name: source.table_columns[name] for name in present}


def load(
    spark: SparkSession,
    landing: Path,
    source_name: str,
    month: str | None = None,
    skip_unchanged: bool = False,
    control: Path | None = None,
    expected: FileStamp | None = None,
    accept_row_drop: bool = False,
    max_row_drop: float = Settings.max_row_drop,
    allow_external_links: bool = Settings.allow_external_links,
) -> LoadResult:
    """Load one landing file into ``landed.<source>`` (quarantine, until its suite passes and it is promoted to
    ``raw``): a month of a monthly source (its ``_period`` partition replaced), or a whole snapshot. Every value is
    parsed exactly (pipelines.landing.parsing); a file that is missing, malformed or holds a value not exactly of its
    type raises LandingError (file, line or Parquet row, column, value, rule: DuckDB's text) and changes nothing.
    A header-only month fails where the spec says empty months are not normal, and empties the month where
    they are. With ``skip_unchanged``, a snapshot file with the checksum of the content already promoted is not
    loaded again (``unchanged`` in the result). ``control``: the control file (default: beside the session's
    warehouse directory, ``<data>/spark/control.duckdb``). Only whole files, as on DuckDB: ``expected`` is the
    file as the run's inventory found it, and a file that differs from it before or after it was read, or a
    month whose rows fall by more than ``max_row_drop`` (the setting) against its promoted load (unless
    ``accept_row_drop``), fails naming the file and changes nothing."""
    from pyspark.sql import functions as F

    source = BY_NAME[source_name]
    if (source.kind == "monthly") != (month is not None):
        raise ValueError(
            f"{source_name} is a {source.kind} source: "
            f"{'a month is required' if month is None else 'it has no months'}"
        )
    control = control or _control_of(spark)
    period = month_start(month) if month else None
    # an optional snapshot without a file loads as no rows (one the run inventoried and that is gone since is
    # not absent but changed: file_to_load says so)
    if expected is None and is_absent(landing, source):
        return _load_absent(spark, landing, source, skip_unchanged, control)
    file = file_to_load(landing, source, month, expected, allow_external_links)
    path = file.path
    if path.suffix == ".csv":
        kinds = _kinds(source, check_csv_header(path, source))
        _check_csv_format(path)
        has_rows = _csv_has_rows(path)
        stored = None
        text = _csv_text(spark, path, kinds)
    else:
        check_parquet_file(path)
        try:
            raw = _parquet(spark, path)
            stored = {name: _declared_kind(kind) for name, kind in raw.dtypes if name != _ROW}
        except Exception as exc:  # not a Parquet file Spark can read
            raise LandingError(path, f"does not parse: {_spark_error_line(exc)}") from exc
        check_columns(path, source, list(stored))
        check_scalar_columns(path, source, {name: kind for name, kind in raw.dtypes if name != _ROW})
        kinds = _kinds(source, list(stored))
        has_rows = raw.limit(1).count() > 0
        text = _parquet_text(raw, kinds, stored, keep_typed=True)
    if skip_unchanged and period is None:
        promoted = _promoted_rows(control, source_name, file.sha256)
        if promoted is not None:
            return LoadResult(
                source_name, path, month, promoted, file.sha256, file.bytes, file.mtime_ns, unchanged=True
            )
    if not has_rows and source.kind == "monthly" and not source.empty_month_ok:
        raise duckdb_ingest.empty_month_error(path, source)

    ensure_tables(spark)
    table = f"{LANDED}.{source.name}"
    types = {
        field.name: field.dataType for field in spark.table(table).schema.fields if field.name != "_period"
    }
    columns = []
    for name, kind in kinds.items():
        typed = stored is not None and stored.get(name) == kind
        columns.append(F.col(_name(name)).alias(name) if typed else _checked(name, kind))
    if stored is None:  # a CSV row whose fields do not match the header fails the job too
        columns[0] = (
            F.when(F.col(_CORRUPT).isNull(), columns[0])
            .otherwise(F.raise_error(F.lit(f"{_FAILURE}malformed row")))
            .alias(next(iter(kinds)))
        )
    absent = [
        F.lit(None).cast(spark_type(kind)).alias(name)
        for name, kind in source.optional.items()
        if name not in kinds
    ]
    rows_frame = text.select(
        *columns,
        *absent,
        F.lit(str(path)).alias("_source_file"),
        F.expr("localtimestamp()").alias("_loaded_at"),
        *([F.lit(file.sha256).alias("_file_sha256")] if source.versioned else []),
    )
    rows_frame = rows_frame.select(
        *(F.col(_name(name)).cast(kind).alias(name) for name, kind in types.items())
    )
    before, promoted = (_location(spark, f"{schema}.{source.name}", period) for schema in (LANDED, RAW))
    generations = _generations_of(spark, source, period)
    _sweep(spark, generations, {before, promoted})
    generation = f"{generations}/{uuid.uuid4().hex}"
    try:
        if has_rows:
            rows_frame.write.parquet(generation)
        else:  # a month with no rows: a generation with no files
            folder, fs = _hadoop_path(spark, generation)
            fs.mkdirs(folder)
    except Exception as exc:
        _delete(spark, generation)
        verify_unchanged(file)  # a file cut short or grown while it was read: say so, not how it broke
        error = _explain_failure(spark, path, kinds, stored, exc)
        raise error from exc
    try:  # the rows written are the file inventoried, and not far fewer than the month's promoted load
        verify_unchanged(file)
        if period is not None and promoted is not None and not accept_row_drop:
            written = spark.read.parquet(generation).count() if has_rows else 0
            drop = row_drop_error(
                path, source.name, month, written, _count(spark, f"{RAW}.{source.name}", period), max_row_drop
            )
            if drop is not None:
                raise drop
    except LandingError:
        _delete(spark, generation)
        raise
    previous = _snapshot_record(control, source_name) if period is None else None
    if period is None:  # landed is about to differ from raw: no longer "promoted" until it is again
        with _control(control) as con:
            con.execute(f"update {SNAPSHOT_FILES} set promoted_at = null where source = ?", [source_name])
    try:
        _point(spark, table, period, generation, before)
    except Exception:
        if previous is not None:
            _restore_snapshot_record(control, previous)
        _release(spark, generation, {_location(spark, table, period)})  # unless the statement took effect
        raise
    _release(spark, before, {promoted})
    rows = _count(spark, table, period) if has_rows else 0
    if period is None:
        with _control(control) as con:
            con.execute(
                f"insert or replace into {SNAPSHOT_FILES} values (?, ?, ?, localtimestamp, null)",
                [source_name, file.sha256, rows],
            )
    return LoadResult(source_name, path, month, rows, file.sha256, file.bytes, file.mtime_ns)


def _load_absent(
    spark: SparkSession, landing: Path, source: Source, skip_unchanged: bool, control: Path
) -> LoadResult:
    """A snapshot that may be absent (``absent_ok``) and is: loaded as no rows (a generation with no files), recorded
    with the checksum ABSENT, so it is validated, released and reused like a file, as on DuckDB."""
    path = landing_path(landing, source)
    if skip_unchanged and _promoted_rows(control, source.name, ABSENT) is not None:
        return LoadResult(source.name, path, None, 0, ABSENT, 0, 0, unchanged=True)
    ensure_tables(spark)
    table = f"{LANDED}.{source.name}"
    before, promoted = (_location(spark, f"{schema}.{source.name}", None) for schema in (LANDED, RAW))
    generations = _generations_of(spark, source, None)
    _sweep(spark, generations, {before, promoted})
    generation = f"{generations}/{uuid.uuid4().hex}"
    folder, fs = _hadoop_path(spark, generation)
    fs.mkdirs(folder)
    previous = _snapshot_record(control, source.name)
    with _control(
        control
    ) as con:  # landed is about to differ from raw: no longer "promoted" until it is again
        con.execute(f"update {SNAPSHOT_FILES} set promoted_at = null where source = ?", [source.name])
    try:
        _point(spark, table, None, generation, before)
    except Exception:
        if previous is not None:
            _restore_snapshot_record(control, previous)
        _release(spark, generation, {_location(spark, table, None)})  # unless the statement took effect
        raise
    _release(spark, before, {promoted})
    with _control(control) as con:
        con.execute(
            f"insert or replace into {SNAPSHOT_FILES} values (?, ?, ?, localtimestamp, null)",
            [source.name, ABSENT, 0],
        )
    return LoadResult(source.name, path, None, 0, ABSENT, 0, 0)


def _explain_failure(
    spark: SparkSession, path: Path, kinds: dict[str, str], stored: dict[str, str] | None, exc: BaseException
) -> LandingError:
    """After a failed load: the malformed row or the inexact values of the file, else Spark's own words (a CSV
    file's format was checked before it was read: _check_csv_format)."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    try:
        if stored is None:
            text = _csv_text(spark, path, kinds).cache()
            try:
                problem = _malformed_rows(text, path, kinds)
                if problem is None:
                    found = _inexact_values(
                        text, kinds, lambda rows: {r: f"line {n}" for r, n in csv_lines(path, rows).items()}
                    )
                    problem = found and LandingError(path, found)
            finally:
                text.unpersist()
        else:
            text = _parquet_text(_parquet(spark, path), kinds, stored, keep_typed=False)
            found = _inexact_values(text, kinds, lambda rows: {r: f"row {r + 1}" for r in rows})
            problem = found and LandingError(path, found)
    except (PySparkException, Py4JError, OSError):  # the file itself does not read: Spark's words below
        problem = None
    return problem or LandingError(path, f"does not parse: {_spark_error_line(exc)}")


def _snapshot_record(control: Path, source_name: str) -> tuple | None:
    if not control.exists():
        return None
    with _control(control) as con:
        return con.execute(f"select * from {SNAPSHOT_FILES} where source = ?", [source_name]).fetchone()


def _restore_snapshot_record(control: Path, record: tuple) -> None:
    with _control(control) as con:
        con.execute(f"insert or replace into {SNAPSHOT_FILES} values (?, ?, ?, ?, ?)", list(record))


_FORMATS = {"%Y-%m-%d": "yyyy-MM-dd", "%Y-%m": "yyyy-MM"}


def _date_format(sql: str) -> str:
    """``strftime(<expression>, '<format>')`` -> ``date_format(<expression>, '<Spark format>')``, the expression
    possibly a call itself (its parentheses are matched)."""
    out, at = [], 0
    while (start := sql.find("strftime(", at)) >= 0:
        depth, i = 0, start + len("strftime")
        comma = None
        while True:
            char = sql[i]
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth == 0:
                    break
            elif char == "," and depth == 1:
                comma = i
            i += 1
        expression, fmt = sql[start + len("strftime(") : comma].strip(), sql[comma + 1 : i].strip()
        out.append(sql[at:start] + f"date_format({expression}, '{_FORMATS[fmt.strip(chr(39))]}')")
        at = i + 1
    return "".join(out) + sql[at:]


VALIDATED_VIEW = "cprof_validated_{name}"  # the temporary view ``validated.<name>`` of the suites is read as


def spark_frame_sql(source_name: str) -> tuple[str, list[str]]:
    """The source's suite frame SQL (data_checks.suites, one text for both engines) in Spark's spelling, and
    the ``$name`` parameters it takes. The rewrites are mechanical: ``$name`` -> ``:name``,
    ``<alias>.* exclude (<lineage columns>)`` -> the source's columns, ``strftime(x, '%Y-%m-%d')`` and
    ``'%Y-%m'`` -> ``date_format``, ``as varchar`` -> ``as string``. A construct left over fails loudly."""
    from data_checks.suites import SUITES

    source = BY_NAME[source_name]
    sql = SUITES[source_name].frame_sql
    lineage = ", ".join(LINEAGE_COLUMNS)

    def columns(match: re.Match) -> str:
        prefix = match.group(1) or ""
        return ", ".join(f"{prefix}{_name(name)}" for name in source.table_columns)

    sql = re.sub(rf"(\w+\.)?\*\s+exclude\s*\(\s*{re.escape(lineage)}\s*\)", columns, sql, flags=re.IGNORECASE)
    sql = _date_format(sql)
    sql = re.sub(r"\bas\s+varchar\b", "as string", sql, flags=re.IGNORECASE)
    sql = re.sub(r"([\w.]+)\s*\+\s*to_months\(\s*(cast\(\$\w+ as integer\))\s*\)", r"add_months(\1, \2)", sql)
    sql = re.sub(r"\bvalidated\.(\w+)", lambda m: VALIDATED_VIEW.format(name=m.group(1)), sql)
    parameters = sorted(set(re.findall(r"\$(\w+)", sql)))
    sql = re.sub(r"\$(\w+)", r":\1", sql)
    left = [word for word in ("exclude", "strftime", "varchar", "to_months", "$") if word in sql.lower()]
    if left:
        raise ValueError(f"the {source_name} suite's SQL uses {', '.join(left)}, which Spark does not take")
    return sql, parameters


def validation_frame(
    spark: SparkSession,
    source_name: str,
    month: str | None = None,
    history_start: str | None = None,
    return_window: int = Settings.return_window_months,
) -> DataFrame:
    """The landed partition with its violation columns (data_checks.suites: the same SQL as DuckDB's, the same
    columns), computed against the ``raw`` reference tables, as a Spark DataFrame for GX's Spark engine.
    ``history_start`` (YYYY-MM): the start of history, for the returns' pre-history rule."""
    ensure_tables(spark)
    _validated_views(spark, source_name)
    return _frame(spark, source_name, month, history_start, return_window)


def _frame(
    spark: SparkSession, source_name: str, month: str | None, history_start: str | None, return_window: int
) -> DataFrame:
    """:func:`validation_frame`, the tables and views it reads being there."""
    from data_checks.suites import frame_parameters

    sql, parameters = spark_frame_sql(source_name)
    values = frame_parameters(
        " ".join(f"${name}" for name in parameters), month, history_start, return_window
    )
    args: dict[str, Any] = {name: values[name] for name in parameters}
    return spark.sql(sql, args=args) if args else spark.sql(sql)


def validation_frames(
    spark: SparkSession,
    source_name: str,
    months: list[str],
    history_start: str | None = None,
    return_window: int = Settings.return_window_months,
) -> DataFrame:
    """Several months' validation frames in one, each row with its month (YYYY-MM) in ``PARTITION_COLUMN``:
    each month's :func:`validation_frame`, with its own parameters, the months joined by ``unionByName``."""
    from pyspark.sql import functions as F

    from data_checks.suites import PARTITION_COLUMN

    ensure_tables(spark)
    _validated_views(spark, source_name)
    frames = [
        _frame(spark, source_name, month, history_start, return_window).withColumn(
            PARTITION_COLUMN, F.lit(month)
        )
        for month in months
    ]
    return functools.reduce(lambda joined, frame: joined.unionByName(frame), frames)


def _validated_views(
    spark: SparkSession, source_name: str, state: WholeMonths | None = None, control: Path | None = None
) -> None:
    """The temporary views ``validated.<source>`` the source's suite reads (data_checks.suites): raw as it will
    be once the validated months are released (those months from ``landed``)."""
    from pyspark.sql import functions as F

    from data_checks.suites import SUITES

    names = sorted(set(re.findall(r"\bvalidated\.(\w+)", SUITES[source_name].frame_sql)))
    if not names:
        return
    state = state or whole_months(spark, control)
    for name in names:
        pending = [
            date.fromisoformat(f"{month}-01")
            for month, found in state.by_month.items()
            if name in found and found[name].validated is True and not found[name].released
        ]
        frame = spark.table(f"{RAW}.{name}")
        if pending:
            frame = frame.where(~F.col("_period").isin(pending)).unionByName(
                spark.table(f"{LANDED}.{name}").where(F.col("_period").isin(pending))
            )
        frame.createOrReplaceTempView(VALIDATED_VIEW.format(name=name))


def _returns_finding_their_lines(
    spark: SparkSession, landed: DataFrame, period: date
) -> list[tuple[date, int]]:
    """The later months of returns (in ``raw``) whose lines this month of order lines brings to the warehouse
    for the first time (pre-history returns until then), with how many: they await publication too, so the run
    restates them (issue 18; duckdb_ingest's _RETURNS_FINDING_THEIR_LINES)."""
    from pyspark.sql import functions as F

    key = ["order_id", "line_no"]
    known = spark.table(f"{RAW}.order_lines").select(*key)
    later = spark.table(f"{RAW}.returns").where(F.col("_period") > F.lit(period)).select("_period", *key)
    found = (
        later.join(landed.select(*key).distinct(), key, "inner")
        .join(known, key, "left_anti")
        .groupBy("_period")
        .count()
        .collect()
    )
    return [(row["_period"], int(row["count"])) for row in found]


def promote(
    spark: SparkSession, source_name: str, month: str | None = None, control: Path | None = None
) -> int:
    """Make a validated partition of ``landed.<source>`` that of ``raw.<source>``, replacing that month (or the
    snapshot) there: ``raw``'s partition is pointed at the generation ``landed``'s reads, and nothing is copied;
    returns its rows. A month is first recorded in the control file as awaiting publication (see
    ``months_awaiting_publication``); a snapshot is recorded as promoted only after ``raw`` has it."""
    source = BY_NAME[source_name]
    control = control or _control_of(spark)
    period = month_start(month) if month else None
    ensure_tables(spark)
    landed = _partition(spark.table(f"{LANDED}.{source.name}"), period)
    rows = landed.count()
    if period is not None:
        finding = _returns_finding_their_lines(spark, landed, period) if source.name == "order_lines" else []
        with _control(control) as con:
            con.executemany(
                f"insert or replace into {AWAITING} values (?, ?, localtimestamp, ?)",
                [[period, source.name, rows], *([month, "returns", n] for month, n in finding)],
            )
    target = f"{RAW}.{source.name}"
    location, before = _location(spark, f"{LANDED}.{source.name}", period), _location(spark, target, period)
    if location is None:  # nothing was loaded for the partition: raw has none either
        if before is not None:
            spark.sql(f"alter table {_name(RAW, source.name)} drop if exists partition {_spec(period)}")
    else:
        _point(spark, target, period, location, before)
        _release(spark, before, {location})
    if period is None:
        with _control(control) as con:
            con.execute(
                f"update {SNAPSHOT_FILES} set promoted_at = localtimestamp where source = ? and rows = ?",
                [source.name, rows],
            )
    return rows


# -- whole months --------------------------------------------------------------------------------------------


def mark_validated(
    spark: SparkSession,
    source_name: str,
    month: str,
    passed: bool,
    run_id: str | None = None,
    control: Path | None = None,
) -> int:
    """Record that the month's latest load (the generation ``landed`` reads) passed its suite, or failed it, in
    run ``run_id``; returns its rows. A validated load waits, held out of ``raw``, until its month is whole."""
    source = BY_NAME[source_name]
    control = control or _control_of(spark)
    period = month_start(month)
    ensure_tables(spark)
    table = f"{LANDED}.{source.name}"
    location = _location(spark, table, period)
    rows = _count(spark, table, period) if location is not None else 0
    with _control(control) as con:
        con.execute(
            f"insert or replace into {VALIDATIONS} values (?, ?, ?, ?, ?, ?)",
            [source.name, period, location or "", passed, run_id, rows],
        )
    return rows


def whole_months(spark: SparkSession, control: Path | None = None) -> WholeMonths:
    """Every monthly source's months as the warehouse holds them (two metastore listings per source and the
    control file's validations): what is whole, released, held."""
    control = control or _control_of(spark)
    ensure_tables(spark)
    with _control(control) as con:
        validations = {
            (source, period): (location, validated, run, rows)
            for source, period, location, validated, run, rows in con.execute(
                f"select source, period, location, validated, validation_run, rows from {VALIDATIONS}"
            ).fetchall()
        }
    partitions = []
    for source in MONTHLY:
        raw = _locations(spark, f"{RAW}.{source.name}")
        for period, location in _locations(spark, f"{LANDED}.{source.name}").items():
            if period is None:
                continue
            found = validations.get((source.name, period))
            current = found is not None and found[0] == location  # the validation is of this load
            released = raw.get(period) == location  # what raw shows passed its suite when it was promoted
            partitions.append(
                Partition(
                    source.name,
                    month_of(period),
                    found[1] if current else (True if released else None),
                    released,
                    period in raw,
                    found[2] if current else None,
                    found[3] if current else 0,
                )
            )
    return WholeMonths(partitions)


def release_whole_months(spark: SparkSession, control: Path | None = None) -> list[Released]:
    """Release every month that is whole and may be released (WholeMonths.to_release), in month order: each
    monthly source's partition of ``raw`` pointed at the generation ``landed``'s reads, the month recorded as
    awaiting publication first (see the module's docstring on a crash in between)."""
    control = control or _control_of(spark)
    state = whole_months(spark, control)
    released = []
    for month in state.to_release():
        waiting = [p.source for p in state.by_month[month].values() if not p.released]
        rows = {name: promote(spark, name, month, control) for name in waiting}
        released.append(Released(month, rows))
    return released


def release_snapshot(spark: SparkSession, source_name: str, control: Path | None = None) -> SnapshotRelease:
    """Release a validated snapshot to ``raw`` (:func:`promote`). When it changes or removes rows of the release
    before it (added rows restate nothing), every month in ``raw`` is first recorded as awaiting publication, so
    this run, or the next if it fails, restates all history with it."""
    source = BY_NAME[source_name]
    control = control or _control_of(spark)
    ensure_tables(spark)
    previous = _location(spark, f"{RAW}.{source.name}", None)
    latest = _location(spark, f"{LANDED}.{source.name}", None)
    changed, removed, columns = 0, 0, []
    if previous is not None and previous != latest:
        changed, removed, columns = _snapshot_differences(spark, source)
    restated: list[str] = []
    if (changed or removed) and source.restates:
        periods = sorted({p for s in MONTHLY for p in _locations(spark, f"{RAW}.{s.name}") if p is not None})
        with _control(control) as con:
            con.executemany(
                f"insert or replace into {AWAITING} values (?, ?, localtimestamp, ?)",
                [[period, source.name, changed + removed] for period in periods],
            )
        restated = [month_of(period) for period in periods]
    rows = promote(spark, source.name, None, control)
    return SnapshotRelease(source.name, rows, changed, removed, columns, restated)


def _snapshot_differences(spark: SparkSession, source: Source) -> tuple[int, int, list[str]]:
    """Of the rows of the snapshot in ``raw``: how many the one in ``landed`` changed (same key, other values)
    and removed, and the columns that changed."""
    from pyspark.sql import functions as F

    names = list(source.table_columns)
    key = list(source.key)
    values = [name for name in names if name not in key]
    old = _partition(spark.table(f"{RAW}.{source.name}"), None).select(*names)
    new = _partition(spark.table(f"{LANDED}.{source.name}"), None).select(*names)
    gone = old.exceptAll(new).alias("old")
    joined = gone.join(new.alias("new"), [F.col(f"old.{k}") == F.col(f"new.{k}") for k in key], "left")
    present = F.col(f"new.{key[0]}").isNotNull()
    row = joined.agg(
        F.sum(F.when(present, 1).otherwise(0)).alias("changed"),
        F.sum(F.when(present, 0).otherwise(1)).alias("removed"),
        *(
            F.sum(
                F.when(present & ~F.col(f"old.{name}").eqNullSafe(F.col(f"new.{name}")), 1).otherwise(0)
            ).alias(name)
            for name in values
        ),
    ).collect()[0]
    return (
        int(row["changed"] or 0),
        int(row["removed"] or 0),
        [name for name in values if row[name]],
    )
