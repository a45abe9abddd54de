"""The keys of the published tables, so that a BI tool finds every join by itself: a primary key on every
table and a foreign key from each table to the dimensions it names.

- **Primary keys** come from dbt's manifest: for a dbt model, the key dbt itself infers from the model's key
  tests (``unique``, ``unique_combination_of_columns``), so a key is declared once, where it is tested; for a
  Python mart (documented as a dbt source), its ``meta.primary_key``. ``publish_log`` and ``publish_period_log`` are keyed in
  :mod:`pipelines.publication.publish`.
- **Foreign keys** follow one convention: a column named like the one-column key of a dimension (a published
  ``dim_*`` table) references that dimension, e.g. every ``customer_id`` references ``dim_customers``,
  every ``segment`` ``dim_segments``. :data:`NOT_REFERENCED` lists the columns that keep no foreign key, and
  why.

The publication writes these as DuckDB ``PRIMARY KEY`` and ``FOREIGN KEY`` constraints (DuckDB 1.1 reads them),
so a key repeated, or a code without its dimension row, fails the publication, never a BI user's join.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

PUBLISHED_SCHEMA = "marts"
DIMENSION_PREFIX = "dim_"
# A run publishes each table once; a retried publication of the same run, at another time.
PUBLISH_LOG_KEY = ("run_id", "published_at", "table_name")
PUBLISH_PERIOD_LOG_KEY = ("run_id", "published_at", "table_name", "period")

# (table, column) pairs named like a dimension's key that reference no dimension row, with the reason.
NOT_REFERENCED: Mapping[tuple[str, str], str] = {
    # A return of a line ordered before the start of history carries the customer its returns file exports,
    # if any: a customer the CRM need not know.
    ("prehistory_returns", "customer_id"): "a pre-history return's customer comes from its returns file",
}


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    table: str
    to_columns: tuple[str, ...]


@dataclass(frozen=True)
class TableKeys:
    primary_key: tuple[str, ...]
    foreign_keys: tuple[ForeignKey, ...] = ()


def declared_primary_keys(manifest: Path) -> dict[str, tuple[str, ...]]:
    """Table name -> its key columns, for every model and source dbt puts in schema marts that has one."""
    data = json.loads(Path(manifest).read_text())
    keys: dict[str, tuple[str, ...]] = {}
    for node in [*data["nodes"].values(), *data["sources"].values()]:
        kind = node["resource_type"]
        if kind not in ("model", "source") or node.get("schema") != PUBLISHED_SCHEMA:
            continue
        if kind == "model":
            name, key = node["alias"], node.get("primary_key") or []
        else:
            meta = {**(node.get("meta") or {}), **((node.get("config") or {}).get("meta") or {})}
            name, key = node.get("identifier") or node["name"], meta.get("primary_key") or []
        if key:
            keys[name] = tuple(key)
    return keys


def period_incremental_marts(manifest: Path) -> set[str]:
    """The models dbt puts in schema marts incrementally by period (``materialized='incremental'``, the
    strategy that replaces the refresh window's periods): a refresh from a month leaves their earlier periods
    as they were, so the publication carries those periods' checksums instead of reading them again. Not the
    scenario marts (meta ``scenario_periods``): a run may rebuild their months before the refresh window (a
    scenario's changes moved), so the publication compares them period by period."""
    data = json.loads(Path(manifest).read_text())
    return {
        node["alias"]
        for node in data["nodes"].values()
        if node["resource_type"] == "model"
        and node.get("schema") == PUBLISHED_SCHEMA
        and (node.get("config") or {}).get("materialized") == "incremental"
        and "scenario_periods" not in ((node.get("config") or {}).get("meta") or {})
    }


def table_keys(
    primary_keys: Mapping[str, tuple[str, ...]],
    columns: Mapping[str, list[str]],
    unenforced: Collection[str] = (),
) -> dict[str, TableKeys]:
    """The keys of the tables in ``columns`` (table -> its columns in order): each table's primary key (its
    columns in table order) and its foreign keys to the dimensions among them. A table without a declared
    primary key is an error: every published table has one. The tables ``unenforced`` (never a dimension) get
    no constraints (too large for DuckDB's in-memory key index: pipelines.publication.publish)."""
    missing = sorted(set(columns) - set(primary_keys) - {"publish_log"})
    if missing:
        raise ValueError(
            f"published tables without a primary key: {', '.join(missing)}: declare one (a key test on the "
            "dbt model, meta.primary_key on a Python mart's source)"
        )
    keys = {**primary_keys, "publish_log": PUBLISH_LOG_KEY}
    dimensions = {
        keys[table][0]: table
        for table in columns
        if table.startswith(DIMENSION_PREFIX) and len(keys[table]) == 1
    }
    result: dict[str, TableKeys] = {}
    for table, names in columns.items():
        unknown = [column for column in keys[table] if column not in names]
        if unknown:
            raise ValueError(
                f"the primary key of {table} names columns it does not have: {', '.join(unknown)}"
            )
        foreign = tuple(
            ForeignKey((column,), dimensions[column], (column,))
            for column in names
            if column in dimensions and dimensions[column] != table and (table, column) not in NOT_REFERENCED
        )
        ordered = tuple(column for column in names if column in keys[table])
        result[table] = TableKeys((), ()) if table in unenforced else TableKeys(ordered, foreign)
    return result


def creation_order(keys: Mapping[str, TableKeys]) -> list[str]:
    """The tables in an order that creates every referenced table before the tables that reference it (by
    name within each step, so the order is stable)."""
    done: list[str] = []
    waiting = dict(keys)
    while waiting:
        ready = sorted(
            table
            for table, table_key in waiting.items()
            if all(fk.table in done or fk.table not in keys for fk in table_key.foreign_keys)
        )
        if not ready:
            raise ValueError(f"foreign keys in a cycle among {', '.join(sorted(waiting))}")
        for table in ready:
            done.append(table)
            del waiting[table]
    return done
