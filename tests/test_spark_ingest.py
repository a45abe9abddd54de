"""Ingest and Great Expectations on Spark (issue 16): the same landing rules, suites and messages as on DuckDB.

One Spark session for the module (Hive support; warehouse and Derby metastore under a temporary data directory),
so this module runs in its own pytest process (``make test-spark`` does that). The small generated sample is loaded,
validated with GX's Spark engine and promoted on Spark, and on DuckDB by pipelines/engines/duckdb_ingest.py from
the same landing files: the raw tables must be equal row for row and every suite must say the same. Then bad
files from the DuckDB tests' corpus must fail the Spark load with DuckDB's very message and change nothing, and a
planted reference violation must fail the Spark validation with DuckDB's failure messages.
"""

from __future__ import annotations

import csv
import shutil
import time
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from data_checks.gx_run import LandingValidator
from data_checks.suites import PARTITION_COLUMN
from pipelines.engines import duckdb_ingest
from pipelines.engines.sql import literal, qualified, spark_literal
from pipelines.landing.inventory import ABSENT, take_inventory
from pipelines.landing.sources import BY_NAME as SOURCES_BY_NAME
from pipelines.landing.sources import MONTHLY, SNAPSHOTS, SOURCES
from pipelines.landing.structure import LandingError
from pipelines.lib.config import Paths
from tests.test_gx_parallel import _count_runs
from tests.test_landing_rules import _set

pytest.importorskip("pyspark", reason="the spark extra is not installed (make install-spark)")
if shutil.which("java") is None:
    pytest.skip("Spark needs Java 17 (make install-spark)", allow_module_level=True)

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipelines.engines import spark_ingest

pytestmark = pytest.mark.spark

MONTHS = ["2024-01", "2024-02"]  # two of the sample's three months keep the module short
MONTH = "2024-02"
TIMES: dict[str, float] = {}


@pytest.fixture(scope="module")
def spark_paths(tmp_path_factory) -> Paths:
    return Paths(tmp_path_factory.mktemp("spark_ingest") / "data")


