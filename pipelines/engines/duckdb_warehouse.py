"""The DuckDB engine: the working warehouse is one DuckDB file (``<data>/warehouse.duckdb``), the embedded default.

A session is one connection, opened for a step and closed after it whatever happens (DuckDB admits one writer
per file; the data directory's lock keeps other writers out). Landing files are loaded by
``pipelines/engines/duckdb_ingest.py``; everything else the assets need is here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from pipelines.engines import duckdb_ingest
from pipelines.engines.base import (
    Column,
    CopyRows,
    LoadResult,
    PeriodWindow,
    Released,
    SnapshotRelease,
    Warehouse,
    where_sql,
)
from pipelines.engines.duckdb_tables import in_transaction, replace_rows, table_ddl
from pipelines.engines.sql import ident, literal, qualified
from pipelines.engines.whole_months import WholeMonths
from pipelines.landing.inventory import FileStamp
from pipelines.lib.settings import Settings
from pipelines.runtime.lock import warehouse_in_use

SCRATCH = "scratch"  # frames staged here, one at a time, before they replace a table's periods


def open_for_writing(database: Path, config: dict[str, object]) -> duckdb.DuckDBPyConnection:
    """A connection that may write the working file; WarehouseInUse, one line naming the holder, when another
    process (a reader) has the file open."""
    try:
        return duckdb.connect(str(database), read_only=False, config=config)
    except duckdb.IOException as exc:
        in_use = warehouse_in_use(database, exc)
        if in_use is None:
            raise
        raise in_use from None


class DuckDBWarehouse(Warehouse):
    engine = "duckdb"

    def __init__(self, database: Path, config: dict[str, object] | None = None):
        self.database = database
        self.config = config or {}
        self._con: duckdb.DuckDBPyConnection | None = None

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The session's connection, opened on first use (publishing needs none: it attaches the file)."""
        if self._con is None:
            self._con = open_for_writing(self.database, self.config)
        return self._con

    # -- reads
    def _table(self, table: str) -> str:
        return qualified(*table.split("."))

    def exists(self, table: str) -> bool:
        schema, name = table.split(".")
        return bool(
            self.con.execute(
                "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                [schema, name],
            ).fetchone()[0]
        )

    def read(self, table, columns=None, where=(), order_by=()) -> pd.DataFrame:
        predicate, params = where_sql(where, ident)
        selected = ", ".join(ident(c) for c in columns) if columns else "*"
        order = f" order by {', '.join(ident(c) for c in order_by)}" if order_by else ""
        return self.con.execute(
            f"select {selected} from {self._table(table)} where {predicate}{order}", params
        ).df()

    def distinct(self, table, column, where=()) -> list[Any]:
        predicate, params = where_sql(where, ident)
        rows = self.con.execute(
            f"select distinct {ident(column)} from {self._table(table)} where {predicate} order by 1", params
        ).fetchall()
        return [value for (value,) in rows]

    def count(self, table, where=()) -> int:
        predicate, params = where_sql(where, ident)
        return int(
            self.con.execute(
                f"select count(*) from {self._table(table)} where {predicate}", params
            ).fetchone()[0]
        )

    def count_by(self, table, column, where=()) -> dict[Any, int]:
        predicate, params = where_sql(where, ident)
        rows = self.con.execute(
            f"select {ident(column)}, count(*) from {self._table(table)} where {predicate} group by 1", params
        ).fetchall()
        return dict(rows)

    def columns(self, table) -> list[str]:
        schema, name = table.split(".")
        rows = self.con.execute(
            "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
            "order by ordinal_position",
            [schema, name],
        ).fetchall()
        return [column for (column,) in rows]

    def preview(self, sql: str, limit: int) -> pd.DataFrame:
        query = sql.strip().rstrip(";")
        return self.con.execute(f"select * from (\n{query}\n) as failing limit {int(limit)}").df()

    # -- the one write of a table keyed by period
    def replace_periods(
        self,
        table: str,
        columns: Sequence[Column],
        frames: Iterable[pd.DataFrame | CopyRows],
        window: PeriodWindow,
    ) -> int:
        # Frames are staged in a scratch table one at a time (a month in memory, not the run's every month),
        # then swapped in with one transaction.
        scratch = f"{SCRATCH}.{table.replace('.', '__')}"
        staged = qualified(*scratch.split("."))
        names = ", ".join(ident(c.name) for c in columns)
        self.con.execute(f"create schema if not exists {SCRATCH}")
        self.con.execute(f"drop table if exists {staged}")
        self.con.execute(table_ddl(scratch, columns))
        try:
            for frame in frames:
                if isinstance(frame, CopyRows):
                    copy, parameters = frame.query(table, columns, ident, staged)
                    self.con.execute(f"insert into {staged} {copy}", parameters)
                    continue
                if list(frame.columns) != [c.name for c in columns]:
                    raise ValueError(
                        f"{table}: frame columns {list(frame.columns)} are not {[c.name for c in columns]}"
                    )
                self.con.register("_frame", frame)
                try:
                    self.con.execute(f"insert into {staged} select {names} from _frame")
                finally:
                    self.con.unregister("_frame")
            self.con.execute(f"create schema if not exists {ident(table.split('.')[0])}")
            predicate, params = where_sql(window.filters(), ident)
            return replace_rows(
                self.con,
                self._table(table),
                table_ddl(table, columns),
                None if window.everything else predicate,
                params,
                f"select {names} from {staged} order by {ident(columns[0].name)}, {ident(columns[1].name)}",
            )
        finally:
            self.con.execute(f"drop table if exists {staged}")

    # -- ingest
    def load(
        self,
        landing: Path,
        source: str,
        month: str | None,
        reuse_unchanged: bool,
        expected: FileStamp | None = None,
        accept_row_drop: bool = False,
        max_row_drop: float = Settings.max_row_drop,
        allow_external_links: bool = Settings.allow_external_links,
    ) -> LoadResult:
        return duckdb_ingest.load(
            self.con,
            landing,
            source,
            month,
            reuse_unchanged,
            expected,
            accept_row_drop,
            max_row_drop,
            allow_external_links,
        )

    def validation_frame(
        self,
        source: str,
        month: str | None,
        history_start: str | None = None,
        return_window: int = Settings.return_window_months,
    ) -> pd.DataFrame:
        return duckdb_ingest.validation_frame(self.con, source, month, history_start, return_window)

    def validation_frames(
        self,
        source: str,
        months: list[str],
        history_start: str | None = None,
        return_window: int = Settings.return_window_months,
    ) -> pd.DataFrame:
        return duckdb_ingest.validation_frames(self.con, source, months, history_start, return_window)

    evaluates_suites = True

    def evaluate_suite(
        self,
        source: str,
        months: list[str | None],
        history_start: str | None = None,
        return_window: int = Settings.return_window_months,
    ) -> dict[str | None, Any]:
        return duckdb_ingest.evaluate_suite(self.con, source, months, history_start, return_window)

    def mark_validated(self, source: str, month: str, passed: bool, run_id: str | None) -> int:
        return duckdb_ingest.mark_validated(self.con, source, month, passed, run_id)

    def mark_validated_months(self, source: str, passed: Mapping[str, bool], run_id: str | None) -> None:
        # one transaction: a commit each took as long as evaluating a month's suite
        in_transaction(
            self.con,
            lambda: [
                duckdb_ingest.mark_validated(self.con, source, m, ok, run_id) for m, ok in passed.items()
            ],
        )

    def whole_months(self) -> WholeMonths:
        return duckdb_ingest.whole_months(self.con)

    def release_whole_months(self) -> list[Released]:
        return duckdb_ingest.release_whole_months(self.con)

    def release_snapshot(self, source: str) -> SnapshotRelease:
        return duckdb_ingest.release_snapshot(self.con, source)

    def snapshot_promoted(self, source: str) -> bool:
        return duckdb_ingest.snapshot_promoted(self.con, source)

    # -- publication
    def marts(self) -> list[str]:
        rows = self.con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts' order by table_name"
        ).fetchall()
        return [name for (name,) in rows if name not in ("publish_log", "publish_period_log")]

    @contextmanager
    def marts_in(self, con: duckdb.DuckDBPyConnection) -> Iterator[dict[str, str]]:
        # The publication writer attaches the working file read only: this session's own connection must not
        # hold it for writing meanwhile.
        self.close()
        con.execute(f"attach {literal(self.database)} as working (read_only)")
        try:
            yield {table: qualified("working", "marts", table) for table in _marts(con, "working")}
        finally:
            con.execute("detach working")

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


