"""A refresh that fails is repaired by the next, as an operator meets it: a real `cprof run` killed in its dbt
build after promoting a corrected month, then a refresh of another month, then the landing sensor evaluated as
the daemon evaluates it, against the real instance of the data directory; and the same under a real
`dagster-daemon` (the landing sensor's runs, run monitoring, the failure alerts), with a month whose returns fail
their suite, which no run of another month publishes."""

from __future__ import annotations

import json
import shutil
import signal
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterRunStatus,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
)

from pipelines.definitions import build_definitions
from pipelines.defs.automation import landing_sensor
from pipelines.defs.resources import DataDir
from pipelines.engines.duckdb_ingest import months_awaiting_publication
from pipelines.landing.sources import MONTHLY
from pipelines.lib.config import Paths
from pipelines.lib.settings import Settings
from pipelines.publication.publish import current_database
from pipelines.run import PipelineError, dagster_instance, run_pipeline
from pipelines.runtime.monitoring import fail_dead_runs
from pipelines.sample.generate import GenerateConfig
from tests.test_alerts import tick
from tests.test_operations import cprof, until
from tests.test_orchestration import OPEN_PARTITIONS

CORRECTED = "2024-02"
CORRECTION = Decimal("10.00")


def _published_ledger(paths: Paths) -> dict[str, Decimal]:
    """Per month, the ledger cost the publication BI tools read holds (company_reconciliation)."""
    with duckdb.connect(str(current_database(paths.published)), read_only=True) as con:
        rows = con.execute(
            "select strftime(period, '%Y-%m'), ledger_cost from marts.company_reconciliation order by 1"
        ).fetchall()
    return {month: Decimal(value) for month, value in rows}


def _raw_ledger(paths: Paths, month: str) -> Decimal:
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        return con.execute(
            "select sum(amount) from raw.gl_costs where strftime(_period, '%Y-%m') = ?", [month]
        ).fetchone()[0]


def _correct_ledger(landing: Path, month: str, by: Decimal) -> None:
    """A corrected export of the month's ledger: the first line's amount raised by ``by``."""
    path = landing / "gl_costs" / f"{month}.csv"
    header, first, *rest = path.read_text().splitlines()
    *key, amount = first.split(",")
    path.write_text("\n".join([header, ",".join([*key, str(Decimal(amount) + by)]), *rest]) + "\n")


def _after_a_quiet_sensor_tick(daemon, timeout: float = 150) -> None:
    """Return once the daemon's landing sensor has finished a tick that requested nothing: its next tick is a
    minute away (minimum_interval_seconds), so a file changed now is seen first by what the test starts next,
    not by the sensor (which would otherwise request the month itself, at random, before the test's run)."""
    marks = ("Sensor landing_sensor skipped", "No run requests returned for landing_sensor")
    seen = sum(1 for line in list(daemon.lines) if any(mark in line for mark in marks))
    until(
        lambda: sum(1 for line in list(daemon.lines) if any(mark in line for mark in marks)) > seen,
        timeout,
        "a tick of the landing sensor",
    )


def _kill_once_released(run) -> None:
    """SIGKILL a `cprof run` of one month as soon as its six raw steps are done: the month is released to raw,
    and dbt, just starting, has rebuilt nothing yet (the worst point: every mart of the month is stale)."""
    for source in MONTHLY:
        run.wait_for(f"raw__{source.name}: done", 240)
    run.kill()


def _sensor(paths: Paths, instance, retry_backoff: float = Settings.retry_backoff_seconds):
    """The landing sensor's evaluation, as the daemon runs it, with the setting retry_backoff_seconds."""
    data_dir = DataDir(path=str(paths.data_dir), retry_backoff_seconds=retry_backoff)
    context = build_sensor_context(instance=instance, resources={"data_dir": data_dir})
    return landing_sensor(OPEN_PARTITIONS)(context)


@pytest.fixture
def copy_of_published(published_sample: Paths, tmp_path: Path) -> Paths:
    paths = Paths(tmp_path / "data")
    shutil.copytree(published_sample.data_dir, paths.data_dir, symlinks=True)
    return paths


