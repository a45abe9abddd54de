"""Every partition that reaches raw is validated, also when worker processes validate the months in parallel:
a violation planted in the first, a middle and the last month of a full build (one source each) is caught, the
check names that month, and nothing of that source reaches raw; the pool's outcomes equal one process's."""

from __future__ import annotations

import multiprocessing
import shutil
import time
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from data_checks import gx_run
from data_checks.gx_run import WORKERS_ENV, LandingValidator
from pipelines.engines import duckdb_ingest
from pipelines.landing.sources import SNAPSHOTS
from pipelines.lib.config import Paths
from pipelines.run import PipelineError, run_pipeline

MONTHS = ["2024-01", "2024-02", "2024-03"]  # the small sample (tests/conftest.py)
# (source, month, column, planted value, what the check reports)
PLANTED = [
    ("order_lines", "2024-01", "quantity", "-4", "on quantity: 1 unexpected (e.g. -4)"),
    (
        "support_tickets",
        "2024-02",
        "handling_minutes",
        "9999",
        "on handling_minutes: 1 unexpected (e.g. 9999",
    ),
    (
        "survey_responses",
        "2024-03",
        "question_id",
        "Q_MOOD",
        "on _unknown_question_id: 1 unexpected (e.g. Q_MOOD)",
    ),
]


def _plant(path: Path, column: str, value: str, row: int = 2) -> None:
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    fields = lines[row].split(",")
    fields[header.index(column)] = value
    lines[row] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")


def _load_order_lines(con: duckdb.DuckDBPyConnection, landing: Path, months: list[str]) -> None:
    """The snapshots loaded and promoted (the suites check references against them), ``months`` of order
    lines loaded into quarantine."""
    for source in SNAPSHOTS:
        duckdb_ingest.load(con, landing, source.name)
        duckdb_ingest.promote(con, source.name)
    for month in months:
        duckdb_ingest.load(con, landing, "order_lines", month)


def _outcomes(con: duckdb.DuckDBPyConnection, docs: Path, workers: int) -> list:
    """The outcomes of validating the loaded months of order lines with ``workers`` processes."""
    frames = (
        (month, duckdb_ingest.validation_frame(con, "order_lines", month), f"{month}.csv") for month in MONTHS
    )
    found = LandingValidator(docs).validate_all("order_lines", frames, workers=workers)
    return [replace(o, docs=None) for o in found]  # each validator writes its docs in its own folder


def test_a_violation_in_any_month_of_a_full_build_is_caught(data_paths: Paths, monkeypatch):
    monkeypatch.setenv(WORKERS_ENV, "2")  # the months are validated by two worker processes,
    monkeypatch.setattr(gx_run, "FORK_MIN_ROWS", 0)  # small as they are
    for source, month, column, value, _ in PLANTED:
        _plant(data_paths.landing / source / f"{month}.csv", column, value)

    with pytest.raises(PipelineError) as caught:
        run_pipeline(data_paths, progress=lambda _: None)  # the full build: every month of the landing zone
    message = str(caught.value)
    for source, month, _, _, reported in PLANTED:
        file = data_paths.landing / source / f"{month}.csv"
        assert f"{source} {month} ({file}, " in message, message  # the check names the month and its file
        assert reported in message, message
        for other in set(MONTHS) - {month}:  # the other months of the source passed
            assert f"{source} {other} (" not in message, message
    with duckdb.connect(str(data_paths.warehouse), read_only=True) as con:
        for source, month, *_ in PLANTED:  # the source's check blocks its promotion: nothing reaches raw
            assert con.execute(f"select count(*) from raw.{source}").fetchone() == (0,), source
            assert (
                con.execute(
                    f"select count(*) from landed.{source} where _period = date '{month}-01'"
                ).fetchone()[0]
                > 0
            )
        promoted = con.execute("select distinct strftime(_period, '%Y-%m') from raw.sales_visits").fetchall()
        assert sorted(m for (m,) in promoted) == MONTHS  # a clean source's months were validated and promoted
    page = (data_paths.data_dir / "gx" / "data_docs" / "run.html").read_text()
    for source, month, *_ in PLANTED:
        assert f"<td>{source}</td><td>{month}</td>" in page
    # every month of every source that ran was validated: 6 snapshots and 5 monthly sources (returns waits for
    # raw.order_lines) of 3 months; 3 failed
    assert "21 validations (one per source and partition, 11 sources), 3 failed" in page


