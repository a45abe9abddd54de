"""Whole months: a month's six monthly sources reach raw together, once each passed its suite, and in order; a
changed reference snapshot restates history. The rule itself (pipelines/engines/whole_months.py) on its own, then
the DuckDB engine on a real warehouse file with the real Great Expectations suites."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from data_checks.gx_run import validator_for
from pipelines.engines import duckdb_ingest
from pipelines.engines.whole_months import Partition, WholeMonths
from pipelines.landing.sources import MONTHLY, SNAPSHOTS
from pipelines.lib.settings import Settings

SIX = [source.name for source in MONTHLY]


def _month(month: str, validated=True, released=False, in_raw=None, failing: dict | None = None):
    """The six sources of ``month``: validated (or as ``failing`` says, per source), released or not."""
    failing = failing or {}
    return [
        Partition(
            name,
            month,
            failing.get(name, validated),
            released,
            released if in_raw is None else in_raw,
            "run-1",
        )
        for name in SIX
    ]


def _file(source: str, month: str) -> str:
    return f"{source}/{month}.csv"


def test_a_month_is_released_whole_and_only_after_the_months_before_it():
    state = WholeMonths(
        [
            *_month("2024-01", released=True),
            *_month("2024-02", failing={"returns": False}),  # its returns failed their suite
            *_month("2024-03"),  # whole, but after a month that is not
        ]
    )
    assert state.to_release() == []
    held = state.holdup("2024-02")
    assert held.sentence(_file) == (
        "2024-02 is not published (held out of raw until whole): returns/2024-02.csv failed its suite in run run-1"
    )
    waiting = state.holdup("2024-03")
    assert waiting.sentence(_file) == (
        "2024-03 is not published: held out of raw until 2024-02 is whole "
        "(returns/2024-02.csv failed its suite in run run-1)"
    )
    assert "`cprof run --from 2024-02 --to 2024-03`" in waiting.remedy()
    fixed = WholeMonths([*_month("2024-01", released=True), *_month("2024-02"), *_month("2024-03")])
    assert fixed.to_release() == ["2024-02", "2024-03"]


def test_a_month_in_raw_whose_new_load_fails_stays_as_last_released_and_does_not_hold_later_months():
    state = WholeMonths(
        [
            *_month("2024-01", released=True),
            *_month(
                "2024-02", released=False, in_raw=True, failing={"gl_costs": False}
            ),  # a corrected file failed
            *_month("2024-03"),
        ]
    )
    assert state.to_release() == ["2024-03"]
    assert state.holdup("2024-02").sentence(_file).startswith("2024-02 is published as last released")
    # a corrected file that passes is released in place
    corrected = WholeMonths([*_month("2024-01", released=True), *_month("2024-02", in_raw=True)])
    assert corrected.to_release() == ["2024-02"]


def test_older_months_are_released_as_one_block_up_to_the_first_month_in_raw():
    later = [*_month("2024-04", released=True), *_month("2024-05", released=True)]
    not_yet = WholeMonths(
        [*_month("2024-01"), *_month("2024-02", validated=None), *_month("2024-03"), *later]
    )
    assert not_yet.to_release() == []  # 2024-01 alone would leave a gap before 2024-04
    assert "2024-02 is whole" in not_yet.holdup("2024-01").sentence(_file)
    unvalidated = not_yet.holdup("2024-02").sentence(_file)
    assert "returns/2024-02.csv was loaded and has not passed its suite yet" in unvalidated
    whole = WholeMonths([*_month("2024-01"), *_month("2024-02"), *_month("2024-03"), *later])
    assert whole.to_release() == ["2024-01", "2024-02", "2024-03"]
    # into an empty warehouse a run may start at any month: from the first month loaded
    assert WholeMonths([*_month("2025-01"), *_month("2025-02")]).to_release() == ["2025-01", "2025-02"]
    missing = WholeMonths([p for p in _month("2025-01") if p.source != "returns"])
    assert missing.to_release() == []
    assert "returns/2025-01.csv was never loaded" in missing.holdup("2025-01").sentence(_file)


@pytest.fixture
def warehouse(tmp_path: Path, small_landing: Path):
    """A fresh warehouse with the sample's snapshots released; every return must find its order line (no
    return window, :func:`_validate`), so the returns suite depends on the order lines it is given."""
    landing = tmp_path / "landing"
    shutil.copytree(small_landing, landing)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    for source in SNAPSHOTS:
        duckdb_ingest.load(con, landing, source.name)
        duckdb_ingest.release_snapshot(con, source.name)
    yield con, landing, validator_for(tmp_path)
    con.close()


def _validate(con, landing: Path, validator, source: str, month: str) -> bool:
    """Load the month's file of ``source`` and run its suite, recording the outcome as the pipeline's check does."""
    file = duckdb_ingest.load(con, landing, source, month).path
    outcome = validator.validate(
        source,
        month,
        duckdb_ingest.validation_frame(con, source, month, "2024-01", return_window=0),
        str(file),
    )
    duckdb_ingest.mark_validated(con, source, month, outcome.success, "run-1")
    return outcome.success


def _raw_months(con, source: str) -> list[str]:
    rows = con.execute(f"select distinct strftime(_period, '%Y-%m') from raw.{source} order by 1").fetchall()
    return [month for (month,) in rows]


def test_validated_months_wait_out_of_raw_until_whole_and_returns_are_checked_against_validated_lines(
    warehouse,
):
    con, landing, validator = warehouse
    unknown = landing / "returns" / "2024-02.csv"
    good = unknown.read_text()
    with unknown.open("a") as out:  # a return of an order line that exists nowhere
        out.write("R99999999,O999999999,1,2024-02-20,1,damaged\n")
    for month in ("2024-01", "2024-02"):
        for source in SIX:
            passed = _validate(con, landing, validator, source, month)
            # The month's order lines are validated, not in raw: its returns find their lines all the same.
            assert passed == ((source, month) != ("returns", "2024-02")), (source, month)
    assert _raw_months(con, "order_lines") == []  # nothing is released before the whole month is validated

    released = duckdb_ingest.release_whole_months(con)
    assert [r.month for r in released] == ["2024-01"] and set(released[0].rows) == set(SIX)
    for source in SIX:
        assert _raw_months(con, source) in (["2024-01"], [])  # 2024-02's five good sources stay out too
    assert _raw_months(con, "order_lines") == ["2024-01"]
    awaiting = con.execute(
        "select distinct strftime(period, '%Y-%m') from landed._awaiting_publication"
    ).fetchall()
    assert awaiting == [("2024-01",)]
    (held,) = duckdb_ingest.whole_months(con).holdups(["2024-02"])
    assert held.sentence(lambda s, m: f"{s}/{m}.csv") == (
        "2024-02 is not published (held out of raw until whole): returns/2024-02.csv failed its suite in run run-1"
    )

    # The corrected returns file passes: the month is released whole, and 2024-03 after it.
    unknown.write_text(good)
    assert _validate(con, landing, validator, "returns", "2024-02")
    for source in SIX:
        assert _validate(con, landing, validator, source, "2024-03")
    assert [r.month for r in duckdb_ingest.release_whole_months(con)] == ["2024-02", "2024-03"]
    assert _raw_months(con, "returns") == ["2024-01", "2024-02", "2024-03"]
    assert duckdb_ingest.whole_months(con).held() == []


def test_a_snapshot_that_changes_or_removes_rows_restates_every_month_in_raw(warehouse):
    con, landing, validator = warehouse
    for source in SIX:
        _validate(con, landing, validator, source, "2024-01")
    duckdb_ingest.release_whole_months(con)
    con.execute("delete from landed._awaiting_publication")  # published
    customers = landing / "reference" / "customers.csv"
    header, *rows = customers.read_text().splitlines()

    # A new customer restates nothing.
    customers.write_text("\n".join([header, *rows, "C999999,New Co,enterprise,north,2024-01-15"]) + "\n")
    duckdb_ingest.load(con, landing, "customers")
    added = duckdb_ingest.release_snapshot(con, "customers")
    assert (added.changed, added.removed, added.restated) == (0, 0, [])
    assert added.sentence("reference/customers.csv") is None
    assert con.execute("select count(*) from landed._awaiting_publication").fetchone() == (0,)

    # One customer's segment changed (and the new one gone again): every month in raw awaits publication
    # again, in the same transaction.
    first = rows[0].split(",")
    first[2] = "enterprise" if first[2] != "enterprise" else "small_business"
    customers.write_text("\n".join([header, ",".join(first), *rows[1:]]) + "\n")
    duckdb_ingest.load(con, landing, "customers")
    changed = duckdb_ingest.release_snapshot(con, "customers")
    assert (changed.changed, changed.removed, changed.columns, changed.restated) == (
        1,
        1,
        ["segment"],
        ["2024-01"],
    )
    assert changed.sentence("reference/customers.csv") == (
        "reference/customers.csv changed 1 existing row(s) (segment) and removed 1 row(s): restating 2024-01"
    )
    assert con.execute(
        "select strftime(period, '%Y-%m'), source, rows from landed._awaiting_publication"
    ).fetchall() == [("2024-01", "customers", 2)]


def test_a_changed_segment_in_a_one_month_run_restates_every_published_month(published_sample, tmp_path):
    from pipelines.lib.config import Paths
    from pipelines.publication.publish import current_database
    from pipelines.run import run_pipeline

    paths = Paths(tmp_path / "data")
    shutil.copytree(published_sample.data_dir, paths.data_dir, symlinks=True)

    def segments() -> dict[str, set[str]]:
        with duckdb.connect(str(current_database(paths.published)), read_only=True) as con:
            rows = con.execute(
                "select customer_id, strftime(period, '%Y-%m'), segment from marts.customer_profitability"
            ).fetchall()
        found: dict[str, set[str]] = {}
        for customer, month, segment in rows:
            found.setdefault(customer, set()).add((month, segment))
        return found

    before = segments()
    customer = max(before, key=lambda c: len(before[c]))  # a customer in every month
    assert len(before[customer]) == 3
    customers = paths.landing / "reference" / "customers.csv"
    header, *rows = customers.read_text().splitlines()
    old = next(row for row in rows if row.startswith(f"{customer},")).split(",")
    new = "enterprise" if old[2] != "enterprise" else "small_business"
    changed = [",".join([*old[:2], new, *old[3:]]) if row.startswith(f"{customer},") else row for row in rows]
    customers.write_text("\n".join([header, *changed]) + "\n")

    said: list[str] = []
    run_pipeline(Settings(data_dir=paths.data_dir), "2024-03", "2024-03", progress=said.append, live=False)
    assert "reference/customers.csv changed 1 existing row(s) (segment): restating 2024-01..2024-03" in said
    after = segments()
    assert after[customer] == {(month, new) for month, _ in before[customer]}  # every month, not only March
    assert {c: s for c, s in after.items() if c != customer} == {
        c: s for c, s in before.items() if c != customer
    }
