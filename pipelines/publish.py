"""Publishing the marts where BI tools read them: write, then swap in atomically. Plain functions, no Dagster.

Layout under ``published/``::

    current -> releases/<run>          the publication BI tools read (a symlink, replaced atomically)
    releases/<run>/cprof.duckdb        schema marts: every mart and marts.publish_log
    releases/<run>/parquet/<mart>.parquet

A release is written in full in a hidden ``.building-<run>`` folder (its DuckDB file is ``*.partial`` until
complete), renamed into ``releases/``, and only then made current by replacing the ``current`` symlink with
``os.replace``: one atomic step. A reader that opened the old file keeps a consistent snapshot; one that opens
after the swap sees the new one; a process killed at any point leaves ``current`` as it was. Readers never
touch the pipeline's working warehouse. The two previous releases are kept for readers still holding them.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from pipelines.sql import literal

DATABASE = "cprof.duckdb"
PARQUET_DIR = "parquet"
CURRENT = "current"
RELEASES = "releases"
KEEP_PREVIOUS = 2
PAUSE_ENV = "CPROF_PAUSE_AT"  # fault injection for tests: pause at a named point of publishing

PUBLISH_LOG_DDL = """
create table marts.publish_log (
    run_id varchar not null,
    published_at timestamp not null,
    first_period date,
    last_period date,
    table_name varchar not null,
    row_count bigint not null,
    checksum varchar not null
)
"""


@dataclass(frozen=True)
class Publication:
    run_id: str
    release: Path
    database: Path
    parquet: Path
    row_counts: dict[str, int]
    checksums: dict[str, str]


def current_database(published: Path) -> Path:
    """The DuckDB file BI tools read: ``published/current/cprof.duckdb``."""
    return published / CURRENT / DATABASE


def published_tables(warehouse: Path) -> list[str]:
    """The tables of the working warehouse's ``marts`` schema: what gets published."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts' order by table_name"
        ).fetchall()
    return [name for (name,) in rows if name != "publish_log"]


def table_checksum(con: duckdb.DuckDBPyConnection, table: str) -> tuple[int, str]:
    """Row count and an order-independent checksum of a table's content (the sum of its rows' hashes)."""
    count, total = con.execute(f"select count(*), coalesce(sum(hash(t)), 0) from {table} as t").fetchone()
    return int(count), f"{count}:{int(total):x}"


def _pause(point: str, published: Path) -> None:
    if os.environ.get(PAUSE_ENV) == point:
        (published / f".paused-{point}").touch()
        time.sleep(3600)