def _marts(con: duckdb.DuckDBPyConnection, catalog: str) -> list[str]:
    rows = con.execute(
        "select table_name from information_schema.tables where table_catalog = ? and table_schema = 'marts' "
        "order by table_name",
        [catalog],
    ).fetchall()
    return [name for (name,) in rows if name not in ("publish_log", "publish_period_log")]


@contextmanager
def duckdb_session(database: Path, config: dict[str, object]) -> Iterator[DuckDBWarehouse]:
    """A session on the working DuckDB file, closed after the block whatever happens."""
    warehouse = DuckDBWarehouse(database, config)
    try:
        yield warehouse
    finally:
        warehouse.close()


class DuckDBRuntime:
    """The DuckDB engine for a run: nothing to start; each step opens its own session on the file."""

    engine = "duckdb"

    def __init__(self, database: Path, config: dict[str, object]):
        self.database = database
        self.config = config

    def session(self):
        return duckdb_session(self.database, self.config)

    def dbt_environment(self) -> dict[str, str]:
        return {}

    def close(self) -> None:
        pass

    def check_writable(self) -> None:
        if self.database.exists():
            open_for_writing(self.database, self.config).close()

    def months_awaiting_publication(self) -> list[str] | None:
        return duckdb_ingest.months_awaiting_publication(self.database)

    def unchanged_snapshots(
        self, landing: Path, allow_external_links: bool = Settings.allow_external_links
    ) -> dict[str, datetime]:
        return duckdb_ingest.unchanged_snapshots(self.database, landing, allow_external_links)

    def clear_awaiting_publication(self, first: date, last: date) -> int:
        return duckdb_ingest.clear_awaiting_publication(self.database, first, last)
