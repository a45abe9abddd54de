"""Every partition that reaches raw is validated, also when several months are validated in one Great
Expectations run (the default): a violation planted in the first, a middle and the last month of a full build
(one source each) is caught, the check names that month, and nothing of that source reaches raw; the batches'
outcomes equal those of one month at a time."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest
from pandas.testing import assert_frame_equal

from data_checks.batching import batch_minimum_rows, plan_batches
from data_checks.gx_run import LandingValidator
from data_checks.outcomes import Outcome
from data_checks.suites import PARTITION_COLUMN, SUITES
from pipelines.engines import duckdb_ingest
from pipelines.landing.sources import SNAPSHOTS
from pipelines.lib.config import Paths
from pipelines.lib.settings import Settings
from pipelines.run import PipelineError, run_pipeline

MONTHS = ["2024-01", "2024-02", "2024-03"]  # the small sample (tests/conftest.py)
# (source, month, column, planted value, what the check reports)
PLANTED = [
    ("order_lines", "2024-01", "quantity", "-4", "on quantity: 1 unexpected (e.g. -4 at line 3)"),
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
        "on _unknown_question_id: 1 unexpected (e.g. Q_MOOD at line 3)",
    ),
]


def _plant(path: Path, column: str, value: str, row: int = 2) -> None:
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    fields = lines[row].split(",")
    fields[header.index(column)] = value
    lines[row] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")


def _load_months(
    con: duckdb.DuckDBPyConnection, landing: Path, months: list[str], source: str = "order_lines"
) -> None:
    """The snapshots loaded and promoted (the suites check references against them), ``months`` of
    ``source`` loaded into quarantine."""
    for snapshot in SNAPSHOTS:
        duckdb_ingest.load(con, landing, snapshot.name)
        duckdb_ingest.promote(con, snapshot.name)
    for month in months:
        duckdb_ingest.load(con, landing, source, month)


def _outcomes(con: duckdb.DuckDBPyConnection, docs: Path, source: str = "order_lines") -> list:
    """The outcomes of validating the loaded MONTHS of ``source`` one month at a time."""
    validator = LandingValidator(docs)
    found = [
        validator.validate(source, month, duckdb_ingest.validation_frame(con, source, month), f"{month}.csv")
        for month in MONTHS
    ]
    return [replace(o, docs=None) for o in found]  # each validator writes its docs in its own folder


def test_a_violation_in_any_month_of_a_full_build_is_caught(data_paths: Paths, monkeypatch):
    # the default: a source's three months in one validation, validated again one by one when it fails
    runs = _count_runs(monkeypatch)
    for source, month, column, value, _ in PLANTED:
        _plant(data_paths.landing / source / f"{month}.csv", column, value)

    with pytest.raises(PipelineError) as caught:
        run_pipeline(
            Settings(data_dir=data_paths.data_dir), progress=lambda _: None
        )  # the full build: every month of the landing zone
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
        # a clean source's months were validated, and are held out of raw until whole (their other sources failed)
        held = con.execute(
            "select distinct strftime(period, '%Y-%m') from landed._generations "
            "where source = 'sales_visits' and validated and not promoted"
        ).fetchall()
        assert sorted(m for (m,) in held) == MONTHS
        assert con.execute("select count(*) from raw.sales_visits").fetchone() == (0,)
    page = (data_paths.data_dir / "gx" / "data_docs" / "run.html").read_text()
    for source, month, *_ in PLANTED:
        assert f"<td>{source}</td><td>{month}</td>" in page
    # every month of every source that ran was validated: 7 snapshots and 5 monthly sources (returns waits for
    # raw.order_lines) of 3 months; 3 failed
    assert "22 validations (one per source and partition, 12 sources), 3 failed" in page
    # the suites were evaluated in DuckDB (data_checks/duckdb_evaluation.py), each source's months in one pass;
    # GX ran only on the three failed months, each alone, for its own messages and page
    assert sorted(runs) == sorted(month for _, month, *_ in PLANTED), runs
    assert (
        "19 of the partitions passed their suites evaluated in DuckDB, in 12 passes (Great Expectations has no "
        "DuckDB engine yet" in page
    )


def test_the_pandas_engine_setting_validates_every_partition_with_gx(data_paths: Paths, monkeypatch):
    """``CPROF_CHECKS_ENGINE=pandas``: GX's pandas engine validates every partition, consecutive months batched
    (a failed batch again month by month), as before the DuckDB evaluation."""
    runs = _count_runs(monkeypatch)
    for source, month, column, value, _ in PLANTED:
        _plant(data_paths.landing / source / f"{month}.csv", column, value)

    with pytest.raises(PipelineError) as caught:
        run_pipeline(Settings(data_dir=data_paths.data_dir, checks_engine="pandas"), progress=lambda _: None)
    for _, _, _, _, reported in PLANTED:
        assert reported in str(caught.value)
    # GX ran once per snapshot, once per clean monthly source, 1 + 3 per failed one
    assert sorted(runs, key=str) == sorted([None] * 7 + ["2024-01..2024-03"] * 5 + MONTHS * 3, key=str), runs
    page = (data_paths.data_dir / "gx" / "data_docs" / "run.html").read_text()
    # the page says which partitions passed together: the two clean monthly sources' 3 months each
    assert "6 of the partitions passed in 2 runs of Great Expectations that validated consecutive" in page
    assert "evaluated in DuckDB" not in page


def test_months_are_batched_in_order_within_the_row_budget():
    rows = {"2024-01": 40, "2024-02": 50, "2024-03": 0, "2024-04": 120, "2024-05": 30, "2024-06": 70}
    months = list(rows)
    assert plan_batches(months, rows, 100, 0) == [
        ["2024-01", "2024-02", "2024-03"],
        ["2024-04"],  # over the budget: alone
        ["2024-05", "2024-06"],
    ]
    # a month under the suite's row minimum is validated alone, so its own row-count expectation fails
    assert plan_batches(months, rows, 100, 1) == [
        ["2024-01", "2024-02"],
        ["2024-03"],
        ["2024-04"],
        ["2024-05", "2024-06"],
    ]
    assert plan_batches(months, rows, 40, 0) == [
        ["2024-01"],
        ["2024-02"],
        ["2024-03"],
        ["2024-04"],
        ["2024-05"],
        ["2024-06"],
    ]


def test_only_suites_whose_expectations_hold_in_each_month_are_batched(monkeypatch):
    # every landing suite qualifies; the monthly ones that require rows say how many
    assert {source: batch_minimum_rows(source) for source in SUITES} == {
        **{source: 1 for source in SUITES},
        "returns": 0,
        "support_tickets": 0,
        "sales_visits": 0,
        "survey_responses": 0,
        "scenarios": 0,  # the one snapshot that may be empty (absent: no scenarios)
    }
    rules = SUITES["gl_costs"].rules
    for extra in [
        (
            "ExpectColumnValuesToNotBeNull",
            {"column": "amount", "mostly": 0.9},
        ),  # may hold overall, not per month
        ("ExpectColumnMeanToBeBetween", {"column": "amount", "min_value": 0}),
        ("ExpectTableRowCountToBeBetween", {"min_value": 1, "max_value": 10}),
    ]:
        suite = replace(SUITES["gl_costs"], rules=lambda extra=extra: [*rules(), extra])
        monkeypatch.setitem(SUITES, "gl_costs", suite)
        assert batch_minimum_rows("gl_costs") is None, extra


def _count_runs(monkeypatch) -> list:
    """The partitions (a month, or first..last of a batch) GX runs a suite on from now on, in order."""
    runs = []
    real_run = LandingValidator._run
    monkeypatch.setattr(
        LandingValidator,
        "_run",
        lambda self, source, month, *a, **k: runs.append(month) or real_run(self, source, month, *a, **k),
    )
    return runs


def _validate_months(
    con: duckdb.DuckDBPyConnection,
    docs: Path,
    months: list[str],
    rows: dict,
    source: str = "order_lines",
    batch_rows: int = Settings.gx_batch_rows,
) -> list:
    """The outcomes of validating the loaded ``months`` of ``source`` in batches of ``batch_rows`` rows."""
    found = LandingValidator(docs).validate_months(
        source,
        {month: f"{month}.csv" for month in months},
        lambda month: duckdb_ingest.validation_frame(con, source, month),
        lambda batch: duckdb_ingest.validation_frames(con, source, batch),
        rows,
        batch_rows,
    )
    return [replace(o, docs=None) for o in found]


def _values(frame):
    """The frame's values, a missing one as None, whatever its column's dtype."""
    return frame.astype(object).where(frame.notna(), None).reset_index(drop=True)


def test_a_batch_gives_the_outcomes_of_one_month_at_a_time(tmp_path: Path, small_landing: Path, monkeypatch):
    """Three months, the middle one with two failures, validated in batches of every size: the outcomes,
    messages and samples equal validating each month alone; a clean batch is one GX run."""
    landing = tmp_path / "landing"
    shutil.copytree(small_landing, landing)
    _plant(landing / "order_lines" / "2024-02.csv", "quantity", "-4")
    _plant(landing / "order_lines" / "2024-02.csv", "ship_mode", "drone", row=3)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        _load_months(con, landing, MONTHS)
        alone = _outcomes(con, tmp_path / "alone")
        rows = {month: len(duckdb_ingest.validation_frame(con, "order_lines", month)) for month in MONTHS}
        together = duckdb_ingest.validation_frames(con, "order_lines", MONTHS)
        assert together[PARTITION_COLUMN].value_counts().to_dict() == rows
        for month in MONTHS:  # each month's rows of the batch frame are its own frame's
            own = duckdb_ingest.validation_frame(con, "order_lines", month)
            part = together[together[PARTITION_COLUMN] == month].drop(columns=PARTITION_COLUMN)
            # the same values; an all-NULL text column is object alone and text beside a month with values
            assert_frame_equal(_values(part), _values(own))

        for budget in (0, sum(rows.values()), rows["2024-01"] + rows["2024-02"], 1):
            found = _validate_months(con, tmp_path / f"batch-{budget}", MONTHS, rows, batch_rows=budget)
            assert found == alone, budget
        runs = _count_runs(monkeypatch)
        clean = [m for m in MONTHS if m != "2024-02"]
        found = _validate_months(con, tmp_path / "clean", clean, rows, batch_rows=sum(rows.values()))
        assert runs == ["2024-01..2024-03"]
        assert [(o.month, o.rows, o.success) for o in found] == [(m, rows[m], True) for m in clean]


def test_an_empty_month_batched_where_its_suite_allows_it(tmp_path: Path, small_landing: Path, monkeypatch):
    """Support tickets may have an empty month (no row-count minimum): batched with the others, it passes with
    0 rows, as validated alone."""
    landing = tmp_path / "landing"
    shutil.copytree(small_landing, landing)
    empty = landing / "support_tickets" / "2024-02.csv"
    empty.write_text(empty.read_text().splitlines()[0] + "\n")
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        _load_months(con, landing, MONTHS, "support_tickets")
        rows = {month: len(duckdb_ingest.validation_frame(con, "support_tickets", month)) for month in MONTHS}
        assert rows["2024-02"] == 0 < min(rows["2024-01"], rows["2024-03"])
        alone = _outcomes(con, tmp_path / "alone", "support_tickets")
        runs = _count_runs(monkeypatch)
        found = _validate_months(con, tmp_path / "together", MONTHS, rows, "support_tickets")
        assert found == alone
        assert runs == ["2024-01..2024-03"]
        assert alone[1].rows == 0 and alone[1].success


def test_the_passing_partitions_of_a_source_are_one_message_naming_their_months():
    """One log message for a source's passing partitions: a span when the months follow each other, the months
    themselves when a failed one sits between them (a span would claim it passed)."""
    from pipelines.defs.assets.ingest import passed_message

    def passed(month: str, rows: int) -> Outcome:
        return Outcome("returns", month, f"returns/{month}.csv", rows, 9)

    consecutive = passed_message([passed("2024-11", 10), passed("2024-12", 20), passed("2025-01", 5)])
    assert consecutive.splitlines()[0] == (
        "returns 2024-11..2025-01: 3 partitions (35 rows), all 9 expectations passed in each"
    )
    assert consecutive.splitlines()[1:] == [
        f"  returns {m} (returns/{m}.csv, {n} rows): all 9 expectations passed"
        for m, n in (("2024-11", 10), ("2024-12", 20), ("2025-01", 5))
    ]
    gap = passed_message([passed("2024-01", 1), passed("2024-03", 2)])
    assert (
        gap.splitlines()[0]
        == "returns 2024-01, 2024-03: 2 partitions (3 rows), all 9 expectations passed in each"
    )
    assert (
        passed_message([passed("2024-01", 1)])
        == "returns 2024-01 (returns/2024-01.csv, 1 rows): all 9 expectations passed"
    )
