"""What pipelines/runtime/dagster_private.py relies on in Dagster's private modules, pinned to the Dagster of
pyproject.toml: each test fails, naming the use, when a Dagster release moves it. Real instances in temporary
directories, real runs."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import dagster
import pytest
from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetKey,
    DagsterInstance,
    DagsterRunStatus,
    DefaultRunLauncher,
    MonthlyPartitionsDefinition,
    asset,
    asset_check,
    job,
    materialize,
    op,
    reconstructable,
    serialize_value,
)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

from pipelines.defs import partitions
from pipelines.lib.config import PROJECT_ROOT, WORKSPACE_YAML
from pipelines.runtime.dagster_private import (
    BatchingSqliteEventLogStorage,
    CheckRunHealthResult,
    InstigatorType,
    WorkerStatus,
    a_millisecond_apart,
    create_workspace_run,
    execute_created_run,
    instance_of,
)
from pipelines.runtime.instance import event_log_dir, write_dagster_yaml
from tests.test_event_storage import KEYS, MONTHS, _materializations

ADAPTER = "pipelines/runtime/dagster_private.py"


def test_dagster_is_the_version_the_adapter_was_checked_against():
    pin = re.search(r'"dagster==([^"]+)"', (PROJECT_ROOT / "pyproject.toml").read_text())[1]
    assert dagster.__version__ == pin, (
        f"Dagster {dagster.__version__} is installed, the adapter was checked against {pin}: check each use in "
        f"{ADAPTER} (this module's tests) before moving the pin"
    )


def test_only_the_adapter_imports_dagster_private_modules():
    importers = set()
    for path in sorted((PROJECT_ROOT / "pipelines").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            if any(name.startswith("dagster._") for name in names):
                importers.add(str(path.relative_to(PROJECT_ROOT)))
    assert importers == {ADAPTER}


def test_the_partition_tags_are_dagsters():
    assert partitions.PARTITION_NAME_TAG == PARTITION_NAME_TAG
    assert partitions.ASSET_PARTITION_RANGE_START_TAG == ASSET_PARTITION_RANGE_START_TAG
    assert partitions.ASSET_PARTITION_RANGE_END_TAG == ASSET_PARTITION_RANGE_END_TAG


@op
def say_done() -> str:
    return "done"


@job
def tiny_job():
    say_done()


def test_a_run_created_with_the_workspace_origin_executes_as_execute_job_does(tmp_path: Path):
    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        run = create_workspace_run(WORKSPACE_YAML, tiny_job, instance, {"cprof/test": "yes"}, {})
        # the origin the Overview timeline groups runs by: the code location of workspace.yaml
        origin = run.remote_job_origin
        assert origin.job_name == "tiny_job"
        assert origin.repository_origin.code_location_origin.location_name == "pipelines"
        assert run.job_code_origin.repository_origin.code_pointer.module == "pipelines.definitions"
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.NOT_STARTED
        result = execute_created_run(reconstructable(tiny_job), run, instance)
        assert result.success and result.run_id == run.run_id
        stored = instance.get_run_by_id(run.run_id)
        assert stored.status == DagsterRunStatus.SUCCESS and stored.tags["cprof/test"] == "yes"
        assert stored.remote_job_origin == origin


def test_the_run_launcher_health_check_and_the_sensor_state_query(tmp_path: Path):
    # monitoring.ProcessRunLauncher overrides these two; Dagster's run monitoring calls them
    assert isinstance(DefaultRunLauncher.supports_check_run_worker_health, property)
    assert callable(DefaultRunLauncher.check_run_worker_health)
    result = CheckRunHealthResult(WorkerStatus.FAILED, "gone")
    assert (result.status, result.msg) == (WorkerStatus.FAILED, "gone")
    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        assert list(instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)) == []


def test_the_instance_of_a_directory_is_the_one_dagster_home_names(tmp_path: Path, monkeypatch):
    """instance_of(home) (DagsterInstance.from_config) builds what DagsterInstance.get() builds when $DAGSTER_HOME
    names home: the same configuration, storage where dagster.yaml puts it; and needs no DAGSTER_HOME."""
    home = tmp_path / "dagster_home"
    write_dagster_yaml(home)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with instance_of(home) as instance:
        ours = serialize_value(instance.get_ref())
        storage = instance.event_log_storage
        assert isinstance(storage, BatchingSqliteEventLogStorage)
        assert Path(storage.path_for_shard("index")).parent == event_log_dir(home)
        assert instance.run_monitoring_enabled and instance.root_directory == str(home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as instance:
        assert serialize_value(instance.get_ref()) == ours


def test_a_batch_is_stored_a_millisecond_apart(tmp_path: Path):
    same = [event._replace(timestamp=1_700_000_000.0004) for event in _materializations(KEYS[0], "run-1")]
    spread = a_millisecond_apart(same)
    millis = [int(event.timestamp * 1000) for event in spread]
    assert millis == sorted(set(millis)) and len(millis) == len(MONTHS)  # one millisecond each, in order
    assert spread[-1].timestamp - same[0].timestamp < len(MONTHS) / 1000
    apart = [event._replace(timestamp=1_700_000_000 + index) for index, event in enumerate(same)]
    assert a_millisecond_apart(apart) == apart  # events already apart are left alone
    storage = BatchingSqliteEventLogStorage(str(tmp_path / "ours"))
    storage.store_event_batch(same)
    stored = [int(entry.timestamp * 1000) for entry in storage.get_logs_for_run("run-1")]
    assert stored == millis


MONTHLY = MonthlyPartitionsDefinition(start_date="2024-01-01", end_date="2024-04-01")  # 2024-01..2024-03


@asset(partitions_def=MONTHLY)
def monthly_table() -> None:
    return None


@asset_check(asset=monthly_table)
def rows_present() -> AssetCheckResult:
    return AssetCheckResult(passed=True, description="checked once for the run's months")


def _check_rows(instance: DagsterInstance) -> dict[str | None, str]:
    records = instance.event_log_storage.get_asset_check_execution_history(
        AssetCheckKey(AssetKey("monthly_table"), "rows_present"), limit=20
    )
    return {record.partition: record.status.value for record in records}


def _range_run(instance: DagsterInstance) -> None:
    tags = {ASSET_PARTITION_RANGE_START_TAG: "2024-01-01", ASSET_PARTITION_RANGE_END_TAG: "2024-03-01"}
    assert materialize([monthly_table, rows_present], instance=instance, tags=tags).success


MONTH_KEYS = ["2024-01-01", "2024-02-01", "2024-03-01"]


def test_dagster_leaves_a_range_runs_check_planned_for_each_month(tmp_path: Path):
    """The Dagster behaviour the storage works around: if this fails, Dagster resolves the months itself, and
    ``store_asset_check_event`` and ``evaluated_each_month`` can go."""
    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        assert type(instance.event_log_storage).__name__ == "SqliteEventLogStorage"
        _range_run(instance)
        planned = AssetCheckExecutionRecordStatus.PLANNED.value
        assert _check_rows(instance) == {None: "SUCCEEDED", **{key: planned for key in MONTH_KEYS}}


@pytest.fixture
def our_instance(tmp_path: Path, monkeypatch):
    home = tmp_path / "dagster_home"
    write_dagster_yaml(home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, BatchingSqliteEventLogStorage)
        yield instance


def test_our_storage_gives_each_planned_month_the_runs_evaluation(our_instance: DagsterInstance):
    _range_run(our_instance)
    assert _check_rows(our_instance) == {None: "SUCCEEDED", **{key: "SUCCEEDED" for key in MONTH_KEYS}}
    # each month's evaluation targets the month's materialization (a check's Partitions tab counts it then)
    infos = our_instance.event_log_storage.get_asset_check_partition_info(
        [AssetCheckKey(AssetKey("monthly_table"), "rows_present")]
    )
    by_month = {info.partition_key: info for info in infos if info.partition_key}
    assert sorted(by_month) == MONTH_KEYS
    assert all(info.is_current for info in by_month.values()), by_month
    # and a later run of one month makes only that month's evaluation stale
    assert materialize([monthly_table], instance=our_instance, partition_key="2024-02-01").success
    infos = our_instance.event_log_storage.get_asset_check_partition_info(
        [AssetCheckKey(AssetKey("monthly_table"), "rows_present")]
    )
    stale = sorted(info.partition_key for info in infos if info.partition_key and not info.is_current)
    assert stale == ["2024-02-01"]
