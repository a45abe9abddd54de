"""Dagster's SQLite event log, storing a batch of asset events in one transaction per database.

A run over a range of months records one materialization per asset and month: 2,064 of a 36-month build's 3,105
events. Dagster's SQLite storage writes each in two transactions of their own (the run's database, then the
cross-run index), opening a fresh SQLAlchemy engine for each: about 17 ms an event here, so 35 s of a 10-million
line build went to storing events. Dagster hands the events of one partitioned output to ``store_event_batch``
when ``DAGSTER_EVENT_BATCH_SIZE`` is above 0, but its SQLite storage then still stores them one by one. This one
writes such a batch in one transaction on the run's database and one on the index, with the same rows (the
event, its tags, the asset's latest-event record) the one-by-one path writes; anything else takes that path.

Every other event is still stored on its own, and Dagster's SQLite storage made a new SQLAlchemy engine for each
connection it opened (and one event opens one to three): half of the 4 ms an event took here. This one keeps an
engine per database file for the next connection, with Dagster's pool class (``NullPool``: no connection is held
between uses, so nothing is shared across processes or forks) and its busy timeout; a database Dagster has
forgotten (wiped, upgraded) is initialized again before its next use, as Dagster does.

This storage turns the batching on for the process that uses it (``DAGSTER_EVENT_BATCH_SIZE``, unless it is
set). It is named in ``dagster.yaml`` (pipelines/lib/config.py), so the webserver and the daemon load it too;
like pipelines/defs/monitoring.py, it imports only Dagster (and SQLAlchemy, which Dagster's storage is built on).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from dagster import Field, StringSource
from dagster._core.events import ASSET_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlalchemy_compat import db_result
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

BATCH_SIZE_ENV = "DAGSTER_EVENT_BATCH_SIZE"
# Events of one output held back at most before they are stored: a run of 36 months gives batches of 36.
BATCH_SIZE = "1000"


# At most this many engines are kept, the least recently used let go first: a webserver that reads many runs'
# databases keeps no more than these.
KEPT_ENGINES = 32


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
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> BatchingSqliteEventLogStorage:
        """``base_dir`` defaults to where Dagster keeps its SQLite event logs, ``$DAGSTER_HOME/history/runs``,
        so an instance that used Dagster's own storage keeps its history."""
        base_dir = config_value.get("base_dir") or os.path.join(
            os.environ["DAGSTER_HOME"], "history", "runs", ""
        )
        return cls(base_dir, inst_data=inst_data)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """A batch of asset events of one run in two transactions (the run's database, then the index);
        any other batch one event at a time, as Dagster does."""
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
