"""`cprof scenario` and the Dagster job `scenarios` (issue 30, item 5): a new scenarios file published beside the
release, every actual mart with the same rows and checksum, no month restated; refused, with nothing published,
while a month awaits publication or before anything is published. Real CLI runs on copies of the small sample."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines.cli import main
from pipelines.defs.assets.publish import PUBLISHED_DIMENSIONS, PUBLISHED_MARTS, SCENARIO_MARTS
from pipelines.lib.config import Paths
from pipelines.publication.publish import CURRENT, current_database
from pipelines.run import dagster_instance

# What a scenario run may change: the scenario marts and the list of scenarios.
SCENARIO_TABLES = {*SCENARIO_MARTS, "dim_scenarios"}


def _copy(published_sample: Paths, directory: Path) -> Paths:
    paths = Paths(directory / "data")
    shutil.copytree(published_sample.data_dir, paths.data_dir, symlinks=True)
    return paths


def _log(paths: Paths) -> dict[str, tuple[int, str]]:
    with duckdb.connect(str(current_database(paths.published)), read_only=True) as con:
        return {
            table: (rows, checksum)
            for table, rows, checksum in con.execute(
                "select table_name, row_count, checksum from marts.publish_log "
                "where run_id = (select run_id from marts.publish_log order by published_at desc limit 1)"
            ).fetchall()
        }


def _scenarios_file(paths: Paths, directory: Path) -> Path:
    """The landing zone's scenarios with one more: the billing centre's cost cut by a tenth."""
    file = directory / "what_if.csv"
    with (paths.landing / "reference" / "scenarios.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    rows.append(
        ["cheaper_billing", "Billing a tenth cheaper", "ledger_cost", "billing", "multiply", "0.9", "", ""]
    )
    with file.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return file


def test_a_scenario_run_publishes_the_new_scenarios_beside_unchanged_actual_marts(
    published_sample: Paths, tmp_path: Path, capsys
):
    paths = _copy(published_sample, tmp_path)
    before = _log(paths)
    file = _scenarios_file(paths, tmp_path)

    assert (
        main(["--data-dir", str(paths.data_dir), "scenario", "--file", str(file), "--progress", "steps"]) == 0
    )

    said = capsys.readouterr().out
    after = _log(paths)
    assert set(after) == set(before) == {*PUBLISHED_MARTS, *PUBLISHED_DIMENSIONS}
    # every actual mart: the same rows, the same checksum; the scenario marts: the new scenario's rows added
    assert {t: after[t] for t in after if t not in SCENARIO_TABLES} == {
        t: before[t] for t in before if t not in SCENARIO_TABLES
    }
    assert after["scenario_summary"][0] > before["scenario_summary"][0]
    with duckdb.connect(str(current_database(paths.published)), read_only=True) as con:
        assert con.execute(
            "select sum(operating_profit_change) > 0, bool_and(balanced) from marts.scenario_summary "
            "where scenario = 'cheaper_billing'"
        ).fetchone() == (True, True)
        assert con.execute(
            "select version from marts.dim_scenarios where scenario = 'cheaper_billing'"
        ).fetchone()
    # the file is the landing zone's now; no month was restated (the scenarios file restates nothing)
    assert (paths.landing / "reference" / "scenarios.csv").read_bytes() == file.read_bytes()
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        assert con.execute("select count(*) from landed._awaiting_publication").fetchone() == (0,)
    assert "restating" not in said
    assert "cheaper_billing" in said and "Scenarios against actual" in said
    # one run of the Dagster job `scenarios`, recorded in the data directory's instance
    instance = dagster_instance(paths)
    (latest,) = instance.get_runs(limit=1)
    assert latest.job_name == "scenarios" and latest.is_success


def test_a_scenario_run_refuses_while_a_month_awaits_publication(
    published_sample: Paths, tmp_path: Path, capsys
):
    paths = _copy(published_sample, tmp_path)
    release = os.readlink(paths.published / CURRENT)
    with duckdb.connect(str(paths.warehouse)) as con:
        con.execute(
            "insert into landed._awaiting_publication select period, 'order_lines', current_timestamp::timestamp, 1 "
            "from (select date_trunc('month', max(order_date))::date as period from raw.order_lines)"
        )
    file = _scenarios_file(paths, tmp_path)
    assert main(["--data-dir", str(paths.data_dir), "scenario", "--file", str(file)]) == 1
    error = capsys.readouterr().err
    assert "2024-03 await publication" in error and "cprof run" in error
    assert os.readlink(paths.published / CURRENT) == release
    assert (paths.landing / "reference" / "scenarios.csv").read_bytes() != file.read_bytes()


def test_a_scenario_run_needs_a_publication(tmp_path: Path, capsys):
    paths = Paths(tmp_path / "data")
    paths.landing.mkdir(parents=True)
    assert main(["--data-dir", str(paths.data_dir), "scenario"]) == 1
    assert "nothing is published yet" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["what_if.txt", "missing.csv"])
def test_a_scenario_file_must_be_a_csv_or_parquet_file_that_exists(
    published_sample: Paths, tmp_path: Path, capsys, name: str
):
    paths = _copy(published_sample, tmp_path)
    if name.endswith(".txt"):
        (tmp_path / name).write_text("scenario\n")
    assert main(["--data-dir", str(paths.data_dir), "scenario", "--file", str(tmp_path / name)]) == 1
    assert name in capsys.readouterr().err


def test_a_scenario_file_that_fails_its_checks_leaves_the_landing_zone_and_the_publication_as_they_were(
    published_sample: Paths, tmp_path: Path, capsys
):
    paths = _copy(published_sample, tmp_path)
    landing_file = paths.landing / "reference" / "scenarios.csv"
    before, release = landing_file.read_bytes(), os.readlink(paths.published / CURRENT)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(before + b"try,a try,headcount,enter_order,multiply,1.1,,\n")
    assert main(["--data-dir", str(paths.data_dir), "scenario", "--file", str(bad)]) == 1
    captured = capsys.readouterr()
    assert "lever" in captured.err and "headcount" in captured.err
    assert "back as it was" in captured.out
    assert landing_file.read_bytes() == before
    assert os.readlink(paths.published / CURRENT) == release
