"""Scenarios as data (issue 30, item 1): the optional reference file landing/reference/scenarios.csv, its suite,
its version, and dim_scenarios. Real runs on real files: the sample with its scenarios publishes them; a landing
zone without the file publishes every other table exactly as with it; each rule of the suite stops a bad file at
the check the run calls, naming file, line, column and rule; a full run on a bad file publishes nothing."""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb
import pytest

from data_checks.gx_run import LandingValidator
from pipelines.defs.assets.publish import SCENARIO_MARTS
from pipelines.engines.duckdb_ingest import load, validation_frame
from pipelines.landing.inventory import ABSENT, landing_inventory, run_files
from pipelines.landing.sources import BY_NAME, Source
from pipelines.lib.config import Paths
from pipelines.lib.settings import Settings
from pipelines.publication.publish import CURRENT
from pipelines.run import PipelineError, run_pipeline
from pipelines.sample.generate import SCENARIOS


def _published(paths: Paths, sql: str) -> list[tuple]:
    with duckdb.connect(str(paths.published / CURRENT / "cprof.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def _publish_log(paths: Paths) -> dict[str, tuple[int, str]]:
    """The last publication's row count and checksum of every table."""
    return {
        table: (rows, checksum)
        for table, rows, checksum in _published(
            paths,
            "select table_name, row_count, checksum from marts.publish_log "
            "where run_id = (select run_id from marts.publish_log order by published_at desc limit 1)",
        )
    }


def _fingerprint(paths: Paths) -> tuple[str, str]:
    """Where ``current`` points and a SHA-256 over every file of the publication it points at."""
    digest = hashlib.sha256()
    release = (paths.published / CURRENT).resolve()
    for path in sorted(p for p in release.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(release)).encode())
        digest.update(path.read_bytes())
    return os.readlink(paths.published / CURRENT), digest.hexdigest()


# --- the sample's scenarios, published -------------------------------------------------------------


def test_the_sample_publishes_its_scenarios_with_the_baseline(published_sample: Paths):
    file = published_sample.landing / "reference" / "scenarios.csv"
    version = hashlib.sha256(file.read_bytes()).hexdigest()
    rows = _published(
        published_sample,
        "select scenario, is_baseline, changes, levers, first_period, last_period, version "
        "from marts.dim_scenarios order by scenario",
    )
    # the small sample holds 2024-01..2024-03: the trailing 12 months of the release, within history
    window = (date(2024, 1, 1), date(2024, 3, 1))
    assert rows == [
        ("actual", True, 0, None, None, None, None),
        ("better_support", False, 2, "ledger_cost, satisfaction", *window, version),
        ("express_surcharge", False, 2, "driver_volume", *window, version),
        ("fewer_visits", False, 1, "driver_volume", *window, version),
        ("self_service_support", False, 1, "driver_volume", *window, version),
        (
            "smaller_field_team",
            False,
            3,
            "driver_volume, ledger_cost, practical_capacity_minutes",
            *window,
            version,
        ),
    ]
    assert {row[0] for row in SCENARIOS} == {
        "better_support",
        "express_surcharge",
        "fewer_visits",
        "self_service_support",
        "smaller_field_team",
    }
    assert "dim_scenarios" in _publish_log(published_sample)
    (description,) = _published(
        published_sample, "select description from marts.dim_scenarios where is_baseline"
    )
    assert "baseline" in description[0]


def test_months_of_a_change_are_its_own_when_given(published_sample: Paths, tmp_path: Path):
    """dim_scenarios' months: a change's own first and last month where the file gives them."""
    paths = Paths(tmp_path / "data")
    shutil.copytree(published_sample.data_dir, paths.data_dir, symlinks=True)
    file = paths.landing / "reference" / "scenarios.csv"
    rows = _rows(file)
    assert rows[4][0] == "fewer_visits"
    rows[4][-2:] = ["2024-02", "2024-03"]
    _write(file, rows)
    run_pipeline(Settings(data_dir=paths.data_dir), progress=lambda _: None)
    assert _published(
        paths,
        "select first_period, last_period, version from marts.dim_scenarios where scenario = 'fewer_visits'",
    ) == [(date(2024, 2, 1), date(2024, 3, 1), hashlib.sha256(file.read_bytes()).hexdigest())]


def test_without_the_file_everything_else_publishes_as_before(published_sample: Paths, tmp_path: Path):
    """The file is optional: a landing zone without it is complete, loads no scenarios (raw says none) and
    publishes every other table with the same rows and checksums as with it; dim_scenarios holds actual only."""
    paths = Paths(tmp_path / "data")
    shutil.copytree(published_sample.landing, paths.landing)
    (paths.landing / "reference" / "scenarios.csv").unlink()
    assert landing_inventory(paths.landing).problems == []
    assert ("scenarios", None) not in run_files(paths.landing, ["2024-01"])

    run_pipeline(Settings(data_dir=paths.data_dir), progress=lambda _: None)

    with_file, without = _publish_log(published_sample), _publish_log(paths)
    assert set(without) == set(with_file)
    scenario_tables = {*SCENARIO_MARTS, "dim_scenarios"}
    moved = [t for t in with_file if t not in scenario_tables and with_file[t] != without[t]]
    assert moved == []
    # the scenario marts hold the baseline only, still the published marts
    assert _published(paths, "select distinct scenario from marts.scenario_summary") == [("actual",)]
    assert _published(paths, "select count(*) from marts.scenario_comparison") == [(0,)]
    assert _published(paths, "select scenario, is_baseline, changes, version from marts.dim_scenarios") == [
        ("actual", True, 0, None)
    ]
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        assert con.execute("select count(*) from raw.scenarios").fetchone() == (0,)
        assert con.execute(
            "select sha256, promoted_at is not null from landed._snapshot_files where source = 'scenarios'"
        ).fetchone() == (ABSENT, True)


def test_only_a_snapshot_may_be_absent():
    with pytest.raises(ValueError, match="only a snapshot may be absent"):
        Source("x", "monthly", "row", {"a": "VARCHAR"}, ("a",), "x", empty_month_ok=True, absent_ok=True)
    with pytest.raises(ValueError, match="only a snapshot may be absent"):
        Source("x", "monthly", "row", {"a": "VARCHAR"}, ("a",), "x", empty_month_ok=True, versioned=True)
    assert [name for name, source in BY_NAME.items() if source.absent_ok] == ["scenarios"]


# --- the suite: each rule at the check the run calls ----------------------------------------------------


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def _write(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)


COLUMNS = ["scenario", "description", "lever", "target", "operation", "value", "first_month", "last_month"]
# The line of a change appended to the sample's file: after its header and its changes.
ADDED = len(SCENARIOS) + 2


def _change(**values: str) -> Callable[[Path], None]:
    """Append one change (the others as in the sample's first row, months empty): it is on line ADDED."""

    def damage(path: Path) -> None:
        rows = _rows(path)
        row = dict(zip(COLUMNS, ["try", "a try", "unit_minutes", "enter_order", "multiply", "1.1", "", ""]))
        row.update(values)
        _write(path, [*rows, [row[c] for c in COLUMNS]])

    return damage


OVERLAP = "fewer_visits driver_volume visit_customer:small_business overlaps 1 other change(s) of its lever and target"
BAD: dict[str, tuple[Callable[[Path], None], str | tuple[str, ...]]] = {
    # case: (damage, what the message must say: rule, column, value, line)
    "unknown lever": (
        _change(lever="headcount"),
        f"expect_column_values_to_be_in_set on lever: 1 unexpected (e.g. headcount at line {ADDED})",
    ),
    "unknown operation": (
        _change(operation="divide"),
        f"expect_column_values_to_be_in_set on operation: 1 unexpected (e.g. divide at line {ADDED})",
    ),
    "unit_minutes of an unknown activity": (
        _change(target="juggle"),
        f"_unknown_target: 1 unexpected (e.g. unit_minutes juggle at line {ADDED})",
    ),
    "unit_minutes of a share activity": (
        _change(target="invoice_orders"),
        f"_unknown_target: 1 unexpected (e.g. unit_minutes invoice_orders at line {ADDED})",
    ),
    "capacity of an unknown cost centre": (
        _change(lever="practical_capacity_minutes", target="marketing"),
        f"_unknown_target: 1 unexpected (e.g. practical_capacity_minutes marketing at line {ADDED})",
    ),
    "ledger cost of an unknown cost centre": (
        _change(lever="ledger_cost", target="marketing"),
        f"_unknown_target: 1 unexpected (e.g. ledger_cost marketing at line {ADDED})",
    ),
    "share of a time activity": (
        _change(lever="share", target="enter_order"),
        f"_unknown_target: 1 unexpected (e.g. share enter_order at line {ADDED})",
    ),
    "driver volume of an unknown segment": (
        _change(lever="driver_volume", target="visit_customer:giants"),
        f"_unknown_target: 1 unexpected (e.g. driver_volume visit_customer:giants at line {ADDED})",
    ),
    "price of an unknown product, segment or customer": (
        _change(lever="unit_price", target="P99999"),
        f"_unknown_target: 1 unexpected (e.g. unit_price P99999 at line {ADDED})",
    ),
    "satisfaction of a question that is not an attribute": (
        _change(lever="satisfaction", target="NPS", operation="add", value="1"),
        f"_unknown_target: 1 unexpected (e.g. satisfaction NPS at line {ADDED})",
    ),
    "overlapping changes": (
        _change(
            scenario="fewer_visits",
            lever="driver_volume",
            target="visit_customer:small_business",
            value="0.7",
            first_month="2024-02",
            last_month="2024-02",
        ),
        (
            "_overlapping_change: 2 unexpected (e.g. ",
            f"{OVERLAP} at line 5",
            f"{OVERLAP} at line {ADDED}",
        ),
    ),
    "negative multiplier": (
        _change(value="-0.5"),
        f"_negative_multiplier: 1 unexpected (e.g. -0.500000 at line {ADDED})",
    ),
    "first month after the last": (
        _change(first_month="2024-03", last_month="2024-01"),
        f"_first_month_after_last_month: 1 unexpected (e.g. 2024-03 > 2024-01 at line {ADDED})",
    ),
    "a month not written YYYY-MM": (
        _change(first_month="2024-3", last_month="2024-03"),
        f"expect_column_values_to_match_regex on first_month: 1 unexpected (e.g. 2024-3 at line {ADDED})",
    ),
    "the reserved name actual": (
        _change(scenario="Actual"),
        f"_reserved_scenario: 1 unexpected (e.g. Actual at line {ADDED})",
    ),
    "add on a driver volume": (
        _change(lever="driver_volume", target="visit_customer", operation="add", value="5"),
        "_operation_refused: 1 unexpected (e.g. add on driver_volume",
    ),
    "zero practical capacity": (
        _change(lever="practical_capacity_minutes", target="warehouse", operation="set", value="0"),
        f"_value_outside_lever_range: 1 unexpected (e.g. capacity set 0.000000 at line {ADDED})",
    ),
    "no value": (_change(value=""), "expect_column_values_to_not_be_null on value"),
}


def _stopped(paths: Paths, file: Path) -> str:
    """What stops the scenarios file in the run's ingest steps: its load into landed, else its suite."""
    from pipelines.landing.structure import LandingError

    with duckdb.connect(str(paths.warehouse)) as con:
        try:
            load(con, paths.landing, "scenarios")
        except LandingError as error:
            return str(error)
        frame = validation_frame(con, "scenarios")
    outcome = LandingValidator(paths.data_dir / "gx").validate("scenarios", None, frame, str(file))
    assert not outcome.success, outcome.message()
    return outcome.message()


def _raw_scenarios(paths: Paths) -> list[tuple]:
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        return con.execute("select * exclude (_loaded_at) from raw.scenarios order by all").fetchall()


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_scenarios_file_is_stopped_at_its_suite(published_sample: Paths, tmp_path: Path, case: str):
    damage, expected = BAD[case]
    paths = Paths(tmp_path / "data")
    paths.data_dir.mkdir()
    shutil.copy(published_sample.warehouse, paths.warehouse)
    shutil.copytree(published_sample.landing, paths.landing)
    file = paths.landing / "reference" / "scenarios.csv"
    before = _raw_scenarios(paths)
    damage(file)

    message = _stopped(paths, file)
    for words in (expected,) if isinstance(expected, str) else expected:
        assert words in message, message
    assert str(file) in message
    assert _raw_scenarios(paths) == before


def test_the_sample_file_passes_its_suite(published_sample: Paths, tmp_path: Path):
    """The rules do not refuse a good file (the cases above fail for the one change they add)."""
    paths = Paths(tmp_path / "data")
    paths.data_dir.mkdir()
    shutil.copy(published_sample.warehouse, paths.warehouse)
    shutil.copytree(published_sample.landing, paths.landing)
    file = paths.landing / "reference" / "scenarios.csv"
    _change(target="pick_and_pack", first_month="2024-01", last_month="2024-02")(file)
    with duckdb.connect(str(paths.warehouse)) as con:
        load(con, paths.landing, "scenarios")
        frame = validation_frame(con, "scenarios")
    outcome = LandingValidator(paths.data_dir / "gx").validate("scenarios", None, frame, str(file))
    assert outcome.success, outcome.message()
    assert outcome.rows == len(SCENARIOS) + 1


def test_a_run_on_a_bad_scenarios_file_stops_and_leaves_the_publication(
    published_sample: Paths, tmp_path: Path
):
    paths = Paths(tmp_path / "data")
    shutil.copytree(published_sample.data_dir, paths.data_dir, symlinks=True)
    file = paths.landing / "reference" / "scenarios.csv"
    before = _fingerprint(paths)
    _change(target="juggle")(file)

    with pytest.raises(PipelineError) as caught:
        run_pipeline(Settings(data_dir=paths.data_dir), progress=lambda _: None)
    message = str(caught.value)
    assert str(file) in message, message
    assert f"_unknown_target: 1 unexpected (e.g. unit_minutes juggle at line {ADDED})" in message, message
    assert _fingerprint(paths) == before
