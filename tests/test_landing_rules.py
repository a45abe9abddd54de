"""What a landing file must be, as a data engineer meets it: a value not written exactly in its column's declared
type fails the file (file, line or Parquet row, column, value, rule) and nothing reaches landed; a file the spec
does not name fails the run with its path (hidden and editor files are ignored and listed); an empty month fails
where it is not normal and loads 0 rows where it is."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey, DagsterInstance, SkipReason, build_sensor_context, materialize

from data_checks.gx_run import LandingValidator
from pipelines.defs.assets.ingest import ingest_assets
from pipelines.defs.automation import landing_sensor
from pipelines.defs.partitions import PARTITION_NAME_TAG, months_of_run, partitions_of, range_tags
from pipelines.defs.refresh_requests import refresh_requests
from pipelines.defs.resources import DataDir, resources_for
from pipelines.engines.duckdb_ingest import LandingError, load, promote, validation_frame
from pipelines.engines.sql import literal
from pipelines.landing.inventory import (
    file_sha256,
    find_file,
    landing_inventory,
    months_in_landing,
    take_inventory,
)
from pipelines.landing.sources import BY_NAME, MONTHLY, SNAPSHOTS
from pipelines.lib.config import Paths
from pipelines.lib.settings import Settings
from pipelines.publication.publish import current_database
from pipelines.run import run_pipeline
from tests.test_data_checks import _copy, publication_fingerprint

MONTH = "2024-02"


@pytest.fixture
def con(data_paths: Paths):
    """A warehouse with the reference snapshots loaded."""
    data_paths.data_dir.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(data_paths.warehouse)) as connection:
        for source in SNAPSHOTS:
            load(connection, data_paths.landing, source.name)
        yield connection


def _set(path: Path, row: int, column: str, value: str) -> None:
    """Set one field of data row ``row`` (1 = the first under the header), through the csv module."""
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    rows[row][rows[0].index(column)] = value
    with path.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)


def _landed(con, source: str) -> tuple:
    return con.execute(
        f"select count(*), sum(hash(t)) from (select * exclude (_loaded_at) from landed.{source}) t"
    ).fetchone()


INEXACT = [  # (source, column, value, declared type)
    ("order_lines", "quantity", "2.5", "INTEGER"),
    ("order_lines", "quantity", "1e3", "INTEGER"),
    ("order_lines", "quantity", "0x10", "INTEGER"),
    ("order_lines", "quantity", "1_000", "INTEGER"),
    ("order_lines", "quantity", "99999999999", "INTEGER"),  # beyond INTEGER's range
    ("order_lines", "unit_price", "12345678901234567.00", "DECIMAL(18,2)"),  # beyond its precision
    ("order_lines", "unit_price", "134.124999", "DECIMAL(18,2)"),
    ("order_lines", "discount_amount", "1,5", "DECIMAL(18,2)"),
    ("order_lines", "order_date", "02/14/2024", "DATE"),
    ("order_lines", "order_date", "2024-02-30", "DATE"),
    ("support_tickets", "opened_at", "2024-02-03", "TIMESTAMP"),
    ("support_tickets", "handling_minutes", "12.345", "DECIMAL(10,2)"),
    ("survey_responses", "score", "7.0", "INTEGER"),
]


@pytest.mark.parametrize(
    ("source", "column", "value", "kind"), INEXACT, ids=[f"{c}={v}" for _, c, v, _ in INEXACT]
)
def test_a_value_not_exactly_of_its_type_fails_the_file(con, data_paths: Paths, source, column, value, kind):
    load(con, data_paths.landing, source, MONTH)
    before = _landed(con, source)
    path = data_paths.landing / source / f"{MONTH}.csv"
    _set(path, 4, column, value)
    with pytest.raises(LandingError) as caught:
        load(con, data_paths.landing, source, MONTH)
    message = str(caught.value)
    assert message.startswith(f"{path}: 1 value is not written exactly"), message
    assert f"line 5, column {column}, value {value!r}: expected {kind}, " in message, message
    assert _landed(con, source) == before  # nothing of the file reached landed


def test_line_numbers_count_quoted_values_that_span_lines(con, data_paths: Paths):
    path = data_paths.landing / "order_lines" / f"{MONTH}.csv"
    _set(path, 2, "order_channel", "web\nsecond line")  # quoted by the csv writer: row 2 takes lines 3-4
    _set(path, 6, "quantity", "2.5")
    _set(path, 9, "unit_price", "1.999")
    with pytest.raises(LandingError) as caught:
        load(con, data_paths.landing, "order_lines", MONTH)
    message = str(caught.value)
    assert "2 values are not written exactly" in message
    assert "line 8, column quantity, value '2.5'" in message  # row 6 would be line 7 without the extra line
    assert (
        "line 11, column unit_price, value '1.999': expected DECIMAL(18,2), a decimal number with at most 2"
        in message
    )


def test_accepted_forms_load_to_the_values_written(con, data_paths: Paths):
    path = data_paths.landing / "order_lines" / f"{MONTH}.csv"
    _set(path, 1, "unit_price", "12.3400")  # zeros beyond the scale change nothing
    _set(path, 1, "quantity", "+7")
    load(con, data_paths.landing, "order_lines", MONTH)
    with path.open(newline="") as handle:
        first = next(iter(csv.DictReader(handle)))
    row = con.execute(
        "select quantity, unit_price from landed.order_lines where order_id = ? and line_no = ?",
        [first["order_id"], int(first["line_no"])],
    ).fetchone()
    assert row == (7, Decimal("12.34"))


def _to_parquet(con, path: Path, select: str, options: str = "") -> Path:
    """The CSV written as Parquet beside it by ``select`` (``{csv}`` is the CSV read with ``options``), and the
    CSV removed."""
    target = path.with_suffix(".parquet")
    source = f"read_csv({literal(path)}{options})"
    con.execute(f"copy ({select.format(csv=source)}) to {literal(target)} (format parquet)")
    path.unlink()
    return target


def test_parquet_doubles_load_only_when_exact(con, data_paths: Paths):
    csv_path = data_paths.landing / "order_lines" / f"{MONTH}.csv"
    _set(csv_path, 1, "quantity", "99991")
    doubles = "select * replace (cast(quantity as double) {change} as quantity) from {{csv}}"
    shutil.copy(csv_path, csv_path.with_name("source.csv"))
    parquet = _to_parquet(con, csv_path, doubles.format(change=""))
    rows = load(con, data_paths.landing, "order_lines", MONTH).rows  # 99991.0 is the INTEGER 99991
    assert con.execute("select count(*) from landed.order_lines where quantity = 99991").fetchone()[0] == 1
    assert rows == con.execute("select count(*) from read_parquet(?)", [str(parquet)]).fetchone()[0]
    before = _landed(con, "order_lines")
    parquet.unlink()
    csv_path.with_name("source.csv").rename(csv_path)
    parquet = _to_parquet(
        con, csv_path, doubles.format(change="+ case when quantity = 99991 then 0.4 else 0 end")
    )
    with pytest.raises(LandingError) as caught:
        load(con, data_paths.landing, "order_lines", MONTH)
    message = str(caught.value)
    assert message.startswith(f"{parquet}: 1 value is not written exactly"), message
    assert "row 1, column quantity, value '99991.4': expected INTEGER" in message, message
    assert _landed(con, "order_lines") == before


def test_parquet_text_that_does_not_parse_names_row_column_and_value(con, data_paths: Paths):
    csv_path = data_paths.landing / "returns" / f"{MONTH}.csv"
    _set(csv_path, 3, "quantity", "twelve")
    parquet = _to_parquet(con, csv_path, "select * from {csv}", options=", all_varchar = true")
    with pytest.raises(LandingError) as caught:
        load(con, data_paths.landing, "returns", MONTH)
    message = str(caught.value)
    assert message.startswith(f"{parquet}: 1 value"), message
    assert "row 3, column quantity, value 'twelve': expected INTEGER" in message, message
    assert "LINE 1" not in message and "cast(" not in message  # not an SQL fragment


# --- file names --------------------------------------------------------------------------------------

MISNAMED = [
    "order_lines/2024-13.csv",
    "order_lines/2024-1.csv",
    "order_lines/2024-01.CSV",
    "returns/2024-02.txt",
    "gl_costs/2024-02 (copy).csv",
    "reference/customer.csv",
    "orders/2024-02.csv",
    "notes.txt",
]
IGNORED = [
    "order_lines/.~lock.2024-02.csv#",
    "order_lines/~$2024-02.csv",
    "returns/.2024-02.csv.swp",
    ".DS_Store",
]


@pytest.mark.parametrize("name", MISNAMED)
def test_a_file_the_spec_does_not_name_fails_with_its_path(data_paths: Paths, name: str):
    path = data_paths.landing / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("order_id,line_no\n")
    with pytest.raises(LandingError) as caught:
        months_in_landing(data_paths.landing)
    assert str(caught.value).startswith(f"{path.parent if name.startswith('orders/') else path}: ")


def test_hidden_and_editor_files_are_ignored_and_listed(data_paths: Paths):
    for name in IGNORED:
        (data_paths.landing / name).write_text("x")
    inventory = landing_inventory(data_paths.landing)
    assert inventory.months == ["2024-01", "2024-02", "2024-03"] and not inventory.problems
    assert sorted(inventory.ignored) == sorted(data_paths.landing / name for name in IGNORED)


def test_the_sensor_reports_a_misnamed_file_and_requests_nothing(data_paths: Paths):
    bad = data_paths.landing / "order_lines" / "2024-13.csv"
    bad.write_text("x\n")
    with DagsterInstance.ephemeral() as instance:
        requests, lines = refresh_requests(
            instance, data_paths.landing, partitions_of(Settings(data_dir=data_paths.data_dir))
        )
        assert requests == [] and any(str(bad) in line and "not a month" in line for line in lines), lines
        context = build_sensor_context(
            instance=instance, resources={"data_dir": DataDir(path=str(data_paths.data_dir))}
        )
        result = landing_sensor(partitions_of(Settings(data_dir=data_paths.data_dir)))(context)
    assert isinstance(result, SkipReason) and str(bad) in result.skip_message


def test_a_misnamed_month_fails_cprof_run_and_leaves_the_publication(published_sample: Paths, tmp_path: Path):
    paths = _copy(published_sample, tmp_path / "data")
    before = publication_fingerprint(paths.published)
    bad = paths.landing / "order_lines" / "2024-13.csv"
    (paths.landing / "order_lines" / "2024-03.csv").rename(bad)  # the March file, misnamed
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run"],
        env={**os.environ, "CPROF_DATA_DIR": str(paths.data_dir)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode != 0
    assert f"{bad}: '2024-13' is not a month" in done.stderr + done.stdout, done.stderr
    assert publication_fingerprint(paths.published) == before


# --- empty months ------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["order_lines", "gl_costs"])
def test_an_empty_month_fails_where_it_is_not_normal(con, data_paths: Paths, source: str):
    path = data_paths.landing / source / f"{MONTH}.csv"
    path.write_text(path.read_text().splitlines()[0] + "\n")
    with pytest.raises(LandingError, match="no rows: an empty .* month is not normal") as caught:
        load(con, data_paths.landing, source, MONTH)
    assert str(caught.value).startswith(str(path))


@pytest.mark.parametrize("source", ["returns", "support_tickets", "sales_visits", "survey_responses"])
def test_an_empty_month_loads_zero_rows_where_it_is_normal(con, data_paths: Paths, source: str):
    path = data_paths.landing / source / f"{MONTH}.csv"
    path.write_text(path.read_text().splitlines()[0] + "\n")
    assert load(con, data_paths.landing, source, MONTH).rows == 0


def test_a_run_launched_in_dagster_fails_on_a_misnamed_file_in_its_folder(data_paths: Paths):
    """Runs from the UI or the sensor do not go through ``cprof``: the landed asset checks its own folder."""
    bad = data_paths.landing / "returns" / "2024-1.csv"
    bad.write_text("return_id\n")
    lock = data_paths.landing / "sales_visits" / ".~lock.2024-01.csv#"
    lock.write_text("lock")
    landed = [
        a
        for a in ingest_assets(partitions_of(Settings(data_dir=data_paths.data_dir)))
        if a.key in (AssetKey(["landed", "returns"]), AssetKey(["landed", "sales_visits"]))
    ]
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            landed,
            partition_key="2024-01-01",
            resources=resources_for(Settings(data_dir=data_paths.data_dir)),
            instance=instance,
            raise_on_error=False,
        )
        failure = next(e for e in result.all_events if e.is_step_failure)
        visits = instance.get_latest_materialization_event(AssetKey(["landed", "sales_visits"]))
    assert failure.step_key == "landed__returns"
    assert f"{bad}: '2024-1' is not a month" in failure.step_failure_data.error.cause.message
    assert visits is not None and visits.asset_materialization.metadata["ignored"].value == [str(lock)]


# --- whole files -------------------------------------------------------------------------------------

# A writer in its own process, as an export is: appends ``rest`` to ``path`` in small pieces, starting once the
# process ``pid`` has the file open (a load reading it) or at once when pid is 0; exits 3 if that never happens.
WRITER = """
import os, sys, time
path, rest, pid, pause = sys.argv[1], open(sys.argv[2], "rb").read(), int(sys.argv[3]), float(sys.argv[4])
deadline = time.monotonic() + 60
print("ready", flush=True)
def reading():
    fds = f"/proc/{pid}/fd"
    for fd in os.listdir(fds):
        try:
            if os.readlink(f"{fds}/{fd}") == path:
                return True
        except OSError:
            pass
    return False
