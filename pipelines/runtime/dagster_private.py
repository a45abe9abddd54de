"""Every use of Dagster's private modules (``dagster._...``) in pipelines/: the one place that breaks when Dagster
changes what it does not promise to keep. Each use says why no public API does the job; tests/test_dagster_private.py
pins what each relies on to the Dagster of pyproject.toml's pin, and fails naming the one that moved.

This module is imported by the Dagster webserver and daemon through ``dagster.yaml`` (the event log storage below,
and pipelines/runtime/monitoring.py's run launcher): it imports only Dagster, SQLAlchemy and the standard library.

**Running a run of the workspace's code location in this process** (``create_workspace_run``, ``execute_created_run``).
``dagster.execute_job`` runs a job in this process with its own executor, but the run it creates has no remote origin,
and the UI's Overview timeline leaves out such a run; no public API creates a run with the origin of a code location of
``workspace.yaml`` other than launching it through the webserver or the daemon, which would run it in another process
(cprof's progress lines, validator and console are in this one). So the run is created as ``execute_job`` creates it
plus the workspace's origin, and executed by the function ``execute_job`` calls.

**The instance of a directory, without ``$DAGSTER_HOME``** (``instance_of``). ``DagsterInstance.get()`` reads the
directory from the environment only, and cprof does not write its own environment (it may run against any data
directory, and tests run many in one process); ``DagsterInstance.from_config(directory)`` is what ``get()`` calls with
it, but Dagster lists it among its internal methods (``DagsterInstance.local_temp(directory)`` builds the same today,
but it is documented as a temporary instance).

**Types Dagster's public API hands us but does not export**: the run launcher's health check result
(``CheckRunHealthResult``, ``WorkerStatus``: the run-monitoring hook of ``DefaultRunLauncher``), an engine event's
data (``EngineEventData``: what an executor yields to say something in the run's log), and the kind of an
instigator's state (``InstigatorType``: ``DagsterInstance.all_instigator_state`` takes it; nothing public says whether a
sensor is switched on).

**The SQLite event log storing a batch of asset events in one transaction per database**
(``BatchingSqliteEventLogStorage``, named in ``dagster.yaml`` by pipelines/runtime/instance.py). A run over a range of
months records one materialization per asset and month: 2,064 of a 36-month build's 3,105 events. Dagster's SQLite
storage writes each in two transactions of their own (the run's database, then the cross-run index), opening a fresh
SQLAlchemy engine for each: about 17 ms an event here, so 35 s of a 10-million line build went to storing events
(bench/README.md). Dagster hands the events of one partitioned output to ``store_event_batch`` when
``DAGSTER_EVENT_BATCH_SIZE`` is above 0, but its SQLite storage then still stores them one by one. This one writes such
a batch in one transaction on the run's database and one on the index, with the same rows (the event, its tags, the
asset's latest-event record) the one-by-one path writes; anything else takes that path. Nothing public does this:
Dagster's storage classes are configurable only by their module and class, and the rows are its schema's.

The events of a batch were logged within a millisecond of each other, and the UI tells a run's events apart by their
millisecond (its Events tab showed 4 of a 24-month run's materializations of an asset): each event of a batch is
stored at least a millisecond after the one before it, as when they are stored one at a time (2 ms or more each).

Dagster 1.13 plans each asset check of a run over a range of months once per month (the run's partitions subset,
whatever the check's own partitioning), but a check evaluated once for the range (every dbt test, a reference
snapshot's suite, the CLV holdout) is evaluated for no partition: its months stayed planned (2,856 rows of a 24-month
build) and the UI showed them skipped after a good run. When such an evaluation is stored, the months its run still has
planned for that check get it, each as that month's evaluation, in one transaction (``store_asset_check_event``).
Checks that know each month's outcome record it first through the public API (the monthly sources' suites,
pipelines.defs.partitions.evaluated_each_month), so those months are no longer planned; such an evaluation names no
materialization (the class that would is not exported), and a check's Partitions tab counts a month only when its
evaluation targets the month's latest materialization, so the storage adds that target, as Dagster does for a
one-partition run. Nothing public does this: a check's result names no partition (``AssetCheckResult`` has none), and
logging an evaluation per month and check costs an event each (34 ms apiece on this machine under load: 40 s for the
854 evaluations of a 6-month sample), where this costs a few statements per check.

Every other event is still stored on its own, and Dagster's SQLite storage made a new SQLAlchemy engine for each
connection it opened (and one event opens one to three): half of the 4 ms an event took here. This one keeps an
engine per database file for the next connection, with Dagster's pool class (``NullPool``: no connection is held
between uses, so nothing is shared across processes or forks) and its busy timeout; a database Dagster has
forgotten (wiped, upgraded) is initialized again before its next use, as Dagster does. It turns the batching on for
the process that uses it (``DAGSTER_EVENT_BATCH_SIZE``, unless it is set).
"""