def test_the_pool_gives_the_outcomes_of_one_process_in_month_order(
    tmp_path: Path, small_landing: Path, monkeypatch
):
    """The same partitions, one with two failures: the pool's outcomes, messages and samples equal those of
    validating one partition at a time here; also when its row budget lets one frame at a time go to the
    workers, or none (each frame is then validated here)."""
    landing = tmp_path / "landing"
    shutil.copytree(small_landing, landing)
    _plant(landing / "order_lines" / "2024-02.csv", "quantity", "-4")
    _plant(landing / "order_lines" / "2024-02.csv", "ship_mode", "drone", row=3)
    monkeypatch.setattr(gx_run, "FORK_MIN_ROWS", 0)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        _load_order_lines(con, landing, MONTHS)
        rows = [len(duckdb_ingest.validation_frame(con, "order_lines", month)) for month in MONTHS]

        alone = _outcomes(con, tmp_path / "alone", 1)
        assert [o.month for o in alone] == MONTHS
        assert [o.success for o in alone] == [True, False, True]
        assert "ship_mode: 1 unexpected (e.g. drone)" in alone[1].message()
        for budget in (gx_run.ROWS_IN_FLIGHT, max(rows), min(rows) - 1):
            monkeypatch.setattr(gx_run, "ROWS_IN_FLIGHT", budget)
            assert _outcomes(con, tmp_path / f"pool-{budget}", 2) == alone, budget


def test_no_worker_outlives_a_check_that_stops_early(tmp_path: Path, small_landing: Path, monkeypatch):
    """Reading a month fails while workers validate the months before it: the error reaches the check, and
    no worker process is left behind."""
    monkeypatch.setattr(gx_run, "FORK_MIN_ROWS", 0)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        _load_order_lines(con, small_landing, MONTHS[:2])

        def frames():
            for month in MONTHS:  # the last month was never loaded: its frame is empty, and we refuse it
                frame = duckdb_ingest.validation_frame(con, "order_lines", month)
                if frame.empty:
                    raise RuntimeError(f"no rows for {month}")
                yield month, frame, f"{month}.csv"

        validator = LandingValidator(tmp_path / "docs")
        with pytest.raises(RuntimeError, match="no rows for 2024-03"):
            # two workers take 2024-01 and 2024-02; the third month is read while they validate
            list(validator.validate_all("order_lines", frames(), workers=2))
    assert multiprocessing.active_children() == []  # ended and reaped before the error reached the check


def _hang(validator, send, parent, *args) -> None:
    """A worker stuck for good (as one forked while another thread held a lock it then needs would be)."""
    gx_run._worker_started(parent)
    time.sleep(3600)


def test_a_worker_that_hangs_is_killed_and_its_month_validated_here(
    tmp_path: Path, small_landing: Path, monkeypatch
):
    monkeypatch.setattr(gx_run, "FORK_MIN_ROWS", 0)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        _load_order_lines(con, small_landing, MONTHS)

        alone = _outcomes(con, tmp_path / "alone", 1)
        monkeypatch.setattr(gx_run, "_validate_in_worker", _hang)
        monkeypatch.setattr(gx_run, "WORKER_TIMEOUT_SECONDS", 1.0)
        started = time.monotonic()
        assert _outcomes(con, tmp_path / "hung", 2) == alone
    assert time.monotonic() - started < 60  # each hung worker waited for 1 s, not for ever
    assert multiprocessing.active_children() == []