while pid and not reading():
    if time.monotonic() > deadline:
        sys.exit(3)
    time.sleep(0.0005)
with open(path, "ab") as handle:
    for start in range(0, len(rest), max(1, len(rest) // 40)):
        handle.write(rest[start : start + max(1, len(rest) // 40)])
        handle.flush()
        time.sleep(pause)
"""


def _writer(path: Path, rest: bytes, tmp_path: Path, pid: int = 0, pause: float = 0.005) -> subprocess.Popen:
    pending = tmp_path / "rest.bin"
    pending.write_bytes(rest)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(pending), str(pid), str(pause)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout.readline() == "ready\n"  # started, and watching
    return writer


def _half_written(path: Path, copies: int = 1) -> bytes:
    """Leave the first half of the file (its data lines repeated ``copies`` times) at ``path``; return the rest."""
    header, *rows = path.read_text().splitlines(keepends=True)
    rows = rows * copies
    path.write_text(header + "".join(rows[: len(rows) // 2]))
    return "".join(rows[len(rows) // 2 :]).encode()


def test_a_file_that_grows_while_it_is_loaded_fails_naming_it_and_loads_nothing(
    con, data_paths: Paths, tmp_path: Path
):
    path = data_paths.landing / "order_lines" / f"{MONTH}.csv"
    rest = _half_written(path, copies=1000)  # about 275,000 lines: the load reads for a while
    inventory = take_inventory({("order_lines", MONTH): path}, quiet_seconds=0)
    before = _landed(con, "order_lines")
    writer = _writer(path, rest, tmp_path, pid=os.getpid())
    try:
        with pytest.raises(LandingError) as caught:
            load(con, data_paths.landing, "order_lines", MONTH, expected=inventory["order_lines", MONTH])
    finally:
        assert writer.wait(timeout=60) == 0, "the writer never saw the load open the file"
    message = str(caught.value)
    assert message.startswith(f"{path}: changed since the run took its inventory"), message
    assert "rename it into place" in message
    assert _landed(con, "order_lines") == before  # nothing of it reached landed


def test_the_inventory_waits_for_recent_files_and_names_one_still_being_written(data_paths: Paths, tmp_path):
    path = data_paths.landing / "order_lines" / f"{MONTH}.csv"
    rest = _half_written(path, copies=4)
    writer = _writer(path, rest, tmp_path, pause=0.1)  # 40 pieces, one every 0.1 s
    try:
        with pytest.raises(
            LandingError, match=r"still being written: it went from [\d,]+ to [\d,]+ bytes within 1s"
        ):
            take_inventory({("order_lines", MONTH): path}, quiet_seconds=1)
    finally:
        writer.wait(timeout=60)
    started = time.monotonic()
    path.touch()  # complete now, and just modified: watched for a second, then taken
    inventory = take_inventory({("order_lines", MONTH): path}, quiet_seconds=1)
    assert time.monotonic() - started >= 0.9
    assert inventory["order_lines", MONTH].sha256 == file_sha256(path)


def test_a_runs_inventory_holds_every_file_of_its_months_whatever_step_takes_it(data_paths: Paths):
    """The first step to load a file takes the run's inventory, a snapshot's step included: from the run's tags."""
    for tags, months in (
        (range_tags("2024-02", "2024-03"), ["2024-02", "2024-03"]),
        ({PARTITION_NAME_TAG: "2024-01-01"}, ["2024-01"]),
        ({}, []),  # a run of no partition (the reference snapshots alone)
    ):
        assert months_of_run(tags) == months
        inventory = DataDir(path=str(data_paths.data_dir)).run_inventory("run", months_of_run(tags))
        expected = {(s.name, None) for s in SNAPSHOTS} | {(s.name, m) for m in months for s in MONTHLY}
        assert set(inventory) == expected
        for (source, month), stamp in inventory.items():
            assert stamp.path == find_file(data_paths.landing, BY_NAME[source], month)
            assert stamp.sha256 == file_sha256(stamp.path) and stamp.bytes == stamp.path.stat().st_size


def test_a_month_cut_short_against_its_promoted_load_fails_unless_confirmed(
    con, data_paths: Paths, monkeypatch
):
    path = data_paths.landing / "order_lines" / f"{MONTH}.csv"
    full = load(con, data_paths.landing, "order_lines", MONTH).rows
    promote(con, "order_lines", MONTH)
    header, *rows = path.read_text().splitlines(keepends=True)
    path.write_text(header + "".join(rows[: int(full * 0.4)]))  # 60 % of the lines gone
    before = _landed(con, "order_lines")
    with pytest.raises(LandingError) as caught:
        load(con, data_paths.landing, "order_lines", MONTH)
    message = str(caught.value)
    assert message.startswith(
        f"{path}: {int(full * 0.4):,} rows where its previous load, validated and promoted, had"
    ), message
    assert f"--accept-row-drop {MONTH}:order_lines" in message and "CPROF_MAX_ROW_DROP=0.3" in message
    assert _landed(con, "order_lines") == before
    # a fall within the limit (the setting max_row_drop) loads
    assert load(con, data_paths.landing, "order_lines", MONTH, max_row_drop=0.7).rows == int(full * 0.4)
    assert load(con, data_paths.landing, "order_lines", MONTH, accept_row_drop=True).rows == int(full * 0.4)


def _cprof(paths: Paths, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--progress", "steps", *args],
        env={**os.environ, "CPROF_DATA_DIR": str(paths.data_dir), **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.system
def test_a_run_never_publishes_a_half_written_month(published_sample: Paths, tmp_path: Path):
    """The issue's case: December's file half written when the run reads it. Being written, it fails the run's
    inventory; stopped half way, it fails its load against the month's previous load, until confirmed."""
    paths = _copy(published_sample, tmp_path / "data")
    before = publication_fingerprint(paths.published)
    path = paths.landing / "order_lines" / "2024-03.csv"
    header, *rows = path.read_text().splitlines(keepends=True)
    rest = _half_written(path)
    writer = _writer(path, rest, tmp_path, pause=0.5)  # 20 s of writing
    try:
        done = _cprof(paths, "--from", "2024-03", "--to", "2024-03")
    finally:
        writer.kill()
        writer.wait()
    assert done.returncode == 1
    assert f"{path}: still being written" in done.stderr, done.stderr
    assert publication_fingerprint(paths.published) == before

    kept = int(len(rows) * 0.4)
    path.write_text(header + "".join(rows[:kept]))  # the writer stopped with 40 % of the month written
    done = _cprof(paths, "--from", "2024-03", "--to", "2024-03")
    assert done.returncode == 1
    assert (
        f"{path}: {kept:,} rows where its previous load, validated and promoted, had {len(rows):,}"
        in done.stderr
    )
    assert publication_fingerprint(paths.published) == before

    done = _cprof(paths, "--from", "2024-03", "--to", "2024-03", "--accept-row-drop", "2024-03:order_lines")
    assert done.returncode == 0, done.stderr
    with duckdb.connect(str(current_database(paths.published)), read_only=True) as published:
        revenue = published.execute(
            "select sum(gross_revenue) from marts.customer_profitability where period = date '2024-03-01'"
        ).fetchone()[0]
        landed = published.execute(
            "select sum(cast(quantity as integer) * cast(unit_price as decimal(18, 2))) "
            f"from read_csv({literal(path)}, header = true, all_varchar = true)"
        ).fetchone()[0]
    assert revenue == landed  # what the confirmed file holds, and nothing else


# --- what is not data ---------------------------------------------------------------------------------

SECRET = "TOP-SECRET-7f3a: a line no error may show"


def test_a_link_leaving_the_data_directory_is_refused_and_its_content_never_shown(
    con, data_paths: Paths, tmp_path: Path
):
    month_file = data_paths.landing / "order_lines" / f"{MONTH}.csv"
    outside = tmp_path / "elsewhere" / "secret.csv"
    outside.parent.mkdir()
    outside.write_text(SECRET + "\n")
    good = month_file.read_bytes()
    month_file.unlink()
    month_file.symlink_to(outside)
    for attempt in (
        lambda: months_in_landing(data_paths.landing),
        lambda: load(con, data_paths.landing, "order_lines", MONTH),
    ):
        with pytest.raises(LandingError) as caught:
            attempt()
        message = str(caught.value)
        assert message.startswith(
            f"{month_file}: a symbolic link to {outside}, outside the data directory"
        ), message
        assert "CPROF_ALLOW_EXTERNAL_LINKS=1" in message and SECRET not in message
    # A folder linked from elsewhere is refused the same way; a link to nothing always.
    visits = data_paths.landing / "sales_visits"
    visits.rename(tmp_path / "elsewhere" / "visits")
    visits.symlink_to(tmp_path / "elsewhere" / "visits")
    dangling = data_paths.landing / "returns" / "2024-04.csv"
    dangling.symlink_to(tmp_path / "nothing.csv")
    problems = dict(landing_inventory(data_paths.landing).problems)
    assert (
        problems[visits].startswith("a symbolic link to") and "outside the data directory" in problems[visits]
    )
    assert (
        problems[dangling]
        == f"a symbolic link to {tmp_path / 'nothing.csv'}, which does not exist; put the file itself here"
    )

    # Allowed: a link within the data directory, and any link when the setting says so.
    inside = data_paths.data_dir / "exports" / "order_lines.csv"
    inside.parent.mkdir()
    inside.write_bytes(good)
    month_file.unlink()
    month_file.symlink_to(inside)
    rows = load(con, data_paths.landing, "order_lines", MONTH).rows
    outside.write_bytes(good)
    month_file.unlink()
    month_file.symlink_to(outside)
    assert load(con, data_paths.landing, "order_lines", MONTH, allow_external_links=True).rows == rows > 0


def test_the_setting_allowing_external_links_reaches_every_step_of_a_run(data_paths: Paths, tmp_path: Path):
    """CPROF_ALLOW_EXTERNAL_LINKS=1 is a setting like the others: read where cprof starts, it reaches every step
    that finds a landing file (the months found, the inventory, the loads, the suites, the release, the
    publication), so a run over files linked from outside the data directory publishes; without it, the same run
    fails naming the link."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    linked = [
        data_paths.landing / "order_lines" / "2024-01.csv",
        data_paths.landing / "reference" / "customers.csv",
    ]
    for path in linked:
        target = elsewhere / f"{path.parent.name}-{path.name}"
        path.rename(target)
        path.symlink_to(target)
    with pytest.raises(LandingError, match="outside the data directory"):
        run_pipeline(Settings(data_dir=data_paths.data_dir), progress=lambda _: None)
    allowed = Settings.from_environ(
        {"CPROF_DATA_DIR": str(data_paths.data_dir), "CPROF_ALLOW_EXTERNAL_LINKS": "1"}
    )
    said: list[str] = []
    summary = run_pipeline(allowed, progress=said.append)
    assert summary.months == ["2024-01", "2024-02", "2024-03"]
    assert current_database(data_paths.published).exists()
    assert any(line.startswith("ingest 2024-01:") for line in said), said


def test_cprof_refuses_a_link_to_a_system_file_without_quoting_it(data_paths: Paths):
    month_file = data_paths.landing / "order_lines" / f"{MONTH}.csv"
    month_file.unlink()
    month_file.symlink_to("/etc/passwd")
    done = _cprof(data_paths)
    assert done.returncode == 1
    assert f"{month_file}: a symbolic link to /etc/passwd, outside the data directory" in done.stderr, (
        done.stderr
    )
    first_line = Path("/etc/passwd").read_text().splitlines()[0]
    assert first_line not in done.stderr + done.stdout and "root:" not in done.stderr + done.stdout


NESTED = {  # how a column is stored nested, as DuckDB writes it to Parquet
    "struct": "{{'id': customer_id}}",
    "list": "[customer_id]",
    "map": "map([customer_id], [1])",
}


@pytest.mark.parametrize("kind", sorted(NESTED))
def test_a_nested_parquet_column_is_refused_naming_it(con, data_paths: Paths, kind: str):
    path = data_paths.landing / "order_lines" / f"{MONTH}.csv"
    before = _landed(con, "order_lines")
    parquet = _to_parquet(
        con, path, f"select * replace ({NESTED[kind]} as customer_id) from {{csv}}", ", all_varchar = true"
    )
    with pytest.raises(LandingError) as caught:
        load(con, data_paths.landing, "order_lines", MONTH)
    message = str(caught.value)
    assert message.startswith(
        f"{parquet}: column customer_id is a {kind} where the spec declares VARCHAR: "
    ), message
    assert _landed(con, "order_lines") == before


NOT_PARQUET = {
    "zero bytes": (lambda data: b"", "does not parse: too small to be a Parquet file (0 bytes)"),
    "cut short": (
        lambda data: data[:-7],
        "does not parse: not a Parquet file: it does not end with Parquet's magic",
    ),
    "a CSV file named .parquet": (
        lambda data: b"order_id,line_no\nO1,1\n",
        "it does not begin with Parquet's magic",
    ),
}


@pytest.mark.parametrize("case", sorted(NOT_PARQUET))
def test_a_file_that_is_not_parquet_keeps_the_reason_not_sql(con, data_paths: Paths, case: str):
    path = data_paths.landing / "order_lines" / f"{MONTH}.csv"
    parquet = _to_parquet(con, path, "select * from {csv}", ", all_varchar = true")
    damage, expected = NOT_PARQUET[case]
    parquet.write_bytes(damage(parquet.read_bytes()))
    with pytest.raises(LandingError) as caught:
        load(con, data_paths.landing, "order_lines", MONTH)
    message = str(caught.value)
    assert message.startswith(f"{parquet}: {expected}".split(": it")[0]) and expected in message, message
    assert "LINE 1" not in message and "select" not in message


def test_an_unterminated_quote_names_the_line_where_it_opens(con, data_paths: Paths):
    path = data_paths.landing / "order_lines" / f"{MONTH}.csv"
    lines = path.read_text().splitlines()
    lines[5] = lines[5].rsplit(",", 1)[0] + ',"' + lines[5].rsplit(",", 1)[1]  # line 6: ...,"web
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(LandingError) as caught:
        load(con, data_paths.landing, "order_lines", MONTH)
    message = str(caught.value)
    assert message == (
        f"{path}: does not parse: line 6: a quoted value opens on this line and is never closed (rule: a value "
        "holding a comma, a double quote or a line break is enclosed in double quotes, and a double quote inside "
        "it is written twice)"
    )
    assert lines[6] not in message  # not the next line as the "reason"


# --- the input checks name the lines of their samples ----------------------------------------------------


def _validate(con, data_paths: Paths, tmp_path: Path, source: str, path: Path):
    load(con, data_paths.landing, source, MONTH)
    validator = LandingValidator(tmp_path / "docs")
    outcome = validator.validate(source, MONTH, validation_frame(con, source, MONTH), str(path))
    return outcome, validator


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_check_messages_name_the_line_of_each_sample(con, data_paths: Paths, tmp_path: Path, kind: str):
    for snapshot in SNAPSHOTS:
        promote(con, snapshot.name)
    path = data_paths.landing / "order_lines" / f"{MONTH}.csv"
    _set(path, 4, "customer_id", "C777777")
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    rows.insert(9, rows[7])  # data row 7 repeated as data row 9: lines 8 and 10 share a key
    with path.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    if kind == "parquet":
        path = _to_parquet(con, path, "select * from {csv}", ", all_varchar = true")
    outcome, validator = _validate(con, data_paths, tmp_path, "order_lines", path)
    message = outcome.message()
    place = "line" if kind == "csv" else "row"
    row = 5 if kind == "csv" else 4  # CSV: the header is line 1
    assert f"_unknown_customer_id: 1 unexpected (e.g. C777777 at {place} {row})" in message, message
    first, second = (8, 10) if kind == "csv" else (7, 9)
    key = (rows[7][0], int(rows[7][1]))
    assert (
        f"expect_compound_columns_to_be_unique on ['order_id', 'line_no']: 2 unexpected (e.g. {key} at {place}s {first}, {second})"
        in message
    )
    page = validator.build_docs().read_text()  # the run page says the same
    assert f"C777777 at {place} {row}" in page


def test_a_return_contradicting_its_order_line_fails_naming_the_line(con, data_paths: Paths, tmp_path: Path):
    for snapshot in SNAPSHOTS:
        promote(con, snapshot.name)
    for month in ("2024-01", MONTH):
        load(con, data_paths.landing, "order_lines", month)
        promote(con, "order_lines", month)
    known = {
        (o, int(n)): (d, c, p)
        for o, n, d, c, p in con.execute(
            "select order_id, line_no, strftime(order_date, '%Y-%m-%d'), customer_id, cast(unit_price as varchar) "
            "from raw.order_lines"
        ).fetchall()
    }
    path = data_paths.landing / "returns" / f"{MONTH}.csv"
    with path.open(newline="") as handle:
        header, *rows = list(csv.reader(handle))
    header += ["order_date", "customer_id", "unit_price", "unit_cost"]
    for row in rows:  # the file exports each returned line's facts, as they are
        order_date, customer, price = known[row[1], int(row[2])]
        cost = con.execute(
            "select cast(p.unit_cost as varchar) from raw.order_lines l join raw.products p using (product_id) "
            "where l.order_id = ? and l.line_no = ?",
            [row[1], int(row[2])],
        ).fetchone()[0]
        row += [order_date, customer, price, cost]
    rows[2][header.index("customer_id")] = "C000002" if rows[2][7] != "C000002" else "C000003"
    rows[2][header.index("unit_price")] = "0.01"
    with path.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows([header, *rows])
    outcome, _ = _validate(con, data_paths, tmp_path, "returns", path)
    expected = (
        f"{rows[2][1]} line {rows[2][2]}: customer_id {rows[2][7]} where the order line has "
        f"{known[rows[2][1], int(rows[2][2])][1]}; unit_price 0.01 where the order line has "
        f"{known[rows[2][1], int(rows[2][2])][2]}"
    )
    assert [f.describe() for f in outcome.failures] == [
        f"expect_column_values_to_be_null on _contradicts_order_line: 1 unexpected (e.g. {expected} at line 4)"
    ]