from __future__ import annotations

import os
import sys
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as db
from dagster import (
    AssetCheckEvaluation,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    Field,
    JobDefinition,
    JobExecutionResult,
    StringSource,
    serialize_value,
)
from dagster._core.code_pointer import ModuleCodePointer
from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster._core.definitions.repository_definition.valid_definitions import SINGLETON_REPOSITORY_NAME
from dagster._core.events import ASSET_EVENTS, EngineEventData
from dagster._core.events.log import EventLogEntry
from dagster._core.execution.api import execute_run
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
from dagster._core.remote_origin import RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.scheduler.instigation import InstigatorType
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable, SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlalchemy_compat import db_result
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.workspace.load import location_origins_from_yaml_paths
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

__all__ = [
    "BatchingSqliteEventLogStorage",
    "CheckRunHealthResult",
    "EngineEventData",
    "InstigatorType",
    "WorkerStatus",
    "create_workspace_run",
    "execute_created_run",
    "instance_of",
    "workspace_origins",
]


def workspace_origins(workspace_yaml: Path, job_name: str) -> tuple[RemoteJobOrigin, JobPythonOrigin]:
    """The origin of ``job_name`` in the code location of ``workspace_yaml``, as the webserver and the daemon load
    it: a run created with it is one of that code location's runs, shown in the Overview timeline and on the job's
    page like a run launched from the UI, and re-executable from there."""
    (location,) = location_origins_from_yaml_paths([str(workspace_yaml)])
    remote = RemoteJobOrigin(RemoteRepositoryOrigin(location, SINGLETON_REPOSITORY_NAME), job_name)
    target = location.loadable_target_origin
    pointer = ModuleCodePointer(target.module_name, target.attribute, target.working_directory)
    code = JobPythonOrigin(
        job_name, RepositoryPythonOrigin(target.executable_path or sys.executable, pointer)
    )
    return remote, code


def create_workspace_run(
    workspace_yaml: Path,
    job: JobDefinition,
    instance: DagsterInstance,
    tags: dict[str, str],
    run_config: dict,
) -> DagsterRun:
    """A run of ``job`` as ``dagster.execute_job`` creates it (planned events and all), with the origin of the
    job in the code location of ``workspace_yaml``."""
    remote, code = workspace_origins(workspace_yaml, job.name)
    return instance.create_run_for_job(
        job_def=job,
        run_config=run_config,
        tags={**job.run_tags, **tags},
        remote_job_origin=remote,
        job_code_origin=code,
    )


def instance_of(dagster_home: Path) -> DagsterInstance:
    """The persistent instance that ``dagster_home`` (its dagster.yaml) configures, as ``DagsterInstance.get()``
    builds it when ``$DAGSTER_HOME`` names that directory, without the variable: the public getter reads only
    the environment, and ``DagsterInstance.local_temp`` promises a temporary directory; ``from_config``, what
    ``get()`` calls, is not in Dagster's public API."""
    return DagsterInstance.from_config(str(dagster_home))


def execute_created_run(
    job: ReconstructableJob, run: DagsterRun, instance: DagsterInstance
) -> JobExecutionResult:
    """Execute a created run in this process with the job's own executor: what ``dagster.execute_job`` does after
    it has created its run."""
    return execute_run(job, run, instance, raise_on_error=False)


BATCH_SIZE_ENV = "DAGSTER_EVENT_BATCH_SIZE"
# Events of one output held back at most before they are stored: a run of 36 months gives batches of 36.
BATCH_SIZE = "1000"


# At most this many engines are kept, the least recently used let go first: a webserver that reads many runs'
# databases keeps no more than these.
KEPT_ENGINES = 32