def publish(
    warehouse: Path,
    published: Path,
    run_id: str | None = None,
    first_period: date | None = None,
    last_period: date | None = None,
    changed_from: date | None = None,
    extras: Callable[[Path], object] | None = None,
) -> Publication:
    """Publish every mart of ``warehouse`` as a new release and make it current.

    With ``changed_from`` (the first period the run rebuilt), the release starts as a copy of the current one
    and only the periods from ``changed_from`` on are replaced in the marts keyed by period; a table whose
    result then differs from the warehouse's (row count or checksum), or that cannot be patched, is copied
    whole. Either way every published table equals the warehouse's.

    ``extras``, when given, is called with the release folder while it is still being built, its
    ``cprof.duckdb`` complete: it writes more files into the release (the HTML report). If it raises, nothing
    is published and ``current`` stays as it was."""
    tables = published_tables(warehouse)
    if not tables:
        raise ValueError(f"{warehouse} has no tables in schema marts: run the dbt build first")
    run_id = run_id or uuid.uuid4().hex
    releases = published / RELEASES
    releases.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_builds(releases)
    building = releases / f".building-{run_id}"
    shutil.rmtree(building, ignore_errors=True)
    (building / PARQUET_DIR).mkdir(parents=True)
    partial = building / f"{DATABASE}.partial"
    previous = current_database(published)
    counts: dict[str, int] = {}
    checksums: dict[str, str] = {}
    try:
        patching = changed_from is not None and previous.exists()
        if patching:
            shutil.copyfile(previous, partial)
        limit = os.environ.get("CPROF_DUCKDB_MEMORY_LIMIT") or "4GB"
        with duckdb.connect(str(partial), config={"memory_limit": limit}) as con:
            con.execute(f"attach {literal(warehouse)} as working (read_only)")
            con.execute("create schema if not exists marts")
            kept = _tables(con, "marts") if patching else set()
            for stale in kept - {*tables, "publish_log"}:
                con.execute(f"drop table marts.{stale}")
            for table in tables:
                wanted = table_checksum(con, f"working.marts.{table}")
                if table in kept and _patch(con, table, changed_from, wanted):
                    counts[table], checksums[table] = wanted  # _patch verified the release's table
                else:
                    con.execute(
                        f"create or replace table marts.{table} as select * from working.marts.{table}"
                    )
                    counts[table], checksums[table] = table_checksum(con, f"marts.{table}")
                _pause("building", published)
            con.execute("detach working")
            if "publish_log" not in kept:
                con.execute(PUBLISH_LOG_DDL)
            if previous.exists() and "publish_log" not in kept:
                con.execute(f"attach {literal(previous)} as previous (read_only)")
                if con.execute(
                    "select count(*) from information_schema.tables "
                    "where table_catalog = 'previous' and table_schema = 'marts' and table_name = 'publish_log'"
                ).fetchone()[0]:
                    con.execute("insert into marts.publish_log select * from previous.marts.publish_log")
                con.execute("detach previous")
            if first_period is None or last_period is None:
                first_period, last_period = con.execute(
                    "select min(period), max(period) from marts.customer_profitability"
                ).fetchone()
            published_at = datetime.now(UTC).replace(tzinfo=None)
            con.executemany(
                "insert into marts.publish_log values (?, ?, ?, ?, ?, ?, ?)",
                [
                    [run_id, published_at, first_period, last_period, t, counts[t], checksums[t]]
                    for t in tables
                ],
            )
            for table in [*tables, "publish_log"]:
                target = literal(building / PARQUET_DIR / f"{table}.parquet")
                con.execute(f"copy marts.{table} to {target} (format parquet)")
            con.execute("checkpoint")
        os.replace(partial, building / DATABASE)
        if extras is not None:
            extras(building)
        release = releases / run_id
        shutil.rmtree(release, ignore_errors=True)
        os.replace(building, release)
        _pause("before_swap", published)
        _point_current_at(published, release)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    _prune(published)
    return Publication(run_id, release, release / DATABASE, release / PARQUET_DIR, counts, checksums)


def _tables(con: duckdb.DuckDBPyConnection, schema: str) -> set[str]:
    return {
        name
        for (name,) in con.execute(
            "select table_name from information_schema.tables where table_catalog = current_database() "
            "and table_schema = ?",
            [schema],
        ).fetchall()
    }


def _patch(con: duckdb.DuckDBPyConnection, table: str, changed_from: date, wanted: tuple[int, str]) -> bool:
    """Replace the periods from ``changed_from`` on of the copied ``marts.<table>`` with the warehouse's; True
    when the table then equals the warehouse's (same rows and checksum). Tables without periods are not
    patched."""
    columns = {
        name
        for (name,) in con.execute(
            "select column_name from information_schema.columns where table_catalog = current_database() "
            "and table_schema = 'marts' and table_name = ?",
            [table],
        ).fetchall()
    }
    if "period" not in columns:
        return False
    con.execute("begin transaction")
    try:
        con.execute(f"delete from marts.{table} where period >= ?", [changed_from])
        con.execute(
            f"insert into marts.{table} select * from working.marts.{table} where period >= ?", [changed_from]
        )
        con.execute("commit")
    except duckdb.Error:
        con.execute("rollback")
        return False
    return table_checksum(con, f"marts.{table}") == wanted


def _point_current_at(published: Path, release: Path) -> None:
    link = published / f".{CURRENT}-{uuid.uuid4().hex[:8]}"
    os.symlink(Path(RELEASES) / release.name, link)
    os.replace(link, published / CURRENT)


def _remove_abandoned_builds(releases: Path) -> None:
    for folder in releases.glob(".building-*"):
        shutil.rmtree(folder, ignore_errors=True)


def _prune(published: Path) -> None:
    """Keep the current release and the previous few; readers may still hold those."""
    current = (published / CURRENT).resolve()
    releases = sorted(
        (p for p in (published / RELEASES).iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    keep = {current, *releases[: KEEP_PREVIOUS + 1]}
    for release in releases:
        if release.resolve() not in keep:
            shutil.rmtree(release, ignore_errors=True)
    for link in published.glob(f".{CURRENT}-*"):
        link.unlink(missing_ok=True)