@pytest.mark.system
def test_a_run_killed_in_dbt_build_is_repaired_by_the_next_refresh_of_another_month(copy_of_published):
    paths = copy_of_published
    before = _published_ledger(paths)
    _correct_ledger(paths.landing, CORRECTED, CORRECTION)

    killed = cprof(paths, "run", "--from", CORRECTED, "--to", CORRECTED, "--progress", "live")
    _kill_once_released(killed)  # raw holds the corrected ledger; dbt is starting, nothing rebuilt yet

    assert _raw_ledger(paths, CORRECTED) == before[CORRECTED] + CORRECTION
    assert _published_ledger(paths) == before  # nothing published
    assert months_awaiting_publication(paths.warehouse) == [CORRECTED]  # ...and the warehouse knows it

    # The daemon's run monitoring fails the killed run; the sensor, as the daemon evaluates it, requests the
    # month again once the backoff has passed, and says when before.
    instance = dagster_instance(paths)
    assert len(fail_dead_runs(instance)) == 1
    waiting = _sensor(paths, instance, retry_backoff=600)
    assert isinstance(waiting, SkipReason)
    assert (
        f"{CORRECTED}: gl_costs changed since it was published; 1 refresh(es) failed, attempt 2 of 3 after"
        in (waiting.skip_message)
    )
    requests = _sensor(paths, instance, retry_backoff=0).run_requests
    assert [r.partition_key for r in requests] == [f"{CORRECTED}-01"]
    assert requests[0].run_key.endswith(":retry1")  # not the key of the first attempt: Dagster would drop it

    # The monthly close of 2024-03 requests its month: the run rebuilds 2024-02 with it (below).
    schedule = build_definitions(Settings(data_dir=paths.data_dir)).resolve_schedule_def("monthly_close")
    at = datetime(2024, 4, 3, 6, 0, tzinfo=UTC)
    with build_schedule_context(instance, scheduled_execution_time=at) as context:
        (scheduled,) = schedule.evaluate_tick(context).run_requests
    assert scheduled.partition_key == "2024-03-01"

    # The next refresh, of a later month, rebuilds the dirty month with it (from raw: not reloaded) and
    # publishes both correctly.
    lines: list[str] = []
    run_pipeline(Settings(data_dir=paths.data_dir), "2024-03", "2024-03", progress=lines.append, live=False)
    assert (
        f"also refreshing {CORRECTED}: in raw and awaiting publication (released by a run that did not publish "
        f"it, or restated); rebuilding {CORRECTED} to 2024-03, not reloading"
    ) in "\n".join(lines)
    after = _published_ledger(paths)
    assert after[CORRECTED] == before[CORRECTED] + CORRECTION == _raw_ledger(paths, CORRECTED)
    assert after["2024-03"] == before["2024-03"] and after["2024-01"] == before["2024-01"]
    assert months_awaiting_publication(paths.warehouse) == []

    # Published: the sensor has nothing left to ask for.
    result = _sensor(paths, instance)
    assert isinstance(result, SkipReason) and "every complete month is published and unchanged" in (
        result.skip_message
    ), result


def test_a_copied_data_directory_requests_nothing(published_sample: Paths, tmp_path: Path):
    # a backup restored, an rsync without -t: every file gets a new modification time, same content
    paths = Paths(tmp_path / "data")
    shutil.copytree(published_sample.data_dir, paths.data_dir, symlinks=True, copy_function=shutil.copy)
    landed = paths.landing / "gl_costs" / "2024-01.csv"
    assert (
        landed.stat().st_mtime_ns
        != (published_sample.landing / "gl_costs" / "2024-01.csv").stat().st_mtime_ns
    )
    result = _sensor(paths, dagster_instance(paths))
    assert isinstance(result, SkipReason), result
    assert result.skip_message == "every complete month is published and unchanged"


def test_a_month_that_keeps_failing_is_retried_three_times_then_left_to_an_operator(copy_of_published):
    paths = copy_of_published
    ledger = paths.landing / "gl_costs" / "2024-03.csv"
    header, first, *rest = ledger.read_text().splitlines()
    ledger.write_text("\n".join([header, first.rsplit(",", 1)[0] + ",12.3.4", *rest]) + "\n")  # not a number
    instance = dagster_instance(paths)
    alerts = build_definitions(Settings(data_dir=paths.data_dir, retry_backoff_seconds=0))
    cursor = tick(alerts, instance, None).cursor  # the failure sensor, as the daemon runs it, from now on
    for attempt in range(3):
        (request,) = _sensor(paths, instance, retry_backoff=0).run_requests
        assert request.partition_key == "2024-03-01" and request.run_key.endswith(f":retry{attempt}")
        with pytest.raises(PipelineError, match="12.3.4"):  # the run the request stands for, as cprof runs it
            run_pipeline(
                Settings(data_dir=paths.data_dir), "2024-03", "2024-03", progress=lambda _: None, live=False
            )
    result = _sensor(paths, instance, retry_backoff=0)
    assert isinstance(result, SkipReason)
    assert (
        "2024-03: gl_costs changed since it was published, and its last 3 refreshes failed: not retried (limit 3)"
        in (result.skip_message)
    )

    # Each failure was told with its cause (file, line, column, rule) and step, in plain text; the one that
    # reached the limit, and only it, says no retry comes and what to run. (The landing sensor is not switched
    # on in this instance: the earlier ones say so.)
    tick(alerts, instance, cursor)
    told = [json.loads(line) for line in (paths.logs / "failures.jsonl").read_text().splitlines()]
    assert len(told) == 3
    for alert in told:
        assert alert["step"] == "landed__gl_costs"
        assert "gl_costs/2024-03.csv" in alert["cause"] and "column amount, value '12.3.4'" in alert["cause"]
        assert "line 2" in alert["cause"] and "Error occurred while executing op" not in json.dumps(alert)
        assert "\x1b[" not in json.dumps(alert)
    assert [alert["final"] for alert in told] == [False, False, True]
    assert told[0]["retry"] == [
        (
            "2024-03: not retried: the landing sensor is stopped; fix the cause and run "
            "`cprof run --from 2024-03 --to 2024-03`, or start the sensor"
        )
    ]
    assert told[2]["retry"] == [
        (
            "2024-03: not retried (limit 3): its last 3 refreshes failed; fix the cause and run "
            "`cprof run --from 2024-03 --to 2024-03` (or change its files)"
        )
    ]
    assert told[2]["subject"].endswith("in landed__gl_costs; not retried (limit reached)")


