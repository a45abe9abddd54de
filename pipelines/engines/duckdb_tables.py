"""The DuckDB engine's table writes: a table's DDL from its columns, and the one "replace these rows in one
transaction" write every DuckDB table of the pipeline goes through (landed and raw partitions, the Python marts;
the publication's patch of a release uses it too)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import duckdb

from pipelines.engines.base import Column
from pipelines.engines.sql import ident, qualified


def table_ddl(table: str, columns: Sequence[Column]) -> str:
    body = ", ".join(f"{ident(c.name)} {c.type}{'' if c.nullable else ' not null'}" for c in columns)
    return f"create table if not exists {qualified(*table.split('.'))} ({body})"


T = TypeVar("T")


def replace_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    ddl: str | None,
    where: str | None,
    params: Sequence[Any],
    insert_sql: str,
    insert_params: Sequence[Any] | dict[str, Any] = (),
    after: Callable[[duckdb.DuckDBPyConnection, int], object] | None = None,
    before: Callable[[duckdb.DuckDBPyConnection], object] | None = None,
) -> int:
    """The one "replace these rows in one transaction" write of the DuckDB engine: delete the rows of
    ``table`` that match ``where`` (None: drop the table and recreate it from ``ddl``; ``ddl`` None: the table
    exists), insert the rows of ``insert_sql``, then call ``after(con, rows inserted)`` inside the same
    transaction (a check, or bookkeeping; it may raise); ``before(con)`` runs first, in the same transaction.
    Returns the number of rows inserted. Any error rolls back: the table keeps what it had."""

    def work() -> int:
        if before is not None:
            before(con)
        if where is None:
            con.execute(f"drop table if exists {table}")
        if ddl is not None:
            con.execute(ddl)
        if where is not None:
            con.execute(f"delete from {table} where {where}", list(params))
        inserted = int(con.execute(f"insert into {table} {insert_sql}", insert_params).fetchone()[0])
        if after is not None:
            after(con, inserted)
        return inserted

    return in_transaction(con, work)


def in_transaction(con: duckdb.DuckDBPyConnection, work: Callable[[], T]) -> T:
    """Run ``work`` in one transaction of ``con``: all of it or, on any error, nothing."""
    con.execute("begin transaction")
    try:
        result = work()
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return result
