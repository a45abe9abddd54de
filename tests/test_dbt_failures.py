"""A failed dbt build says which rows break which test, in which month and from which landing file, in `cprof run`'s
error and in the failure alert: real runs on a copy of the published sample, with the failures an export really
has (a line repeated across two months, a customer removed who has older lines, a cost centre with negative
totals, an amount at DECIMAL(18,2)'s limit). The publication stays as it was."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines.definitions import build_definitions
from pipelines.lib.config import Paths
from pipelines.lib.settings import Settings
from pipelines.publication.publish import current_database
from pipelines.run import PipelineError, dagster_instance, run_pipeline
from tests.test_alerts import tick

MONTH = "2024-03"


def _rows(path: Path) -> tuple[list[str], list[list[str]]]:
    header, *rows = list(csv.reader(path.open(newline="")))
    return header, rows


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="") as out:
        csv.writer(out, lineterminator="\n").writerows([header, *rows])


def _customers_of(landing: Path, month: str) -> set[str]:
    """Every customer with any row in the month's monthly files."""
    found = set()
    for folder in ("order_lines", "support_tickets", "sales_visits", "survey_responses"):
        header, rows = _rows(landing / folder / f"{month}.csv")
        found |= {row[header.index("customer_id")] for row in rows}
    return found


def _release(paths: Paths) -> str:
    with duckdb.connect(str(current_database(paths.published)), read_only=True) as con:
        return con.execute(
            "select run_id from marts.publish_log order by published_at desc limit 1"
        ).fetchone()[0]


@pytest.fixture
def copy_of_published(published_sample: Paths, tmp_path: Path) -> Paths:
    paths = Paths(tmp_path / "data")
    shutil.copytree(published_sample.data_dir, paths.data_dir, symlinks=True)
    return paths


def test_failed_dbt_tests_are_said_as_keys_months_and_files(copy_of_published: Paths):
    paths = copy_of_published
    landing = paths.landing
    published = _release(paths)
    instance = dagster_instance(paths)
    alerts = build_definitions(Settings(data_dir=paths.data_dir))
    cursor = tick(alerts, instance, None).cursor

    # An order line of February exported again in March.
    header, february = _rows(landing / "order_lines" / "2024-02.csv")
    repeated = list(february[0])
    repeated[header.index("order_date")] = f"{MONTH}-15"
    _, march = _rows(landing / "order_lines" / f"{MONTH}.csv")
    _write(landing / "order_lines" / f"{MONTH}.csv", header, [*march, repeated])
    order_id, line_no = repeated[header.index("order_id")], repeated[header.index("line_no")]
    # A customer removed from the master who has January lines (and nothing in March).
    _, january = _rows(landing / "order_lines" / "2024-01.csv")
    gone = next(
        row[header.index("customer_id")]
        for row in january
        if row[header.index("customer_id")]
        not in _customers_of(landing, MONTH) | {repeated[header.index("customer_id")]}
    )
    columns, customers = _rows(landing / "reference" / "customers.csv")
    _write(landing / "reference" / "customers.csv", columns, [c for c in customers if c[0] != gone])

    with pytest.raises(PipelineError) as failed:
        run_pipeline(Settings(data_dir=paths.data_dir), MONTH, MONTH, progress=lambda _: None, live=False)
    said = str(failed.value)
    # the repeated line: its key, both months and both files
    repeat = next(line for line in said.splitlines() if f"order_id={order_id}, line_no={line_no}" in line)
    assert "(a key repeated)" in said
    assert "order_lines 2024-02 (" in repeat and "order_lines/2024-02.csv)" in repeat
    assert f"order_lines {MONTH} (order_lines/{MONTH}.csv)" in repeat
    # the removed customer: the value, the months and files of its lines, the snapshot it is missing from
    assert "(a value with no match in stg_crm__customers (reference/customers.csv))" in said
    orphan = next(line for line in said.splitlines() if f"customer_id={gone}" in line)
    assert "order_lines 2024-01 (" in orphan and "order_lines/2024-01.csv)" in orphan
    assert _release(paths) == published  # nothing was published

    # The alert says the same.
    tick(alerts, instance, cursor)
    (alert,) = [json.loads(line) for line in (paths.logs / "failures.jsonl").read_text().splitlines()]
    assert alert["step"] == "dbt_models"
    assert repeat.strip() in alert["cause"] and orphan.strip() in alert["cause"]
    assert "\x1b[" not in json.dumps(alert)


def test_a_ledger_that_breaks_conservation_or_overflows_names_the_month_and_the_line(
    copy_of_published: Paths,
):
    paths = copy_of_published
    published = _release(paths)
    ledger_file = paths.landing / "gl_costs" / f"{MONTH}.csv"
    columns, ledger = _rows(ledger_file)

    # A cost centre whose March totals are negative: the conservation tests name the month, the activities
    # that do not add up and the month's files.
    centre = ledger[0][columns.index("cost_center")]
    negative = [
        [*line[:-1], "-" + line[-1]] if line[columns.index("cost_center")] == centre else line
        for line in ledger
    ]
    _write(ledger_file, columns, negative)
    with pytest.raises(PipelineError) as failed:
        run_pipeline(Settings(data_dir=paths.data_dir), MONTH, MONTH, progress=lambda _: None, live=False)
    said = str(failed.value)
    assert "dbt test assert_activity_costs_fully_allocated failed" in said
    assert f"period={MONTH}-01, activity=" in said
    assert f"the landing files of {MONTH} it reads: gl_costs/{MONTH}.csv" in said

    # An amount at DECIMAL(18,2)'s largest value: the ledger's sum overflows; the line is named.
    ledger[0][columns.index("amount")] = "9999999999999999.99"
    _write(ledger_file, columns, ledger)
    with pytest.raises(PipelineError) as failed:
        run_pipeline(Settings(data_dir=paths.data_dir), MONTH, MONTH, progress=lambda _: None, live=False)
    said = str(failed.value)
    assert "dbt model int_ledger_costs_aggregated_to_cost_center_month could not be built" in said
    key = ", ".join(
        f"{name}={ledger[0][columns.index(name)]}" for name in ("period", "cost_center", "account")
    )
    assert f"amount near the limit of DECIMAL(18,2) in gl_costs/{MONTH}.csv: {key}, amount=" in said
    assert _release(paths) == published


def test_a_warehouse_from_before_a_new_column_says_to_rebuild_once_and_then_publishes(
    copy_of_published: Paths,
):
    """A new version of the code adds a column to an incremental mart (customer_scorecard.unit): a warehouse
    built by the version before fails the refresh with what to do, nothing published; `--full-refresh` (as
    said) rebuilds it and publishes."""
    paths = copy_of_published
    published = _release(paths)
    with duckdb.connect(str(paths.warehouse)) as con:  # the warehouse as the version before left it
        con.execute("alter table marts.customer_scorecard drop column unit")
    with pytest.raises(PipelineError) as failed:
        run_pipeline(Settings(data_dir=paths.data_dir), MONTH, MONTH, progress=lambda _: None, live=False)
    said = str(failed.value)
    assert (
        "dbt model customer_scorecard has other columns in this version of the code than in the warehouse "
        "(new: unit): rebuild it once, with every month, by `cprof run --full-refresh`"
    ) in said
    assert _release(paths) == published  # nothing was published

    run_pipeline(Settings(data_dir=paths.data_dir), progress=lambda _: None, live=False, full_refresh=True)
    with duckdb.connect(str(current_database(paths.published)), read_only=True) as con:
        assert con.execute("select count(*) from marts.customer_scorecard where unit is null").fetchone() == (
            0,
        )
    assert _release(paths) != published