@pytest.fixture(scope="module")
def spark(spark_paths: Paths):
    """A local Spark session as SparkRuntime starts one: metastore and warehouse under ``<data>/spark``."""
    home = spark_paths.data_dir / "spark"
    home.mkdir(parents=True)
    started = time.perf_counter()
    session = (
        SparkSession.builder.master("local[2]")
        .appName("cprof-test-spark-ingest")
        .config("spark.sql.warehouse.dir", str(home / "warehouse"))
        .config(
            "spark.hadoop.javax.jdo.option.ConnectionURL",
            f"jdbc:derby:;databaseName={home / 'metastore_db'};create=true",
        )
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={home}")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.storeAssignmentPolicy", "ANSI")
        .enableHiveSupport()
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    TIMES["session start"] = time.perf_counter() - started
    yield session
    session.stop()
    print("\nSpark ingest timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in TIMES.items()))


def _ingest(kind: str, load, frame, promote, validator: LandingValidator) -> dict[str, str]:
    """Every snapshot, then every month of MONTHS, loaded, validated and promoted; each outcome's message."""
    messages = {}
    started = time.perf_counter()
    for source in SNAPSHOTS:
        result = load(source.name, None)
        outcome = validator.validate(source.name, None, frame(source.name, None), str(result.path))
        assert outcome.success, outcome.message()
        messages[source.name] = outcome.message()
        assert promote(source.name, None) == result.rows
    TIMES[f"{kind}: snapshots"] = time.perf_counter() - started
    for month in MONTHS:
        started = time.perf_counter()
        for source in MONTHLY:
            result = load(source.name, month)
            outcome = validator.validate(source.name, month, frame(source.name, month), str(result.path))
            assert outcome.success, outcome.message()
            messages[f"{source.name} {month}"] = outcome.message()
            assert promote(source.name, month) == result.rows
        TIMES[f"{kind}: month {month} (6 sources)"] = time.perf_counter() - started
    return messages


@pytest.fixture(scope="module")
def both(spark: SparkSession, spark_paths: Paths, small_landing: Path, tmp_path_factory):
    """The sample ingested on DuckDB and on Spark from the same landing files; their suites' messages."""
    landing = spark_paths.landing
    shutil.copytree(small_landing, landing)
    duck_dir = tmp_path_factory.mktemp("duck")
    con = duckdb.connect(str(duck_dir / "warehouse.duckdb"))
    duck_messages = _ingest(
        "DuckDB",
        lambda source, month: duckdb_ingest.load(con, landing, source, month),
        lambda source, month: duckdb_ingest.validation_frame(con, source, month),
        lambda source, month: duckdb_ingest.promote(con, source, month),
        LandingValidator(duck_dir, defer_docs=True),
    )
    spark_messages = _ingest(
        "Spark",
        lambda source, month: spark_ingest.load(spark, landing, source, month),
        lambda source, month: spark_ingest.validation_frame(spark, source, month),
        lambda source, month: spark_ingest.promote(spark, source, month),
        LandingValidator(spark_paths.data_dir, defer_docs=True),
    )
    yield con, duck_messages, spark_messages
    con.close()


def test_months_validated_together_on_spark_give_the_outcomes_of_one_month_at_a_time(
    both, spark: SparkSession, tmp_path: Path, monkeypatch
):
    """Spark's frame of several months (validation_frames) holds each month's own frame, and validating the
    months in one GX run gives each month the outcome of validating it alone."""
    source = "support_tickets"
    files = {month: f"{month}.csv" for month in MONTHS}

    def frame_of(month):
        return spark_ingest.validation_frame(spark, source, month)

    def frames_of(months):
        return spark_ingest.validation_frames(spark, source, months)

    together = frames_of(MONTHS)
    rows = {month: int(n) for month, n in together.groupBy(PARTITION_COLUMN).count().collect()}
    assert rows == {month: frame_of(month).count() for month in MONTHS}
    for month in MONTHS:
        part = together.where(F.col(PARTITION_COLUMN) == month).drop(PARTITION_COLUMN)
        assert part.exceptAll(frame_of(month)).count() == 0 == frame_of(month).exceptAll(part).count()
    alone = [
        replace(LandingValidator(tmp_path / "alone").validate(source, m, frame_of(m), files[m]), docs=None)
        for m in MONTHS
    ]
    runs = _count_runs(monkeypatch)
    found = LandingValidator(tmp_path / "together").validate_months(source, files, frame_of, frames_of, rows)
    assert [replace(o, docs=None) for o in found] == alone
    assert runs == [f"{MONTHS[0]}..{MONTHS[-1]}"]


def _sorted(rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        sorted(rows, key=lambda row: tuple((v is None, v if v is not None else 0) for v in row)),
        columns=columns,
    )


def test_the_sample_on_spark_gives_duckdbs_raw_tables_and_suite_results(
    both, spark: SparkSession, spark_paths
):
    con, duck_messages, spark_messages = both
    assert spark_messages == duck_messages  # every suite passed, with as many expectations on both engines
    for source in SOURCES:
        for schema in ("landed", "raw"):
            declared = [
                *source.table_columns,
                "_period",
                "_source_file",
                *(["_file_sha256"] * source.versioned),
            ]
            duck_rows = con.execute(
                f"select {', '.join(declared)} from {qualified(schema, source.name)}"
            ).fetchall()
            frame = spark.table(f"{schema}.{source.name}")
            assert dict(frame.dtypes) == {
                **{name: spark_ingest.spark_type(kind) for name, kind in source.table_columns.items()},
                "_source_file": "string",
                "_loaded_at": "timestamp_ntz",
                "_period": "date",
                **({"_file_sha256": "string"} if source.versioned else {}),
            }
            spark_rows = [tuple(row) for row in frame.select(*declared).collect()]
            assert len(spark_rows) == len(duck_rows) > 0, (schema, source.name)
            pd.testing.assert_frame_equal(
                _sorted(spark_rows, declared), _sorted(duck_rows, declared), check_exact=True, obj=source.name
            )
    # The bookkeeping, in the control file: cprof reads it without Spark.
    assert spark_ingest.months_awaiting_publication(spark_paths) == MONTHS
    assert set(spark_ingest.unchanged_snapshots(spark_paths, spark_paths.landing)) == {
        s.name for s in SNAPSHOTS
    }
    assert all(spark_ingest.snapshot_promoted(spark, s.name) for s in SNAPSHOTS)
    result = spark_ingest.load(spark, spark_paths.landing, "customers", skip_unchanged=True)
    assert result.unchanged and result.rows == con.execute("select count(*) from raw.customers").fetchone()[0]
    assert spark_ingest.clear_awaiting_publication(spark_paths, date(2024, 1, 1), date(2024, 1, 1)) == len(
        MONTHLY
    )
    assert spark_ingest.months_awaiting_publication(spark_paths) == ["2024-02"]


# --- bad files: DuckDB's messages --------------------------------------------------------------------------


def _landing_copy(paths: Paths, tmp_path: Path, source: str) -> Path:
    """A landing zone in ``tmp_path`` holding only a copy of the sample's ``source`` month; that file's path."""
    path = tmp_path / "landing" / source / f"{MONTH}.csv"
    path.parent.mkdir(parents=True)
    shutil.copy(paths.landing / source / f"{MONTH}.csv", path)
    return path


def _to_parquet(path: Path, select: str) -> None:
    """The CSV replaced by a Parquet file written by DuckDB from ``select`` (``{csv}``: the CSV as text)."""
    source = f"read_csv({literal(path)}, all_varchar = true)"
    duckdb.execute(
        f"copy ({select.format(csv=source)}) to {literal(path.with_suffix('.parquet'))} (format parquet)"
    )
    path.unlink()


def _edit(column: str, value: str, row: int = 4):
    return lambda path: _set(path, row, column, value)


def _spanning_lines(path: Path) -> None:
    _set(path, 2, "order_channel", "web\nsecond line")
    _set(path, 6, "quantity", "2.5")
    _set(path, 9, "unit_price", "1.999")


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


BAD = {  # case: (source, damage)
    "quantity=2.5": ("order_lines", _edit("quantity", "2.5")),
    "quantity=1e3": ("order_lines", _edit("quantity", "1e3")),
    "quantity beyond INTEGER": ("order_lines", _edit("quantity", "99999999999")),
    "unit_price=134.124999": ("order_lines", _edit("unit_price", "134.124999")),
    "unit_price beyond its precision": ("order_lines", _edit("unit_price", "12345678901234567.00")),
    "order_date=2024-02-30": ("order_lines", _edit("order_date", "2024-02-30")),
    "opened_at without a time": ("support_tickets", _edit("opened_at", "2024-02-03")),
    "handling_minutes=12.345": ("support_tickets", _edit("handling_minutes", "12.345")),
    "score=7.0": ("survey_responses", _edit("score", "7.0")),
    "a quoted value spanning lines, two offenders": ("order_lines", _spanning_lines),
    "parquet double 99991.4 for an INTEGER": (
        "order_lines",
        lambda p: (
            _set(p, 1, "quantity", "99991"),
            _to_parquet(
                p,
                "select * replace (cast(quantity as double) + case when quantity = '99991' then 0.4 else 0 end "
                "as quantity) from {csv}",
            ),
        ),
    ),
    "parquet text that is not a number": (
        "returns",
        lambda p: (_set(p, 3, "quantity", "twelve"), _to_parquet(p, "select * from {csv}")),
    ),
    "header only, where months are never empty": ("gl_costs", lambda p: p.write_text(_lines(p)[0] + "\n")),
    "missing column": (
        "returns",
        lambda p: p.write_text("\n".join(",".join(r.split(",")[:-1]) for r in _lines(p))),
    ),
    "missing file": ("order_lines", lambda p: p.unlink()),
    "a nested Parquet column": (
        "order_lines",
        lambda p: _to_parquet(p, "select * replace ({{'id': customer_id}} as customer_id) from {csv}"),
    ),
    "a zero-byte Parquet file": (
        "order_lines",
        lambda p: (p.unlink(), p.with_suffix(".parquet").write_bytes(b"")),
    ),
    "an unterminated quote": (
        "order_lines",
        lambda p: p.write_text(p.read_text().replace(",web\n", ',"web\n', 1)),
    ),
    "a line with too few fields": (
        "order_lines",
        lambda p: p.write_text(
            "\n".join(r if i != 3 else ",".join(r.split(",")[:6]) for i, r in enumerate(_lines(p)))
        ),
    ),
    "a link out of the data directory": ("order_lines", lambda p: (p.unlink(), p.symlink_to("/etc/passwd"))),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_file_fails_on_spark_with_duckdbs_message_and_changes_nothing(
    both, spark: SparkSession, spark_paths: Paths, tmp_path: Path, case: str
):
    source, damage = BAD[case]
    path = _landing_copy(spark_paths, tmp_path, source)
    landing = path.parents[1]
    damage(path)
    landed = spark.table(f"landed.{source}").where(F.col("_period") == F.lit(date(2024, 2, 1)))
    before = landed.select(F.count("*"), F.sum(F.hash(*landed.columns))).first()

    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con, pytest.raises(LandingError) as on_duckdb:
        duckdb_ingest.load(con, landing, source, MONTH)
    with pytest.raises(LandingError) as on_spark:
        spark_ingest.load(spark, landing, source, MONTH)
    assert str(on_spark.value) == str(on_duckdb.value)
    assert landed.select(F.count("*"), F.sum(F.hash(*landed.columns))).first() == before


def test_a_malformed_csv_row_fails_naming_its_line(
    both, spark: SparkSession, spark_paths: Paths, tmp_path: Path
):
    """Both engines read a file their reader refused again with Python's csv module: the same words."""
    path = _landing_copy(spark_paths, tmp_path, "order_lines")
    landing = path.parents[1]
    lines = _lines(path)
    lines[3] = ",".join(lines[3].split(",")[:6])
    path.write_text("\n".join(lines) + "\n")
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con, pytest.raises(LandingError) as on_duckdb:
        duckdb_ingest.load(con, landing, "order_lines", MONTH)
    with pytest.raises(LandingError) as on_spark:
        spark_ingest.load(spark, landing, "order_lines", MONTH)
    assert str(on_spark.value) == str(on_duckdb.value)
    assert str(on_spark.value).startswith(
        f"{path}: does not parse: line 4: expected 10 fields (the header's), found 6"
    ), on_spark.value

    path.write_bytes(path.read_bytes().replace(b"standard", b"stand\xe4rd", 1))
    with pytest.raises(LandingError, match="not utf-8") as on_spark:
        spark_ingest.load(spark, landing, "order_lines", MONTH)
    assert str(on_spark.value).startswith(f"{path}: does not parse: line "), on_spark.value


def test_a_month_cut_short_or_changed_fails_on_spark_as_on_duckdb(
    both, spark: SparkSession, spark_paths: Paths, tmp_path: Path
):
    """Whole files on Spark: a month reloaded with far fewer rows than its promoted load, and a file that changed
    after the run's inventory, fail with DuckDB's words and change nothing; a confirmed fall loads."""
    con = both[0]
    path = spark_paths.landing / "order_lines" / f"{MONTH}.csv"
    original = path.read_text()
    header, *rows = original.splitlines(keepends=True)
    table = spark.table("landed.order_lines").where(F.col("_period") == F.lit(date(2024, 2, 1)))
    before = table.select(F.count("*"), F.sum(F.hash(*table.columns))).first()
    try:
        path.write_text(header + "".join(rows[: len(rows) // 4]))
        errors = []
        for load in (
            lambda: duckdb_ingest.load(con, spark_paths.landing, "order_lines", MONTH),
            lambda: spark_ingest.load(spark, spark_paths.landing, "order_lines", MONTH),
        ):
            with pytest.raises(LandingError) as caught:
                load()
            errors.append(str(caught.value))
        assert errors[0] == errors[1] and "--accept-row-drop 2024-02:order_lines" in errors[1], errors
        assert table.select(F.count("*"), F.sum(F.hash(*table.columns))).first() == before

        inventory = take_inventory({("order_lines", MONTH): path}, quiet_seconds=0)
        path.write_text(original)
        with pytest.raises(LandingError, match="changed since the run took its inventory"):
            spark_ingest.load(
                spark, spark_paths.landing, "order_lines", MONTH, expected=inventory["order_lines", MONTH]
            )
        assert table.select(F.count("*"), F.sum(F.hash(*table.columns))).first() == before

        path.write_text(header + "".join(rows[: len(rows) // 4]))
        assert spark_ingest.load(
            spark, spark_paths.landing, "order_lines", MONTH, accept_row_drop=True
        ).rows == (len(rows) // 4)
    finally:
        path.write_text(original)
        spark_ingest.load(spark, spark_paths.landing, "order_lines", MONTH, accept_row_drop=True)


# --- a planted violation: GX on Spark says what GX on pandas says --------------------------------------------


def test_a_planted_violation_fails_the_spark_suite_with_duckdbs_messages(
    both, spark: SparkSession, spark_paths: Paths, tmp_path: Path
):
    con = both[0]
    path = _landing_copy(spark_paths, tmp_path, "order_lines")
    landing = path.parents[1]
    _set(path, 2, "customer_id", "C999999")
    _set(path, 5, "order_date", "2031-02-14")
    _set(path, 7, "quantity", "-4")

    duckdb_ingest.load(con, landing, "order_lines", MONTH)
    on_duckdb = LandingValidator(tmp_path / "duck").validate(
        "order_lines", MONTH, duckdb_ingest.validation_frame(con, "order_lines", MONTH), str(path)
    )
    started = time.perf_counter()
    spark_ingest.load(spark, landing, "order_lines", MONTH)
    on_spark = LandingValidator(tmp_path / "spark").validate(
        "order_lines", MONTH, spark_ingest.validation_frame(spark, "order_lines", MONTH), str(path)
    )
    TIMES["Spark: load + validate a planted bad month"] = time.perf_counter() - started
    assert not on_spark.success
    assert [f.describe() for f in on_spark.failures] == [f.describe() for f in on_duckdb.failures]
    described = "\n".join(f.describe() for f in on_spark.failures)
    assert "_unknown_customer_id: 1 unexpected (e.g. C999999 at line 3)" in described
    assert "_order_date_outside_month: 1 unexpected (e.g. 2031-02-14 at line 6)" in described
    assert "expect_column_values_to_be_between on quantity: 1 unexpected (e.g. -4 at line 8)" in described
    assert on_spark.message().splitlines()[0] == on_duckdb.message().splitlines()[0]


def test_a_bad_scenarios_file_fails_the_spark_suite_with_duckdbs_messages(
    both, spark: SparkSession, spark_paths: Paths, tmp_path: Path
):
    """The scenarios suite (joins on the reference data, overlaps) runs on Spark and says what it says on DuckDB."""
    con = both[0]
    landing = tmp_path / "landing"
    shutil.copytree(spark_paths.landing / "reference", landing / "reference")
    path = landing / "reference" / "scenarios.csv"
    line = len(path.read_text().splitlines()) + 1  # the first change appended: after the sample's own
    with path.open("a", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["try", "a try", "unit_minutes", "juggle", "multiply", "-1", "2024-03", "2024-01"])
        writer.writerow(
            ["fewer_visits", "x", "driver_volume", "visit_customer:small_business", "add", "2", "", ""]
        )
    duckdb_ingest.load(con, landing, "scenarios")
    on_duckdb = LandingValidator(tmp_path / "duck").validate(
        "scenarios", None, duckdb_ingest.validation_frame(con, "scenarios"), str(path)
    )
    spark_ingest.load(spark, landing, "scenarios")
    on_spark = LandingValidator(tmp_path / "spark").validate(
        "scenarios", None, spark_ingest.validation_frame(spark, "scenarios"), str(path)
    )
    assert not on_spark.success
    assert [f.describe() for f in on_spark.failures] == [f.describe() for f in on_duckdb.failures]
    described = "\n".join(f.describe() for f in on_spark.failures)
    assert f"_unknown_target: 1 unexpected (e.g. unit_minutes juggle at line {line})" in described
    assert "_negative_multiplier: 1 unexpected" in described
    assert f"_first_month_after_last_month: 1 unexpected (e.g. 2024-03 > 2024-01 at line {line})" in described
    assert "_operation_refused: 1 unexpected" in described
    assert "_overlapping_change: 2 unexpected" in described


def test_an_absent_optional_snapshot_loads_on_spark_as_no_rows(
    both, spark: SparkSession, spark_paths: Paths, tmp_path: Path
):
    landing = tmp_path / "landing"
    shutil.copytree(spark_paths.landing / "reference", landing / "reference")
    (landing / "reference" / "scenarios.csv").unlink()
    result = spark_ingest.load(spark, landing, "scenarios", skip_unchanged=True)
    assert (result.rows, result.sha256, result.unchanged) == (0, ABSENT, False)
    outcome = LandingValidator(tmp_path / "gx").validate(
        "scenarios", None, spark_ingest.validation_frame(spark, "scenarios"), str(result.path)
    )
    assert outcome.success, outcome.message()
    assert spark_ingest.promote(spark, "scenarios") == 0
    assert spark.table("raw.scenarios").count() == 0
    assert "scenarios" in spark_ingest.unchanged_snapshots(spark_paths, landing)  # absent, as promoted
    assert spark_ingest.load(spark, landing, "scenarios", skip_unchanged=True).unchanged
    # the file back: loaded and promoted as before
    back = spark_ingest.load(spark, spark_paths.landing, "scenarios", skip_unchanged=True)
    assert back.rows > 0 and not back.unchanged
    assert spark_ingest.promote(spark, "scenarios") == back.rows


def test_accepted_forms_load_to_the_values_written(
    both, spark: SparkSession, spark_paths: Paths, tmp_path: Path
):
    path = _landing_copy(spark_paths, tmp_path, "order_lines")
    landing = path.parents[1]
    _set(path, 1, "unit_price", "12.3400")  # zeros beyond the scale change nothing
    _set(path, 1, "quantity", "+7")
    spark_ingest.load(spark, landing, "order_lines", MONTH)
    with path.open(newline="") as handle:
        first = next(iter(csv.DictReader(handle)))
    row = (
        spark.table("landed.order_lines")
        .where((F.col("order_id") == first["order_id"]) & (F.col("line_no") == int(first["line_no"])))
        .select("quantity", "unit_price")
        .first()
    )
    assert tuple(row) == (7, Decimal("12.34"))

    # The same month as Parquet with quantity stored as a double: 7.0 is the INTEGER 7.
    _to_parquet(path, "select * replace (cast(quantity as double) as quantity) from {csv}")
    assert spark_ingest.load(spark, landing, "order_lines", MONTH).path.suffix == ".parquet"
    landed = spark.table("landed.order_lines").where(F.col("order_id") == first["order_id"])
    assert landed.where(F.col("line_no") == int(first["line_no"])).select("quantity").first()[0] == 7


def test_a_header_only_month_empties_the_month_where_that_is_normal(
    both, spark: SparkSession, spark_paths: Paths, tmp_path: Path
):
    path = _landing_copy(spark_paths, tmp_path, "returns")
    path.write_text(_lines(path)[0] + "\n")
    landed = spark.table("landed.returns").where(F.col("_period") == F.lit(date(2024, 2, 1)))
    assert landed.count() > 0
    with pytest.raises(
        LandingError, match=r"0 rows where its previous load, validated and promoted, had \d+"
    ):
        spark_ingest.load(spark, path.parents[1], "returns", MONTH)  # a month emptied: confirmed, it loads
    assert spark_ingest.load(spark, path.parents[1], "returns", MONTH, accept_row_drop=True).rows == 0
    assert landed.count() == 0
    assert spark_ingest.promote(spark, "returns", MONTH) == 0
    assert spark.table("raw.returns").where(F.col("_period") == F.lit(date(2024, 2, 1))).count() == 0


def test_a_changed_snapshot_is_not_promoted_until_it_is(
    both, spark: SparkSession, spark_paths: Paths, tmp_path: Path
):
    landing = tmp_path / "landing"
    shutil.copytree(spark_paths.landing / "reference", landing / "reference")
    path = landing / "reference" / "products.csv"
    _set(path, 1, "list_price", "1.00")
    assert "products" not in spark_ingest.unchanged_snapshots(spark_paths, landing)
    result = spark_ingest.load(spark, landing, "products", skip_unchanged=True)
    assert not result.unchanged
    assert not spark_ingest.snapshot_promoted(spark, "products")  # landed differs from raw
    assert spark_ingest.promote(spark, "products") == result.rows
    assert spark_ingest.snapshot_promoted(spark, "products")
    assert "products" in spark_ingest.unchanged_snapshots(spark_paths, landing)


def test_rows_are_written_once_and_promotion_points_raw_at_them(
    both, spark: SparkSession, spark_paths: Paths, tmp_path: Path
):
    """A load writes its rows once, into a generation folder; promotion points raw's partition at that folder
    (no copy); a folder neither table reads is deleted: the one raw left, a failed load's, one a killed process
    left behind."""
    warehouse = spark_paths.data_dir / "spark" / "warehouse"
    generations = warehouse / spark_ingest.GENERATIONS_DIR / "order_lines" / "2024-02-01"
    period = date(2024, 2, 1)

    def where(schema: str) -> str:
        return spark_ingest._location(spark, f"{schema}.order_lines", period)

    def content(schema: str):
        table = spark.table(f"{schema}.order_lines").where(F.col("_period") == F.lit(period))
        table = table.drop("_loaded_at", "_source_file")
        return table.select(F.count("*"), F.sum(F.hash(*table.columns))).first()

    def files_of_the_month() -> set[Path]:
        return {
            p.parent
            for p in warehouse.rglob("part-*.parquet")
            if "order_lines" in str(p) and "2024-02" in str(p)
        }

    spark_ingest.load(spark, spark_paths.landing, "order_lines", MONTH)  # earlier tests left other rows
    spark_ingest.promote(spark, "order_lines", MONTH)
    assert [f"file:{p}" for p in generations.iterdir()] == [where("landed")] == [where("raw")]
    assert files_of_the_month() == set(generations.iterdir())  # one copy of the month's rows
    promoted = content("raw")

    path = _landing_copy(spark_paths, tmp_path, "order_lines")
    # A generation as a process killed between writing it and pointing landed at it leaves it behind.
    left_behind = generations / "0123456789abcdef"
    left_behind.mkdir()
    (left_behind / "part-00000-x.snappy.parquet").write_bytes(b"")
    spark_ingest.load(spark, path.parents[1], "order_lines", MONTH)
    assert not left_behind.exists()
    assert where("landed") != where("raw")
    assert content("raw") == promoted  # quarantine: raw reads what it read
    assert len(list(generations.iterdir())) == 2

    _set(path, 3, "quantity", "2.5")  # fails the load inside Spark's job
    with pytest.raises(LandingError, match="quantity"):
        spark_ingest.load(spark, path.parents[1], "order_lines", MONTH)
    assert len(list(generations.iterdir())) == 2  # the failed load's generation is gone

    spark_ingest.promote(spark, "order_lines", MONTH)
    assert where("raw") == where("landed")
    assert [f"file:{p}" for p in generations.iterdir()] == [where("raw")]  # raw's old generation deleted
    assert content("raw") == content("landed") == promoted
    assert len(files_of_the_month()) == 1


def test_a_spark_literal_reads_back_as_its_text(spark: SparkSession):
    """Paths reach Spark's ``alter table ... location`` as literals: quotes and backslashes survive its parser."""
    for text in ["/data/it's here", "C:\\data\\new", "a\\'b", "\\\\", "semi;colon -- dash"]:
        assert spark.sql(f"select {spark_literal(text)} as t").first()["t"] == text


def _with_optional_columns(
    path: Path, names: list[str], con: duckdb.DuckDBPyConnection, bad: str | None = None
) -> None:
    """The returns file with the optional columns ``names`` appended: each return's line as the source system
    exports it (as raw has it on ``con``: a return contradicting its line fails the suite), empty on every third
    return; ``bad``: the first return's unit_price."""
    rows = [line.split(",") for line in _lines(path)]
    facts = {
        (order, line): dict(
            zip(["order_date", "customer_id", "unit_price", "unit_cost"], values, strict=True)
        )
        for order, line, *values in con.execute(
            "select l.order_id, l.line_no, strftime(l.order_date, '%Y-%m-%d'), l.customer_id, "
            "cast(l.unit_price as varchar), cast(p.unit_cost as varchar) "
            "from raw.order_lines as l join raw.products as p using (product_id)"
        ).fetchall()
    }
    rows[0] += names
    for i, row in enumerate(rows[1:], start=1):
        line = facts[row[1], int(row[2])]
        row += ["" if i % 3 == 0 else line[name] for name in names]
    if bad is not None:
        rows[1][rows[0].index("unit_price")] = bad
    path.write_text("\n".join(",".join(row) for row in rows) + "\n")


@pytest.mark.parametrize(
    "names",
    [["order_date", "customer_id", "unit_price", "unit_cost"], ["order_date", "customer_id"]],
    ids=["all four", "two"],
)
def test_the_returns_optional_columns_load_on_spark_as_on_duckdb(
    both, spark: SparkSession, spark_paths: Paths, tmp_path: Path, names: list[str]
):
    """The same rows in ``landed`` on both engines, and the same outcome of the returns' suite over them."""
    con = both[0]
    path = _landing_copy(spark_paths, tmp_path, "returns")
    _with_optional_columns(path, names, con)
    declared = [*SOURCES_BY_NAME["returns"].table_columns, "_period"]
    duckdb_ingest.load(con, path.parents[1], "returns", MONTH)
    duck_rows = con.execute(
        f"select {', '.join(declared)} from landed.returns where _period = ?", [date(2024, 2, 1)]
    ).fetchall()
    spark_ingest.load(spark, path.parents[1], "returns", MONTH)
    spark_rows = [
        tuple(row)
        for row in spark.table("landed.returns")
        .where(F.col("_period") == F.lit(date(2024, 2, 1)))
        .select(*declared)
        .collect()
    ]
    assert any(row[declared.index("customer_id")] is not None for row in spark_rows)
    assert len(spark_rows) == len(duck_rows) > 0
    pd.testing.assert_frame_equal(
        _sorted(spark_rows, declared), _sorted(duck_rows, declared), check_exact=True, obj="returns"
    )
    on_duckdb = LandingValidator(tmp_path / "duck").validate(
        "returns", MONTH, duckdb_ingest.validation_frame(con, "returns", MONTH), str(path)
    )
    on_spark = LandingValidator(tmp_path / "spark").validate(
        "returns", MONTH, spark_ingest.validation_frame(spark, "returns", MONTH), str(path)
    )
    assert on_spark.success == on_duckdb.success and on_duckdb.success  # each line as raw has it
    assert on_spark.message().splitlines()[0] == on_duckdb.message().splitlines()[0]
    assert [f.describe() for f in on_spark.failures] == [f.describe() for f in on_duckdb.failures]


def test_an_inexact_value_in_an_optional_column_fails_on_spark_with_duckdbs_message(
    both, spark: SparkSession, spark_paths: Paths, tmp_path: Path
):
    path = _landing_copy(spark_paths, tmp_path, "returns")
    _with_optional_columns(
        path, ["order_date", "customer_id", "unit_price", "unit_cost"], both[0], bad="12.345"
    )
    landed = spark.table("landed.returns").where(F.col("_period") == F.lit(date(2024, 2, 1)))
    before = landed.select(F.count("*"), F.sum(F.hash(*landed.columns))).first()
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con, pytest.raises(LandingError) as on_duckdb:
        duckdb_ingest.load(con, path.parents[1], "returns", MONTH)
    with pytest.raises(LandingError) as on_spark:
        spark_ingest.load(spark, path.parents[1], "returns", MONTH)
    assert "unit_price" in str(on_spark.value) and "12.345" in str(on_spark.value)
    assert str(on_spark.value) == str(on_duckdb.value)
    assert landed.select(F.count("*"), F.sum(F.hash(*landed.columns))).first() == before


def test_a_month_reaches_raw_on_spark_only_whole_and_a_changed_snapshot_restates_history(
    both, spark: SparkSession, spark_paths: Paths, monkeypatch
):
    """Whole months on Spark (pipelines/engines/whole_months.py): the third month's five good sources wait out of
    raw while its returns fail; the returns are checked against the month's validated, unreleased order lines;
    the corrected month is released whole. Then a changed customer's segment restates every month in raw."""
    landing, third, control = spark_paths.landing, "2024-03", spark_ingest.control_path(spark_paths)
    validator = LandingValidator(spark_paths.data_dir / "whole", defer_docs=True)
    returns = landing / "returns" / f"{third}.csv"
    good = returns.read_text()
    march = (landing / "order_lines" / f"{third}.csv").read_text().splitlines()[1:]
    orders = {row.split(",")[0] for row in march}
    assert any(
        row.split(",")[1] in orders for row in good.splitlines()[1:]
    )  # returns of the month's own lines
    returns.write_text(good + "R99999999,O999999999,1,2024-03-20,1,damaged\n")

    def validate(source: str) -> bool:
        result = spark_ingest.load(spark, landing, source, third)
        frame = spark_ingest.validation_frame(
            spark, source, third, "2024-01", 0
        )  # every return finds its line
        outcome = validator.validate(source, third, frame, str(result.path))
        spark_ingest.mark_validated(spark, source, third, outcome.success, "run-1")
        return outcome.success

    assert [validate(source.name) for source in MONTHLY] == [s.name != "returns" for s in MONTHLY]
    assert spark_ingest.release_whole_months(spark) == []
    for source in MONTHLY:
        assert (
            spark.table(f"raw.{source.name}").where(F.col("_period") == F.lit(date(2024, 3, 1))).count() == 0
        )
    (held,) = spark_ingest.whole_months(spark).holdups([third])
    assert held.sentence(lambda s, m: f"{s}/{m}.csv") == (
        f"{third} is not published (held out of raw until whole): returns/{third}.csv failed its suite in run run-1"
    )

    returns.write_text(good)
    assert validate("returns")  # its lines are validated, not in raw: the suite reads validated.order_lines
    (released,) = spark_ingest.release_whole_months(spark)
    assert released.month == third and set(released.rows) == {s.name for s in MONTHLY}
    for source in MONTHLY:
        assert (
            spark.table(f"raw.{source.name}").where(F.col("_period") == F.lit(date(2024, 3, 1))).count()
            == (released.rows[source.name])
        )
    with duckdb.connect(str(control)) as con:
        con.execute("delete from landed._awaiting_publication")  # published

    customers = landing / "reference" / "customers.csv"
    header, first, *rest = customers.read_text().splitlines()
    cells = first.split(",")
    cells[2] = "enterprise" if cells[2] != "enterprise" else "small_business"
    customers.write_text("\n".join([header, ",".join(cells), *rest]) + "\n")
    spark_ingest.load(spark, landing, "customers")
    release = spark_ingest.release_snapshot(spark, "customers")
    assert (release.changed, release.removed, release.columns) == (1, 0, ["segment"])
    assert release.restated == ["2024-01", "2024-02", third]
    with duckdb.connect(str(control), read_only=True) as con:
        assert con.execute(
            "select distinct strftime(period, '%Y-%m') from landed._awaiting_publication order by 1"
        ).fetchall() == [("2024-01",), ("2024-02",), (third,)]