# -- under a real daemon ---------------------------------------------------------------------------------------

DAEMON_SAMPLE = GenerateConfig(customers=60, months=6, start="2024-01", seed=11)


def _land(generated: Path, landing: Path, months: list[str]) -> None:
    """Copy the reference snapshots and the months' files of the generated sample into the landing zone."""
    shutil.copytree(generated / "reference", landing / "reference", dirs_exist_ok=True)
    for month in months:
        for source in MONTHLY:
            (landing / source.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(generated / source.name / f"{month}.csv", landing / source.name / f"{month}.csv")


def _sensor_run(instance, partition: str, timeout: float = 300) -> str:
    """The run the landing sensor launched for ``partition`` (YYYY-MM), once it has finished."""
    run_id = until(
        lambda: next(
            (
                run.run_id
                for run in instance.get_runs()
                if run.tags.get("dagster/sensor_name") == "landing_sensor"
                and run.tags.get("dagster/partition") == f"{partition}-01"
            ),
            None,
        ),
        timeout,
        f"the landing sensor's run of {partition}",
    )
    until(lambda: instance.get_run_by_id(run_id).is_finished, timeout, f"the run of {partition} finished")
    return run_id


def _alert(paths: Paths, run_id: str, timeout: float = 120) -> dict:
    """The failure alert the daemon's failure sensor wrote for ``run_id``."""

    def told():
        log = paths.logs / "failures.jsonl"
        found = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        return next((alert for alert in found if alert["run_id"] == run_id), None)

    return until(told, timeout, f"the alert of run {run_id}")


def _publication(paths: Paths) -> tuple[str, dict[str, str], list[str], bool]:
    """The current release, its tables' checksums, its months, and whether every month reconciles."""
    with duckdb.connect(str(current_database(paths.published)), read_only=True) as con:
        run_id = con.execute(
            "select run_id from marts.publish_log order by published_at desc limit 1"
        ).fetchone()[0]
        checksums = dict(
            con.execute(
                "select table_name, checksum from marts.publish_log where run_id = ?", [run_id]
            ).fetchall()
        )
        months = [
            m
            for (m,) in con.execute(
                "select distinct strftime(period, '%Y-%m') from marts.customer_profitability order by 1"
            ).fetchall()
        ]
        balanced = con.execute("select bool_and(balanced) from marts.company_reconciliation").fetchone()[0]
    return run_id, checksums, months, balanced


@pytest.mark.system
def test_under_a_real_daemon_every_run_repairs_what_is_dirty_and_a_month_that_failed_is_never_published(
    tmp_path: Path,
):
    from pipelines.sample.generate import generate
    from tests.test_operations import BIN, Process, dagster_env

    generated = tmp_path / "generated"
    generate(DAEMON_SAMPLE, generated)
    paths = Paths(tmp_path / "data")
    _land(generated, paths.landing, ["2024-01", "2024-02", "2024-03"])
    run_pipeline(Settings(data_dir=paths.data_dir), progress=lambda _: None, live=False)
    before = _published_ledger(paths)
    instance = dagster_instance(paths)

    # The daemon (its failure alerts on by default) and the landing sensor, as `make dev` runs them; a month that
    # fails waits an hour for its retry, so each month below is requested once.
    env = {
        **dagster_env(paths),
        Settings.variable("retry_backoff_seconds"): "3600",
        "CPROF_LAST_MONTH": "2024-06",
    }
    started = Process(
        [str(BIN / "dagster"), "sensor", "start", "landing_sensor", "-w", "workspace.yaml"], env
    )
    assert started.finish(180) == 0, started.output
    daemon = Process([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env)
    try:
        daemon.wait_for("failure_alerts", 180)  # the failure sensor has ticked: failures from now on are told

        # A run of a corrected 2024-02 is killed in its dbt build, after releasing the month to raw.
        _after_a_quiet_sensor_tick(daemon)
        _correct_ledger(paths.landing, CORRECTED, CORRECTION)
        killed = cprof(paths, "run", "--from", CORRECTED, "--to", CORRECTED, "--progress", "live")
        _kill_once_released(killed)
        (killed_run,) = [run.run_id for run in instance.get_runs() if "dagster/sensor_name" not in run.tags][
            :1
        ]
        assert months_awaiting_publication(paths.warehouse) == [CORRECTED]
        alert = _alert(paths, killed_run, 180)  # the daemon's run monitoring failed it; the sensor told it
        assert alert["step"].startswith("dbt_models (running when the run's process died")
        assert "its process is gone" in alert["cause"]
        assert alert["retry"][0].startswith(
            f"{CORRECTED}: the landing sensor retries it, attempt 2 of 3, after"
        )

        # A later month arrives: the sensor's run of it rebuilds and publishes the dirty month with it.
        _land(generated, paths.landing, ["2024-04"])
        later = _sensor_run(instance, "2024-04")
        assert instance.get_run_by_id(later).status == DagsterRunStatus.SUCCESS
        _, _, months, balanced = _publication(paths)
        ledger = _published_ledger(paths)
        assert months == ["2024-01", "2024-02", "2024-03", "2024-04"] and balanced
        assert ledger[CORRECTED] == before[CORRECTED] + CORRECTION == _raw_ledger(paths, CORRECTED)
        assert months_awaiting_publication(paths.warehouse) == []

        # 2024-05's returns fail their suite, its five other sources pass: the month stays out of raw.
        _land(generated, paths.landing, ["2024-05"])
        with (paths.landing / "returns" / "2024-05.csv").open("a") as out:
            out.write("R99999999,O999999999,1,2024-05-20,1,damaged\n")
        failed = _sensor_run(instance, "2024-05")
        assert instance.get_run_by_id(failed).status == DagsterRunStatus.FAILURE
        with duckdb.connect(str(paths.warehouse), read_only=True) as con:
            for source in MONTHLY:
                assert con.execute(
                    f"select count(*) from raw.{source.name} where _period = date '2024-05-01'"
                ).fetchone() == (0,)
        alert = _alert(paths, failed)
        assert alert["step"] == "landed__returns_gx_suite"
        assert "returns/2024-05.csv" in alert["cause"] and "_unknown_order_line" in alert["cause"]
        assert "O999999999" in alert["cause"]
        assert alert["retry"][0].startswith("2024-05: the landing sensor retries it, attempt 2 of 3, after")

        # A corrected file of an earlier month: its run publishes, and 2024-05 is not in the publication, said.
        _correct_ledger(paths.landing, "2024-03", Decimal("5.00"))
        earlier = _sensor_run(instance, "2024-03")
        assert instance.get_run_by_id(earlier).status == DagsterRunStatus.SUCCESS
        release, published, months, balanced = _publication(paths)
        assert release == earlier and balanced
        assert months == ["2024-01", "2024-02", "2024-03", "2024-04"]
        (record,) = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=AssetKey(["published", "marts"]), asset_partitions=["2024-03-01"]),
            limit=1,
        ).records
        assert record.asset_materialization.metadata["held"].value == [
            (
                f"2024-05 is not published (held out of raw until whole): returns/2024-05.csv failed its suite in "
                f"run {failed}"
            )
        ]

        # The month after it waits for it: its run fails before building anything, saying why.
        _land(generated, paths.landing, ["2024-06"])
        waiting = _sensor_run(instance, "2024-06")
        assert instance.get_run_by_id(waiting).status == DagsterRunStatus.FAILURE
        alert = _alert(paths, waiting)
        assert alert["step"] == "dbt_models"
        assert (
            "2024-06 is not published: held out of raw until 2024-05 is whole (returns/2024-05.csv failed its "
            f"suite in run {failed})"
        ) in alert["cause"]
        assert "cprof run --from 2024-05 --to 2024-06" in alert["cause"]
        assert _publication(paths)[0] == earlier  # the publication is as it was
    finally:
        daemon.kill(signal.SIGTERM)

    # What the daemon published equals a clean build of the same files, table for table.
    clean = Paths(tmp_path / "clean")
    shutil.copytree(paths.landing, clean.landing)
    for source in MONTHLY:
        for month in ("2024-05", "2024-06"):
            (clean.landing / source.name / f"{month}.csv").unlink()
    run_pipeline(Settings(data_dir=clean.data_dir), progress=lambda _: None, live=False)
    assert _publication(clean)[1] == published