def a_millisecond_apart(events: Sequence[EventLogEntry]) -> list[EventLogEntry]:
    """The events, each moved (if need be) into a later millisecond than the one before it: the UI, which reads
    timestamps in whole milliseconds, then lists every one."""
    spread: list[EventLogEntry] = []
    for event in events:
        if spread and int(event.timestamp * 1000) <= int(spread[-1].timestamp * 1000):
            # the middle of the next millisecond: no rounding puts it back in the previous one
            event = event._replace(timestamp=(int(spread[-1].timestamp * 1000) + 1.5) / 1000)
        spread.append(event)
    return spread


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        super().__init__(base_dir, inst_data=inst_data)
        os.environ.setdefault(BATCH_SIZE_ENV, BATCH_SIZE)

    def _engine(self, shard: str) -> Engine:
        """The engine of a database file, made on first use and kept (the least recently used beyond
        ``KEPT_ENGINES`` is disposed of)."""
        engine = self._engines.pop(shard, None)
        if engine is None:
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=NullPool,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
            )
        self._engines[shard] = engine
        while len(self._engines) > KEPT_ENGINES:
            self._engines.popitem(last=False)[1].dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        """Dagster's ``_connect`` (one transaction on the shard's database, under the storage's lock), on a kept
        engine."""
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    @classmethod
    def config_type(cls):
        # Given, never found from $DAGSTER_HOME: an instance is built from its directory without it (instance_of).
        # dagster.yaml names Dagster's own place for it (pipelines.runtime.instance.event_log_dir), so an instance that
        # used Dagster's storage keeps its history.
        return {"base_dir": Field(StringSource, is_required=True)}

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> BatchingSqliteEventLogStorage:
        return cls(config_value["base_dir"], inst_data=inst_data)

    def store_asset_check_event(self, event: EventLogEntry, event_id: int | None) -> None:
        """Dagster's, then (see the module's docstring) a run's evaluation of a check for no partition given to the
        months the run still has planned for it, and an evaluation of a month that names no materialization made
        to target that month's latest (as Dagster's own evaluation of a one-partition run does): one transaction."""
        super().store_asset_check_event(event, event_id)
        if event.dagster_event_type != DagsterEventType.ASSET_CHECK_EVALUATION or not event.run_id:
            return
        evaluation = event.dagster_event.asset_check_evaluation_data
        if evaluation.partition is not None and evaluation.target_materialization_data is not None:
            return  # Dagster's own evaluation of a one-partition run
        checks = AssetCheckExecutionsTable
        rows = checks.c.partition.isnot(None) & (
            checks.c.execution_status == AssetCheckExecutionRecordStatus.PLANNED.value
            if evaluation.partition is None
            else checks.c.partition == evaluation.partition
        )
        events = SqlEventLogStorageTable
        with self.index_connection() as conn:
            months = conn.execute(
                db.select(checks.c.id, checks.c.partition).where(
                    checks.c.asset_key == evaluation.asset_key.to_string(),
                    checks.c.check_name == evaluation.check_name,
                    checks.c.run_id == event.run_id,
                    rows,
                )
            ).fetchall()
            if not months:
                return
            latest = dict(
                conn.execute(
                    db.select(events.c.partition, db.func.max(events.c.id))
                    .where(
                        events.c.asset_key == evaluation.asset_key.to_string(),
                        events.c.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION.value,
                        events.c.partition.in_([partition for _, partition in months]),
                    )
                    .group_by(events.c.partition)
                ).fetchall()
            )
            status = (
                AssetCheckExecutionRecordStatus.SUCCEEDED
                if evaluation.passed
                else AssetCheckExecutionRecordStatus.FAILED
            )
            for row_id, partition in months:
                monthly = AssetCheckEvaluation(
                    asset_key=evaluation.asset_key,
                    check_name=evaluation.check_name,
                    passed=evaluation.passed,
                    metadata=evaluation.metadata,
                    severity=evaluation.severity,
                    description=evaluation.description,
                    blocking=evaluation.blocking,
                    partition=partition,
                )
                conn.execute(
                    checks.update()
                    .where(checks.c.id == row_id)
                    .values(
                        execution_status=status.value,
                        evaluation_event=serialize_value(
                            event._replace(
                                dagster_event=event.dagster_event._replace(event_specific_data=monthly)
                            )
                        ),
                        evaluation_event_timestamp=self._event_insert_timestamp(event),
                        evaluation_event_storage_id=event_id,
                        materialization_event_storage_id=latest.get(partition),
                    )
                )

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """A batch of asset events of one run in two transactions (the run's database, then the index);
        any other batch one event at a time, as Dagster does. Each event at least a millisecond after the one
        before it (see the module's docstring)."""
        events = a_millisecond_apart(events)
        runs = {event.run_id for event in events}
        if len(runs) != 1 or not all(
            event.is_dagster_event and event.dagster_event_type in ASSET_EVENTS for event in events
        ):
            super().store_event_batch(events)
            return
        statements = [self.prepare_insert_event(event) for event in events]
        with self.run_connection(runs.pop()) as conn:
            for statement in statements:
                conn.execute(statement)
        with self.index_transaction() as conn:
            ids = []
            for statement in statements:
                with db_result(conn, statement) as result:
                    ids.append(result.inserted_primary_key[0])
            self._store_asset_event_tags(conn, events, ids)
            for event, event_id in zip(events, ids, strict=True):
                self._store_asset_event(conn, event, event_id)
