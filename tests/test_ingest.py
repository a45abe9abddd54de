"""Loading landing files into quarantine (landed) and promoting them to raw: one month replaces its month, bad
files say where and why, nothing is lost."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipelines.engines.duckdb_ingest import LandingError, load, promote, snapshot_promoted
from pipelines.landing.inventory import months_in_landing
from pipelines.lib.config import Paths


@pytest.fixture
def con(data_paths: Paths):
    data_paths.data_dir.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(data_paths.warehouse)) as connection:
        yield connection


def _count(con, table: str, month: str | None = None, schema: str = "landed") -> int:
    where = f" where _period = date '{month}-01'" if month else ""
    return con.execute(f"select count(*) from {schema}.{table}{where}").fetchone()[0]


def test_load_records_rows_checksum_and_lineage(con, data_paths: Paths):
    result = load(con, data_paths.landing, "order_lines", "2024-02")
    file_rows = con.execute(f"select count(*) from read_csv('{result.path}')").fetchone()[0]
    assert result.rows == file_rows == _count(con, "order_lines", "2024-02") > 0
    assert len(result.sha256) == 64 and result.bytes == result.path.stat().st_size
    assert con.execute("select distinct _source_file from landed.order_lines").fetchall() == [
        (str(result.path),)
    ]
    types = dict(
        con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'landed' and table_name = 'order_lines'"
        ).fetchall()
    )
    assert types["unit_price"] == "DECIMAL(18,2)" and types["order_date"] == "DATE"


def test_reloading_a_month_replaces_exactly_that_month(con, data_paths: Paths):
    for month in ("2024-01", "2024-02"):
        load(con, data_paths.landing, "order_lines", month)
    before = {m: _count(con, "order_lines", m) for m in ("2024-01", "2024-02")}
    checksum = con.execute(
        "select sum(hash(order_id, line_no, quantity)) from landed.order_lines"
    ).fetchone()[0]
    load(con, data_paths.landing, "order_lines", "2024-02")
    load(con, data_paths.landing, "order_lines", "2024-02")
    assert {m: _count(con, "order_lines", m) for m in before} == before
    assert (
        con.execute("select sum(hash(order_id, line_no, quantity)) from landed.order_lines").fetchone()[0]
        == checksum
    )
    # A corrected file for the month replaces its rows, and the other month is untouched.
    path = data_paths.landing / "order_lines" / "2024-02.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:11]) + "\n")
    load(con, data_paths.landing, "order_lines", "2024-02")
    assert _count(con, "order_lines", "2024-02") == 10
    assert _count(con, "order_lines", "2024-01") == before["2024-01"]


def test_only_promotion_moves_a_partition_into_raw(con, data_paths: Paths):
    load(con, data_paths.landing, "order_lines", "2024-02")
    assert _count(con, "order_lines", "2024-02", schema="raw") == 0
    promoted = promote(con, "order_lines", "2024-02")
    assert (
        promoted
        == _count(con, "order_lines", "2024-02", schema="raw")
        == _count(con, "order_lines", "2024-02")
    )
    # A new file in quarantine leaves raw as it was until it is promoted (its fall in rows confirmed).
    path = data_paths.landing / "order_lines" / "2024-02.csv"
    path.write_text("\n".join(path.read_text().splitlines()[:4]) + "\n")
    load(con, data_paths.landing, "order_lines", "2024-02", accept_row_drop=True)
    assert _count(con, "order_lines", "2024-02") == 3
    assert _count(con, "order_lines", "2024-02", schema="raw") == promoted
    assert promote(con, "order_lines", "2024-02") == 3 == _count(con, "order_lines", "2024-02", schema="raw")
    load(con, data_paths.landing, "customers")
    promote(con, "customers")
    assert _count(con, "customers", schema="raw") == _count(con, "customers") > 0


def test_snapshot_reload_replaces_the_table(con, data_paths: Paths):
    first = load(con, data_paths.landing, "customers")
    second = load(con, data_paths.landing, "customers")
    assert first.rows == second.rows == _count(con, "customers")


def test_an_unchanged_promoted_snapshot_is_not_reloaded(con, data_paths: Paths):
    first = load(con, data_paths.landing, "customers", skip_unchanged=True)
    assert not first.unchanged and not snapshot_promoted(con, "customers")  # landed, not yet validated
    again = load(con, data_paths.landing, "customers", skip_unchanged=True)
    assert not again.unchanged  # never promoted: loaded (and to be validated) again
    promote(con, "customers")
    assert snapshot_promoted(con, "customers")
    loaded_at = con.execute("select max(_loaded_at) from landed.customers").fetchone()[0]
    skipped = load(con, data_paths.landing, "customers", skip_unchanged=True)
    assert skipped.unchanged and skipped.rows == first.rows and skipped.sha256 == first.sha256
    assert con.execute("select max(_loaded_at) from landed.customers").fetchone()[0] == loaded_at
    assert not load(con, data_paths.landing, "customers").unchanged  # without skip_unchanged: reloaded
    promote(con, "customers")
    # A changed file is loaded, and is not "promoted" until it is.
    path = data_paths.landing / "reference" / "customers.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n")
    changed = load(con, data_paths.landing, "customers", skip_unchanged=True)
    assert not changed.unchanged and changed.rows == first.rows - 1
    assert not snapshot_promoted(con, "customers")
    assert _count(con, "customers", schema="raw") == first.rows  # raw keeps the validated snapshot
    promote(con, "customers")
    assert snapshot_promoted(con, "customers") and _count(con, "customers", schema="raw") == first.rows - 1


def test_parquet_files_load_like_csv(con, data_paths: Paths):
    csv_path = data_paths.landing / "returns" / "2024-03.csv"
    parquet_path = csv_path.with_suffix(".parquet")
    con.execute(f"copy (select * from read_csv('{csv_path}')) to '{parquet_path}' (format parquet)")
    with pytest.raises(LandingError, match="ambiguous"):
        load(con, data_paths.landing, "returns", "2024-03")
    csv_path.unlink()
    assert load(con, data_paths.landing, "returns", "2024-03").rows == _count(con, "returns", "2024-03") > 0


def test_months_found_in_landing(data_paths: Paths):
    assert months_in_landing(data_paths.landing) == ["2024-01", "2024-02", "2024-03"]


def _replace_line(path: Path, index: int, transform) -> None:
    lines = path.read_text().splitlines()
    lines[index] = transform(lines[index])
    path.write_text("\n".join(lines) + "\n")


BAD_FILES = {
    "missing file": (lambda p: p.unlink(), r"missing: no order_lines file for 2024-02"),
    "empty file": (lambda p: p.write_text(""), r"empty file"),
    "missing column": (
        lambda p: p.write_text(
            "\n".join(",".join(l.split(",")[:-1]) for l in p.read_text().splitlines()) + "\n"
        ),
        r"missing column\(s\) order_channel",
    ),
    "extra column": (
        lambda p: p.write_text("\n".join(l + ",x" for l in p.read_text().splitlines()) + "\n"),
        r"unexpected column\(s\) x",
    ),
    "text in a number": (
        lambda p: _replace_line(
            p, 3, lambda l: ",".join(v if i != 5 else "lots" for i, v in enumerate(l.split(",")))
        ),
        r"line 4, column quantity, value 'lots': expected INTEGER",
    ),
    "bad date": (
        lambda p: _replace_line(p, 2, lambda l: l.replace("2024-02-", "2024-02-3", 1)),
        r"line 3, column order_date",
    ),
    "truncated last line": (
        lambda p: p.write_text(p.read_text()[:-20]),
        r"does not parse: line \d+",
    ),
    "non-UTF-8 bytes": (
        lambda p: p.write_bytes(p.read_bytes().replace(b"standard", b"stand\xe4rd", 1)),
        r"not utf-8",
    ),
    "non-UTF-8 header": (
        lambda p: p.write_bytes(b"\xff\xfe" + p.read_bytes()),
        r"line 1 \(header\): not UTF-8",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_names_the_path_and_leaves_the_month_as_it_was(con, data_paths: Paths, case: str):
    load(con, data_paths.landing, "order_lines", "2024-02")
    before = con.execute("select count(*), sum(hash(order_id, line_no)) from landed.order_lines").fetchone()
    path = data_paths.landing / "order_lines" / "2024-02.csv"
    damage, message = BAD_FILES[case]
    damage(path)
    with pytest.raises(LandingError, match=message) as caught:
        load(con, data_paths.landing, "order_lines", "2024-02")
    assert str(path) in str(caught.value)
    assert (
        con.execute("select count(*), sum(hash(order_id, line_no)) from landed.order_lines").fetchone()
        == before
    )
