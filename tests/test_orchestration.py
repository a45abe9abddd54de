"""Orchestration: partition-range backfills, idempotent re-runs, late-arriving corrections, the monthly-close
schedule, the landing sensor and the publication's freshness check. Real Dagster runs, real dbt, real DuckDB."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest
from dagster import (
    DagsterEventType,
    RunRequest,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
)

from pipelines.cli import main
from pipelines.definitions import build_definitions
from pipelines.defs.assets.publish import (
    PUBLISHED_DIMENSIONS,
    PUBLISHED_MARTS,
    due_month,
    publication_freshness,
)
from pipelines.defs.assets.transform import CONCURRENT_MONTHS, dbt_threads
from pipelines.defs.automation import landing_sensor
from pipelines.defs.partitions import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    RefreshRange,
    contiguous,
    monthly_partitions_for,
    range_tags,
)
from pipelines.defs.refresh_requests import joined
from pipelines.defs.resources import DataDir
from pipelines.engines.duckdb_warehouse import DuckDBWarehouse
from pipelines.landing.history import DEFAULT_FIRST_MONTH
from pipelines.landing.sources import MONTHLY, SNAPSHOTS
from pipelines.lib.config import Paths
from pipelines.lib.settings import Settings
from pipelines.publication.publish import current_database
from pipelines.run import QUIET, dagster_instance, run_pipeline
from pipelines.sample.generate import GenerateConfig, generate
from tests.dbt_cli import dbt_commands

HISTORY = GenerateConfig(customers=60, months=7, start="2024-01", seed=11)
MONTHS = [f"2024-{m:02d}" for m in range(1, 7)]  # 2024-07 is held back: it "arrives" in the sensor test


def _dbt_threads(paths: Paths, run_id: str) -> set[str]:
    """The ``--threads`` of every dbt command the run started, from its Dagster log (dagster-dbt's "Running dbt
    command" line)."""
    commands = dbt_commands(dagster_instance(paths), run_id)
    assert len(commands) == 2  # the run's two dbt steps
    return {command.split("--threads ")[1].split()[0] for command in commands}


def _published_checksums(paths: Paths) -> dict[str, str]:
    with duckdb.connect(str(current_database(paths.published)), read_only=True) as con:
        return dict(
            con.execute(
                "select table_name, checksum from marts.publish_log "
                "where run_id = (select run_id from marts.publish_log order by published_at desc limit 1)"
            ).fetchall()
        )


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> tuple[Paths, Path]:
    """Six months backfilled with `cprof backfill` into an empty temporary data directory; the generated
    seventh month is kept aside."""
    root = tmp_path_factory.mktemp("history")
    full = root / "generated"
    generate(HISTORY, full)
    paths = Paths(root / "data")
    shutil.copytree(full, paths.landing)
    for source in MONTHLY:
        (paths.landing / source.name / "2024-07.csv").unlink()
    assert main(["--data-dir", str(paths.data_dir), "backfill", "--from", "2024-01", "--to", "2024-06"]) == 0
    return paths, full


@pytest.fixture
def copy_of_history(history, tmp_path) -> tuple[Paths, Path]:
    paths, full = history
    copy = Paths(tmp_path / "data")
    shutil.copytree(paths.data_dir, copy.data_dir, symlinks=True)
    return copy, full


def test_a_range_backfill_into_an_empty_directory_publishes_every_month(history, capsys):
    paths, _ = history
    with duckdb.connect(str(current_database(paths.published)), read_only=True) as con:
        months = [
            f"{p:%Y-%m}"
            for (p,) in con.execute(
                "select distinct period from marts.customer_profitability order by 1"
            ).fetchall()
        ]
        balanced = con.execute(
            "select bool_and(balanced), count(*) from marts.company_reconciliation"
        ).fetchone()
        clv_months = con.execute("select count(distinct period) from marts.customer_clv").fetchone()[0]
    assert months == MONTHS
    assert balanced == (True, 6)
    assert clv_months >= 3  # the first months have too few repeat purchases to fit, with 60 customers
    # one Dagster run covered the whole range
    instance = dagster_instance(paths)
    runs = instance.get_runs()
    assert len(runs) == 1
    assert runs[0].tags[ASSET_PARTITION_RANGE_START_TAG] == "2024-01-01"
    assert runs[0].tags[ASSET_PARTITION_RANGE_END_TAG] == "2024-06-01"
    # planned as one event per asset (with the range), not one per asset and month
    planned = instance.all_logs(runs[0].run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    keys = [event.dagster_event.event_specific_data.asset_key for event in planned]
    assert len(keys) == len(set(keys)) > 40
    # ...and every month of every partitioned asset is materialized
    materialized = instance.all_logs(runs[0].run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    assert {e.dagster_event.partition for e in materialized} >= {f"{m}-01" for m in MONTHS}
    # six months are more than a refresh: dbt built one node at a time
    assert _dbt_threads(paths, runs[0].run_id) == {"1"}


def test_rerunning_a_month_publishes_identical_tables(copy_of_history):
    paths, _ = copy_of_history
    first = _published_checksums(paths)
    assert set(first) == {*PUBLISHED_MARTS, *PUBLISHED_DIMENSIONS}
    said: list[str] = []
    again = run_pipeline(Settings(data_dir=paths.data_dir), "2024-04", "2024-04", progress=said.append)
    # a refresh builds two dbt nodes at a time, the backfill one: the same tables
    assert _dbt_threads(paths, again.run_id) == {"2"}
    assert _published_checksums(paths) == first
    # the snapshot files are the ones validated before: cprof leaves their assets out of the run...
    assert _snapshot_checks(paths, again.run_id) == {"reused": 0, "validated": 0}
    assert any(line.startswith("reference snapshots unchanged since validated") for line in said)
    # ...and the whole job, as the schedule and the sensor launch it, reuses them inside the assets
    job = build_definitions(Settings(data_dir=paths.data_dir), defer_docs=True).resolve_job_def("refresh")
    scheduled = job.execute_in_process(
        instance=dagster_instance(paths), tags=range_tags("2024-04", "2024-04"), run_config=QUIET
    )
    assert scheduled.success and _snapshot_checks(paths, scheduled.run_id) == {
        "reused": len(SNAPSHOTS),
        "validated": 0,
    }
    assert _published_checksums(paths) == first


@pytest.mark.system
def test_backfilling_a_range_twice_or_rebuilding_everything_publishes_identical_tables(copy_of_history):
    """The longer reruns, two backfills of four months and a full refresh of six (the system tier: a few minutes;
    the fast tier reruns a month, above)."""
    paths, _ = copy_of_history
    first = _published_checksums(paths)
    assert set(first) == {*PUBLISHED_MARTS, *PUBLISHED_DIMENSIONS}
    assert main(["--data-dir", str(paths.data_dir), "backfill", "--from", "2024-02", "--to", "2024-05"]) == 0
    assert main(["--data-dir", str(paths.data_dir), "backfill", "--from", "2024-02", "--to", "2024-05"]) == 0
    assert _published_checksums(paths) == first
    whole = run_pipeline(
        Settings(data_dir=paths.data_dir), "2024-01", "2024-06", progress=lambda _: None, full_refresh=True
    )
    assert _published_checksums(paths) == first  # incremental and whole rebuilds agree to the byte
    assert _snapshot_checks(paths, whole.run_id) == {"reused": 0, "validated": len(SNAPSHOTS)}


def _snapshot_checks(paths: Paths, run_id: str) -> dict[str, int]:
    """How many reference snapshots a run validated with their suite, and how many it reused unchanged."""
    evaluations = [
        event.dagster_event.event_specific_data
        for event in dagster_instance(paths).all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    ]
    snapshots = [e for e in evaluations if e.asset_key.path[1] in {s.name for s in SNAPSHOTS}]
    assert all(e.passed for e in snapshots)
    reused = sum(1 for e in snapshots if "not validated again" in (e.description or ""))
    return {"reused": reused, "validated": len(snapshots) - reused}


SENTINELS = {
    # table: (column, sentinel value)
    # a column no foreign key checks: the publication refuses a region code without its dimension row
    "marts.customer_profitability": ("customer_name", "'SENTINEL'"),
    "marts.whale_curve": ("window_months", "-1"),
    "marts.customer_profit_levers": ("lever_reason", "'SENTINEL'"),
    "marts.customer_retention": ("retention_rate", "-1"),
    "marts.customer_clv": ("t", "-1"),
    "marts.satisfaction_drivers": ("responses", "-1"),
    "marts.customer_scorecard": ("direction", "'SENTINEL'"),
}


def _rebuilt_months(paths: Paths) -> dict[str, list[str]]:
    """Per table, the months whose rows no longer carry the sentinel: the months the run rewrote."""
    rebuilt = {}
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        for table, (column, value) in SENTINELS.items():
            rebuilt[table] = [
                f"{p:%Y-%m}"
                for (p,) in con.execute(
                    f"select distinct period from {table} where {column} is distinct from {value} order by 1"
                ).fetchall()
            ]
    return rebuilt


def test_a_corrected_old_month_rebuilds_that_month_and_the_trailing_views_and_nothing_else(copy_of_history):
    paths, _ = copy_of_history
    with duckdb.connect(str(paths.warehouse)) as con:
        for table, (column, value) in SENTINELS.items():
            con.execute(f"update {table} set {column} = {value}")
        ledger_before = con.execute(
            "select ledger_cost from marts.company_reconciliation where period = date '2024-02-01'"
        ).fetchone()[0]
        others_before = con.execute(
            "select period, ledger_cost, operating_profit from marts.company_reconciliation "
            "where period <> date '2024-02-01' order by 1"
        ).fetchall()
    # A corrected ledger file for February arrives: one posting raised by 100.00.
    ledger = paths.landing / "gl_costs" / "2024-02.csv"
    header, first, *rest = ledger.read_text().splitlines()
    fields = first.split(",")
    amount_at = header.split(",").index("amount")
    fields[amount_at] = f"{float(fields[amount_at]) + 100:.2f}"
    ledger.write_text("\n".join([header, ",".join(fields), *rest]) + "\n")

    run_pipeline(Settings(data_dir=paths.data_dir), "2024-02", "2024-02", progress=lambda _: None)

    rebuilt = _rebuilt_months(paths)
    assert rebuilt["marts.customer_profitability"] == ["2024-02"]  # a month's own figures: that month only
    assert rebuilt["marts.whale_curve"] == MONTHS[1:]  # trailing 12 months: February and after
    assert rebuilt["marts.customer_profit_levers"] == MONTHS[1:]  # its t12m window too
    assert rebuilt["marts.satisfaction_drivers"] == MONTHS[1:]
    assert rebuilt["marts.customer_retention"] == MONTHS[1:]  # all history before a month: from February on
    assert rebuilt["marts.customer_scorecard"] == MONTHS[1:]
    clv_months = rebuilt["marts.customer_clv"]
    assert clv_months and clv_months[0] >= "2024-02" and clv_months[-1] == "2024-06"
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        assert not con.execute(
            "select count(*) from marts.customer_clv where period < date '2024-02-01' and t <> -1"
        ).fetchone()[0]
        ledger_after, balanced = con.execute(
            "select ledger_cost, balanced from marts.company_reconciliation where period = date '2024-02-01'"
        ).fetchone()
        others_after = con.execute(
            "select period, ledger_cost, operating_profit from marts.company_reconciliation "
            "where period <> date '2024-02-01' order by 1"
        ).fetchall()
    assert ledger_after - ledger_before == 100 and balanced
    assert others_after == others_before


def test_monthly_close_schedule_refreshes_the_previous_month(tmp_path: Path):
    defs = build_definitions(Settings(data_dir=tmp_path / "data"))
    schedule = defs.resolve_schedule_def("monthly_close")
    assert schedule.cron_schedule == "0 6 3 * *"
    with (
        instance_for_test() as instance,  # the daemon evaluates it with its instance: here, an empty one
        build_schedule_context(
            instance, scheduled_execution_time=datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
        ) as context,
    ):
        requests = schedule.evaluate_tick(context).run_requests
    assert len(requests) == 1
    assert requests[0].partition_key == "2026-11-01"
    assert schedule.job_name == "refresh"


# The partitions of a code location loaded before any history was recorded: 2020-01 to the last complete month,
# so that every month the tests land is one of them.
OPEN_PARTITIONS = monthly_partitions_for(DEFAULT_FIRST_MONTH, None)


def _sensor(paths: Paths, instance):
    context = build_sensor_context(
        instance=instance, resources={"data_dir": DataDir(path=str(paths.data_dir))}
    )
    return landing_sensor(OPEN_PARTITIONS)(context)


def test_landing_sensor_waits_for_a_complete_month_then_refreshes_it(copy_of_history):
    paths, full = copy_of_history
    instance = dagster_instance(paths)
    result = _sensor(paths, instance)
    assert (
        isinstance(result, SkipReason)
        and "every complete month is published and unchanged" in result.skip_message
    )

    arrived = [s.name for s in MONTHLY][:4]
    for name in arrived:
        shutil.copy(full / name / "2024-07.csv", paths.landing / name / "2024-07.csv")
    result = _sensor(paths, instance)
    assert isinstance(result, SkipReason)
    for source in MONTHLY:
        assert (f"{source.name}/2024-07.csv" in result.skip_message) == (source.name not in arrived)

    for source in MONTHLY:
        shutil.copy(full / source.name / "2024-07.csv", paths.landing / source.name / "2024-07.csv")
    requests = _sensor(paths, instance).run_requests
    assert [r.partition_key for r in requests] == ["2024-07-01"]
    assert requests[0].run_key.startswith("2024-07..2024-07:")


def test_landing_sensor_sees_a_corrected_old_file(copy_of_history):
    paths, _ = copy_of_history
    instance = dagster_instance(paths)
    returns = paths.landing / "returns" / "2024-03.csv"
    text = returns.read_text()
    returns.write_text(text)  # same content, rewritten: a new modification time, the same SHA-256
    os.utime(returns, ns=(returns.stat().st_atime_ns, returns.stat().st_mtime_ns + 1_000_000_000))
    assert isinstance(_sensor(paths, instance), SkipReason)
    returns.write_text(text.rstrip("\n").rsplit("\n", 1)[0] + "\n")  # a corrected export: one return less
    requests = _sensor(paths, instance).run_requests
    assert len(requests) == 1 and requests[0].partition_key == "2024-03-01"
    assert isinstance(requests[0], RunRequest)


def test_landing_sensor_asks_for_one_run_per_contiguous_range():
    assert contiguous(["2024-03", "2023-12", "2024-01", "2024-06"]) == [
        ["2023-12", "2024-01"],
        ["2024-03"],
        ["2024-06"],
    ]


def test_landing_sensor_joins_ranges_apart_only_by_published_unchanged_months():
    """A run rebuilds everything from its first month on: two ranges with only clean months between are one run;
    a month that is not clean (waiting for its retry, missing files) keeps them apart."""
    due = ["2023-12", "2024-01", "2024-03", "2024-06"]
    assert joined(due, clean={"2024-02", "2024-04"}) == [
        ["2023-12", "2024-01", "2024-02", "2024-03"],
        ["2024-06"],
    ]
    assert joined(due, clean={"2024-02", "2024-04", "2024-05"}) == [
        ["2023-12", "2024-01", "2024-02", "2024-03", "2024-04", "2024-05", "2024-06"]
    ]
    assert joined(due, clean=set()) == contiguous(due)


def test_a_refresh_range_runs_from_its_first_to_its_last_month_whatever_awaits():
    """The months first..last dbt rebuilds: the run's own when nothing awaits publication (a month's text is
    not taken apart), widened both ways by months awaiting it."""
    assert (RefreshRange(("2024-03",)).first, RefreshRange(("2024-03",)).last) == ("2024-03", "2024-03")
    plain = RefreshRange(("2024-03", "2024-04"))
    assert (plain.first, plain.last, plain.also, plain.sentence()) == ("2024-03", "2024-04", [], None)
    widened = RefreshRange(("2024-03", "2024-04"), ("2024-01", "2024-04", "2024-06"))
    assert (widened.first, widened.last, widened.also) == ("2024-01", "2024-06", ["2024-01", "2024-06"])
    assert "rebuilding 2024-01 to 2024-06" in widened.sentence()


def test_dbt_builds_two_nodes_at_a_time_for_a_refresh_and_one_for_a_longer_range_or_a_full_refresh():
    one_month = RefreshRange(("2024-03",))
    assert dbt_threads(one_month, False, "duckdb") == ["--threads", "2"]
    # the range counts the months awaiting publication too, across a year's end
    widest_refresh = RefreshRange(("2024-01",), ("2023-12", "2024-02"))
    assert CONCURRENT_MONTHS == 3 and dbt_threads(widest_refresh, False, "duckdb") == ["--threads", "2"]
    assert dbt_threads(RefreshRange(("2024-01",), ("2023-10",)), False, "duckdb") == ["--threads", "1"]
    assert dbt_threads(RefreshRange(tuple(f"2024-{m:02d}" for m in range(1, 7))), False, "duckdb") == [
        "--threads",
        "1",
    ]
    assert dbt_threads(one_month, True, "duckdb") == ["--threads", "1"]
    # Spark's targets keep their profile's threads
    assert dbt_threads(one_month, False, "spark") == []


def test_freshness_check_knows_which_month_is_due(history):
    paths, _ = history
    assert due_month(datetime(2024, 7, 3, 9, 0, tzinfo=UTC)) == date(2024, 6, 1)
    assert due_month(datetime(2024, 7, 3, 8, 59, tzinfo=UTC)) == date(2024, 5, 1)
    assert due_month(datetime(2025, 1, 10, tzinfo=UTC)) == date(2024, 12, 1)
    fresh, sentence, _ = publication_freshness(paths.published, datetime(2024, 7, 3, 10, 0, tzinfo=UTC))
    assert fresh and "published through 2024-06" in sentence
    stale, sentence, metadata = publication_freshness(paths.published, datetime(2024, 8, 5, tzinfo=UTC))
    assert not stale and "2024-07 was due" in sentence and metadata["due_month"] == "2024-07"
    missing, sentence, _ = publication_freshness(paths.data_dir / "nowhere", datetime(2024, 8, 5, tzinfo=UTC))
    assert not missing and "nothing is published" in sentence


def test_the_code_location_exposes_partitions_schedule_sensor_and_one_backfill_policy(tmp_path: Path):
    defs = build_definitions(Settings(data_dir=tmp_path / "data"))
    graph = defs.resolve_asset_graph()
    partitioned = [key for key in graph.get_all_asset_keys() if graph.get(key).partitions_def is not None]
    assert len(partitioned) > 30
    assert len({graph.get(key).partitions_def for key in partitioned}) == 1
    assert all(graph.get(key).backfill_policy.max_partitions_per_run is None for key in partitioned)
    assert {s.name for s in defs.sensors} >= {"landing_sensor"}
    assert {s.name for s in defs.schedules} >= {"monthly_close", "published_marts_freshness"}


def test_a_patched_publication_equals_the_warehouse_even_when_older_periods_changed_unpublished(tmp_path):
    """Publishing copies the current release and replaces the periods from the run's first month; a table
    whose older periods changed in the warehouse without being published (a failed run) is copied whole."""
    from pipelines.publication.publish import publish, table_checksum

    warehouse, published = tmp_path / "warehouse.duckdb", tmp_path / "published"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema marts")
        con.execute(
            "create table marts.facts as select (date '2024-01-01' + to_months(i % 6))::date as period, "
            "i as id, i * 1.5 as amount from range(600) t(i)"
        )
        con.execute("create table marts.lookup as select i as id from range(5) t(i)")
    first, last = date(2024, 1, 1), date(2024, 6, 1)
    publish(DuckDBWarehouse(warehouse), published, first_period=first, last_period=last)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "update marts.facts set amount = amount + 1 where period = date '2024-05-01'"
        )  # refreshed
        con.execute("update marts.facts set amount = -1 where id = 7")  # 2024-02: changed, never published
        con.execute("insert into marts.lookup values (99)")
        wanted = {t: table_checksum(con, f"marts.{t}") for t in ("facts", "lookup")}
    publication = publish(
        DuckDBWarehouse(warehouse),
        published,
        first_period=first,
        last_period=last,
        changed_from=date(2024, 5, 1),
    )
    with duckdb.connect(str(publication.database), read_only=True) as con:
        assert {t: table_checksum(con, f"marts.{t}") for t in ("facts", "lookup")} == wanted
        assert con.execute("select count(distinct run_id) from marts.publish_log").fetchone()[0] == 2


def test_the_checksum_sees_every_column_even_one_named_like_a_table_alias():
    """``customer_clv`` has a column ``t``: a checksum written as ``hash(t) from table as t`` hashed that column
    alone, so a changed profit CLV published with the same checksum."""
    from pipelines.publication.publish import table_checksum

    with duckdb.connect() as con:
        con.execute(
            "create table facts as select i as t, i * 1.5 as amount, 'x' as label from range(10) r(i)"
        )
        before = table_checksum(con, "facts")
        con.execute("update facts set amount = amount + 0.5 where t = 3")
        changed_amount = table_checksum(con, "facts")
        con.execute("update facts set label = 'y' where t = 4")
        changed_label = table_checksum(con, "facts")
        con.execute("update facts set label = 'x' where t = 4")
        con.execute("update facts set amount = amount - 0.5 where t = 3")
        assert len({before, changed_amount, changed_label}) == 3
        assert table_checksum(con, "facts") == before
