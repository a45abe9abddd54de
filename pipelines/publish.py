"""Publishing the marts where BI tools read them: a separate DuckDB file (schema ``marts``) and Parquet per mart.

Readers never share the pipeline's working warehouse. A publication is built beside the current one and
swapped in with ``os.replace`` (atomic on one filesystem): a reader sees the old file or the new one, never
a half-written one. Plain functions, no Dagster.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

PUBLISHED_FILE = "cprof.duckdb"
PARQUET_DIR = "parquet"


@dataclass(frozen=True)
class Publication:
    database: Path
    parquet: Path
    row_counts: dict[str, int]


def published_tables(warehouse: Path) -> list[str]:
    """The tables of the working warehouse's ``marts`` schema: what gets published."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts' order by table_name"
        ).fetchall()
    return [name for (name,) in rows]


def publish(warehouse: Path, published: Path) -> Publication:
    """Copy every mart of ``warehouse`` into ``published/cprof.duckdb`` and ``published/parquet/<mart>.parquet``."""
    tables = published_tables(warehouse)
    if not tables:
        raise ValueError(f"{warehouse} has no tables in schema marts: run the dbt build first")
    published.mkdir(parents=True, exist_ok=True)
    build = published / f".build-{uuid.uuid4().hex[:12]}"
    build.mkdir()
    try:
        database = build / f"{PUBLISHED_FILE}.partial"  # not *.duckdb until it is complete and in place
        parquet = build / PARQUET_DIR
        parquet.mkdir()
        counts: dict[str, int] = {}
        with duckdb.connect(str(database)) as con:
            con.execute(f"attach '{warehouse}' as working (read_only)")
            con.execute("create schema marts")
            for table in tables:
                con.execute(f"create table marts.{table} as select * from working.marts.{table}")
                counts[table] = con.execute(f"select count(*) from marts.{table}").fetchone()[0]
                con.execute(f"copy marts.{table} to '{parquet / table}.parquet' (format parquet)")
            con.execute("detach working")
            con.execute("checkpoint")
        os.replace(database, published / PUBLISHED_FILE)
        _swap_in_dir(parquet, published / PARQUET_DIR)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return Publication(published / PUBLISHED_FILE, published / PARQUET_DIR, counts)


def _swap_in_dir(new: Path, target: Path) -> None:
    """Replace a directory: the old one is moved aside first, then the new one renamed into place."""
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)
