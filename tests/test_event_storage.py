"""Dagster's event log with a partitioned output's materializations stored in one transaction per database, and
an engine kept per database (pipelines/runtime/dagster_private.py): what it stores and answers equals Dagster's own
SQLite storage, event by event; a real run uses it, and Dagster sees every month of every partitioned asset
materialized."""

from __future__ import annotations

import time
from pathlib import Path

from dagster import AssetKey, AssetMaterialization, DagsterEventType, EventRecordsFilter
from dagster._core.events import DagsterEvent, EngineEventData, StepMaterializationData
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from pipelines.lib.config import Paths
from pipelines.run import dagster_instance
from pipelines.runtime.dagster_private import KEPT_ENGINES, BatchingSqliteEventLogStorage

MONTHS = [f"2024-{month:02d}" for month in range(1, 13)]
KEYS = [AssetKey(["raw", "order_lines"]), AssetKey(["marts", "customer_profitability"])]


def _materializations(key: AssetKey, run_id: str) -> list[EventLogEntry]:
    """One materialization per month, with metadata and tags, as a partitioned output over a range gives."""
    return [
        EventLogEntry(
            error_info=None,
            level=20,
            user_message="",
            run_id=run_id,
            timestamp=time.time(),
            step_key="step",
            job_name="job",
            dagster_event=DagsterEvent(
                DagsterEventType.ASSET_MATERIALIZATION.value,
                "job",
                event_specific_data=StepMaterializationData(
                    AssetMaterialization(
                        key,
                        partition=month,
                        metadata={"rows": index},
                        tags={"dagster/code_version": f"v{index}"},
                    )
                ),
            ),
        )
        for index, month in enumerate(MONTHS)
    ]


def _answers(storage: SqliteEventLogStorage) -> dict:
    """What Dagster asks the event log of the assets, without the storage ids."""
    found = {}
    for key in KEYS:
        records = storage.get_event_records(
            EventRecordsFilter(DagsterEventType.ASSET_MATERIALIZATION, asset_key=key), ascending=True
        )
        latest = storage.get_latest_materialization_events([key])[key]
        found[key] = (
            [(r.run_id, r.partition_key, r.asset_materialization.metadata["rows"].value) for r in records],
            sorted(storage.get_materialized_partitions(key)),
            (latest.run_id, latest.dagster_event.partition),
            sorted(storage.get_latest_storage_id_by_partition(key, DagsterEventType.ASSET_MATERIALIZATION)),
            [len(storage.get_logs_for_run(run)) for run in ("run-1", "run-2")],
        )
    return found


def test_a_batch_stores_and_answers_what_one_event_at_a_time_does(tmp_path: Path):
    ours = BatchingSqliteEventLogStorage(str(tmp_path / "ours"))
    dagsters = SqliteEventLogStorage(str(tmp_path / "dagsters"))
    for run_id in ("run-1", "run-2"):  # a second run's events supersede the first's
        for key in KEYS:
            events = _materializations(key, run_id)
            ours.store_event_batch(events)
            for event in events:
                dagsters.store_event(event)
    assert _answers(ours) == _answers(dagsters)
    assert _answers(ours)[KEYS[0]][1] == MONTHS
    assert _answers(ours)[KEYS[0]][2] == ("run-2", MONTHS[-1])


def test_events_of_two_runs_in_one_batch_are_stored_one_by_one(tmp_path: Path):
    ours = BatchingSqliteEventLogStorage(str(tmp_path / "ours"))
    ours.store_event_batch(_materializations(KEYS[0], "run-1")[:6] + _materializations(KEYS[0], "run-2")[6:])
    assert len(ours.get_logs_for_run("run-1")) == 6
    assert len(ours.get_logs_for_run("run-2")) == 6
    assert sorted(ours.get_materialized_partitions(KEYS[0])) == MONTHS


def test_a_run_uses_it_and_every_month_is_materialized(published_sample: Paths):
    instance = dagster_instance(published_sample)
    assert isinstance(instance.event_log_storage, BatchingSqliteEventLogStorage)
    months = ["2024-01-01", "2024-02-01", "2024-03-01"]  # the small sample, built in one run over its months
    for key in (
        AssetKey(["landed", "order_lines"]),
        AssetKey(["raw", "order_lines"]),
        AssetKey(["marts", "customer_profitability"]),
        AssetKey(["marts", "customer_clv"]),
    ):
        assert sorted(instance.get_materialized_partitions(key)) == months, key


def _engine_event(run_id: str, message: str) -> EventLogEntry:
    return EventLogEntry(
        error_info=None,
        level=20,
        user_message=message,
        run_id=run_id,
        timestamp=time.time(),
        step_key="step",
        job_name="job",
        dagster_event=DagsterEvent(
            DagsterEventType.ENGINE_EVENT.value, "job", message=message, event_specific_data=EngineEventData()
        ),
    )


def _logs(storage: SqliteEventLogStorage, run_id: str) -> list[tuple]:
    return [(entry.dagster_event_type, entry.user_message) for entry in storage.get_logs_for_run(run_id)]


def test_events_stored_one_at_a_time_on_kept_engines_read_back_as_dagsters(tmp_path: Path):
    """Each event on its own (the path of every event but a partitioned output's materializations), over the
    kept engines: the same logs and asset answers as Dagster's storage, for more runs than engines are kept."""
    ours = BatchingSqliteEventLogStorage(str(tmp_path / "ours"))
    dagsters = SqliteEventLogStorage(str(tmp_path / "dagsters"))
    runs = [f"run-{index}" for index in range(KEPT_ENGINES + 8)]
    for storage in (ours, dagsters):
        for run_id in runs:
            for event in [_engine_event(run_id, f"{run_id} starts"), *_materializations(KEYS[0], run_id)[:2]]:
                storage.store_event(event)
            storage.store_event(_engine_event(run_id, f"{run_id} ends"))
    for run_id in runs:
        assert _logs(ours, run_id) == _logs(dagsters, run_id)
        assert _logs(ours, run_id)[-1] == (DagsterEventType.ENGINE_EVENT, f"{run_id} ends")
    assert sorted(ours.get_materialized_partitions(KEYS[0])) == MONTHS[:2]
    assert len(ours._engines) == KEPT_ENGINES  # the oldest runs' engines were let go, their logs still read


def test_a_wiped_log_is_made_again_on_the_next_event(tmp_path: Path):
    ours = BatchingSqliteEventLogStorage(str(tmp_path / "ours"))
    ours.store_event(_engine_event("run-1", "before"))
    ours.wipe()  # deletes the run's database file; its engine is kept
    assert ours.get_logs_for_run("run-1") == []
    ours.store_event(_engine_event("run-1", "after"))
    assert _logs(ours, "run-1") == [(DagsterEventType.ENGINE_EVENT, "after")]
