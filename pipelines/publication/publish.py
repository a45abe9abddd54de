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

The DuckDB file is written in storage version ``v1.1.0`` (storage format 64), whatever DuckDB writes it, so
that the BI tools in use (their drivers bundle DuckDB 1.1 to 1.4) open it: DuckDB 2.0 writes format 999 by
default, which no 1.x release reads. Every table and column carries its description as a comment, and each
Parquet file its table's description as key-value metadata.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from pipelines.engines.base import MartsSource
from pipelines.engines.duckdb_tables import replace_rows
from pipelines.engines.sql import ident, literal, qualified
from pipelines.publication.keys import PUBLISH_LOG_KEY, TableKeys, creation_order, table_keys

DATABASE = "cprof.duckdb"
PARQUET_DIR = "parquet"
CURRENT = "current"
RELEASES = "releases"
KEEP_PREVIOUS = 2
PAUSE_ENV = "CPROF_PAUSE_AT"  # fault injection for tests: pause at a named point of publishing

# The oldest DuckDB release the publication is written for. DuckDB 1.1 reads storage format 64 (0.10 to 1.1
# write it); 1.2 to 1.5 wrote formats 65 to 68 and 2.0 writes 999, none of which an older release reads.
# ``STORAGE_VERSION 'v1.1.0'`` writes format 64 and lets the writer use what DuckDB 1.1 understands.
PUBLISHED_STORAGE_VERSION = "v1.1.0"
PUBLISHED_STORAGE_FORMAT = 64


class PublicationFormatError(Exception):
    """The DuckDB in use could not write the publication in the storage format the BI tools read."""


@dataclass(frozen=True)
class TableDoc:
    """What a published table is, and each of its columns: shown by BI tools as table and column comments."""

    description: str
    columns: Mapping[str, str] = field(default_factory=dict)


PUBLISH_LOG_DOC = TableDoc(
    "One row per publication and published table: the run that published it, the period range it covered, "
    "the table's row count and a checksum of its content. Equal checksums mean equal content.",
    {
        "run_id": "Dagster run that published the release.",
        "published_at": "When the release was published (UTC).",
        "first_period": "First period (first day of the month) the run refreshed.",
        "last_period": "Last period (first day of the month) the run refreshed.",
        "table_name": "Published table in schema marts.",
        "row_count": "Rows of the table in this release.",
        "checksum": "Row count and an order-independent sum of the rows' hashes (row_count:hex sum).",
    },
)

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
    # The release was the current one patched (only the changed periods and dimension rows rewritten), not
    # written whole.
    patched: bool = False


def current_database(published: Path) -> Path:
    """The DuckDB file BI tools read: ``published/current/cprof.duckdb``."""
    return published / CURRENT / DATABASE


def storage_format(database: Path) -> int:
    """The storage format number in a DuckDB file's header (bytes 12-19 after the magic ``DUCK``)."""
    with open(database, "rb") as f:
        header = f.read(20)
    if len(header) < 20 or header[8:12] != b"DUCK":
        raise PublicationFormatError(f"{database} is not a DuckDB database file")
    return struct.unpack("<Q", header[12:20])[0]


def table_checksum(con: duckdb.DuckDBPyConnection, table: str) -> tuple[int, str]:
    """Row count and an order-independent checksum of a table's content (the sum of its rows' hashes). Each row
    is hashed as the struct of all its columns, named one by one: a table alias would be shadowed by a column of
    the same name (``customer_clv`` has a column ``t``), and the sum would hash that column alone."""
    columns = [column[0] for column in con.execute(f"select * from {table} limit 0").description]
    row = ", ".join(ident(column) for column in columns)
    count, total = con.execute(
        f"select count(*), coalesce(sum(hash(struct_pack({row}))), 0) from {table}"
    ).fetchone()
    return int(count), f"{count}:{int(total):x}"


def _pause(point: str, published: Path) -> None:
    if os.environ.get(PAUSE_ENV) == point:
        (published / f".paused-{point}").touch()
        time.sleep(3600)


def publish(
    warehouse: MartsSource,
    published: Path,
    run_id: str | None = None,
    first_period: date | None = None,
    last_period: date | None = None,
    changed_from: date | None = None,
    docs: Mapping[str, TableDoc] | None = None,
    extras: Callable[[Path], object] | None = None,
    memory_limit: str | None = None,
    primary_keys: Mapping[str, tuple[str, ...]] | None = None,
    currency: str | None = None,
) -> Publication:
    """Publish every mart of ``warehouse`` (a session of either engine) as a new release and make it current.

    With ``changed_from`` (the first period the run rebuilt), the release starts as a copy of the current one
    and only the periods from ``changed_from`` on are replaced in the marts keyed by period; a table whose
    result then differs from the warehouse's (row count or checksum), or that cannot be patched, is copied
    whole. Either way every published table equals the warehouse's. ``docs`` (table name to its description)
    become the comments of the published tables and columns and the Parquet files' key-value metadata.

    ``primary_keys`` (table name to its key columns, :func:`pipelines.publication.keys.declared_primary_keys`)
    become each table's ``PRIMARY KEY``, with ``FOREIGN KEY`` constraints to the dimensions it names
    (:mod:`pipelines.publication.keys`); a repeated key or a code without its dimension row fails the
    publication, naming the table. A current release with other keys is not patched. ``currency`` (the ISO
    code of every amount) goes into every Parquet file's key-value metadata.

    ``extras``, when given, is called with the release folder while it is still being built, its
    ``cprof.duckdb`` complete: it writes more files into the release (the HTML report). If it raises, nothing
    is published and ``current`` stays as it was. ``memory_limit``: DuckDB's while it builds the release (the
    setting ``duckdb_memory_limit``; None: DuckDB's own default)."""
    tables = warehouse.marts()
    if not tables:
        raise ValueError(
            f"the {warehouse.engine} warehouse has no tables in schema marts: run the dbt build first"
        )
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
        # Spill where a file database would (beside it), not in the working directory.
        spill = {"temp_directory": str(building / f"{DATABASE}.tmp")}
        if memory_limit is not None:
            spill["memory_limit"] = memory_limit
        with duckdb.connect(":memory:", config=spill) as con:
            with warehouse.marts_in(con) as source:
                missing = set(tables) - set(source)
                if missing:
                    raise ValueError(f"marts {sorted(missing)} are not readable from the warehouse")
                described = {table: _describe(con, source[table]) for table in tables}
                keys = (
                    table_keys(primary_keys, {t: [name for name, _ in described[t]] for t in tables})
                    if primary_keys is not None
                    else {}
                )
                wanted = {table: table_checksum(con, source[table]) for table in tables}
                # A release written in another storage format (by an older version of this code) or with other
                # keys is not patched: the copy would keep them.
                patching = (
                    changed_from is not None
                    and previous.exists()
                    and storage_format(previous) == PUBLISHED_STORAGE_FORMAT
                    and _declared_keys(previous) == _expected_keys(keys)
                )
                release = _Release(con, partial, tables, described, keys, source, wanted, published)
                if patching:
                    try:
                        release.write(changed_from, previous)
                    except duckdb.Error:
                        # The patch could not be applied (a changed dimension row still referenced, say):
                        # write the release afresh, which reports a real key error with its table.
                        patching = False
                        release.discard()
                        release.write(None, None)
                else:
                    release.write(None, None)
                counts.update({table: wanted[table][0] for table in tables})
                checksums.update({table: wanted[table][1] for table in tables})
            kept = release.kept
            if "publish_log" not in kept:
                con.execute(
                    PUBLISH_LOG_DDL if not keys else _with_primary_key(PUBLISH_LOG_DDL, PUBLISH_LOG_KEY)
                )
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
            all_docs = {**(docs or {}), "publish_log": PUBLISH_LOG_DOC}
            _comment(con, all_docs)
            for table in [*tables, "publish_log"]:
                target = literal(building / PARQUET_DIR / f"{table}.parquet")
                options = _kv_metadata(all_docs.get(table), currency)
                con.execute(f"copy marts.{table} to {target} (format parquet{options})")
            con.execute("checkpoint")
            con.execute("use memory")
            con.execute("detach release")
        found = storage_format(partial)
        if found != PUBLISHED_STORAGE_FORMAT:
            raise PublicationFormatError(
                f"{partial} was written in storage format {found}, not {PUBLISHED_STORAGE_FORMAT} "
                f"(DuckDB {PUBLISHED_STORAGE_VERSION}), which the BI tools read; nothing was published. "
                f"DuckDB {duckdb.__version__} may no longer write it: pin an older duckdb."
            )
        shutil.rmtree(building / f"{DATABASE}.tmp", ignore_errors=True)
        os.replace(partial, building / DATABASE)
        if extras is not None:
            extras(building)
        release_dir = releases / run_id
        shutil.rmtree(release_dir, ignore_errors=True)
        os.replace(building, release_dir)
        _pause("before_swap", published)
        _point_current_at(published, release_dir)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    _prune(published)
    return Publication(
        run_id, release_dir, release_dir / DATABASE, release_dir / PARQUET_DIR, counts, checksums, patching
    )


class PublicationKeyError(ValueError):
    """A published table's rows break its primary or foreign key: nothing was published."""


@dataclass
class _Release:
    """The release's DuckDB file being written: attached as ``release``, the current catalog."""

    con: duckdb.DuckDBPyConnection
    partial: Path
    tables: list[str]
    described: Mapping[str, list[tuple[str, str]]]
    keys: Mapping[str, TableKeys]
    source: Mapping[str, str]
    wanted: Mapping[str, tuple[int, str]]
    published: Path
    kept: set[str] = field(default_factory=set)

    def discard(self) -> None:
        self.con.execute("use memory")
        self.con.execute("detach release")
        self.partial.unlink(missing_ok=True)
        self.kept = set()

    def write(self, changed_from: date | None, previous: Path | None) -> None:
        """Every table, created with its keys in an order that creates a dimension before what references it;
        with ``changed_from`` (and the ``previous`` release), a copy of ``previous`` patched instead."""
        con = self.con
        if previous is not None:
            shutil.copyfile(previous, self.partial)
        con.execute(
            f"attach {literal(self.partial)} as release (storage_version {literal(PUBLISHED_STORAGE_VERSION)})"
        )
        con.execute("use release")
        con.execute("create schema if not exists marts")
        self.kept = _tables(con, "marts") if previous is not None else set()
        order = creation_order(self.keys) if self.keys else list(self.tables)
        order = [table for table in order if table in self.tables]
        # A stale table (a mart no longer built) is referenced by none: a release where one was has other keys
        # and is not patched.
        for table in sorted(self.kept - {*self.tables, "publish_log"}):
            con.execute(f"drop table marts.{ident(table)}")
        synced: list[str] = []
        for table in order:
            if table not in self.kept:
                self._create(table)
            elif "period" in _columns(con, table):
                if not _patch(con, table, self.source[table], changed_from, self.wanted[table]):
                    con.execute(f"drop table marts.{ident(table)}")
                    self._create(table)
            elif not self.keys and table_checksum(con, f"marts.{ident(table)}") != self.wanted[table]:
                con.execute(f"drop table marts.{ident(table)}")
                self._create(table)
            elif table_checksum(con, f"marts.{ident(table)}") != self.wanted[table]:
                # A dimension (no periods): its new and changed rows now, its removed ones once nothing
                # references them (below).
                self._upsert(table)
                synced.append(table)
            _pause("building", self.published)
        for table in reversed(synced):
            key = self.keys[table].primary_key if table in self.keys else ()
            if not key:
                raise duckdb.InvalidInputException(f"marts.{table} has no key to remove rows by")
            match = " and ".join(f"s.{ident(c)} = t.{ident(c)}" for c in key)
            con.execute(
                f"delete from marts.{ident(table)} as t "
                f"where not exists (select 1 from {self.source[table]} as s where {match})"
            )
            if table_checksum(con, f"marts.{ident(table)}") != self.wanted[table]:
                raise duckdb.InvalidInputException(
                    f"marts.{table} differs from the warehouse's after patching"
                )

    def _upsert(self, table: str) -> None:
        """Insert the warehouse's rows of ``table`` whose key the release lacks, and update the others' columns
        in place. DuckDB refuses to replace a row, or to change a column with a foreign key, while another
        table references the row: that error makes the release be written whole instead."""
        key = self.keys[table].primary_key
        target, source = f"marts.{ident(table)}", self.source[table]
        match = " and ".join(f"s.{ident(c)} = t.{ident(c)}" for c in key)
        self.con.execute(
            f"insert into {target} select * from {source} as s "
            f"where not exists (select 1 from {target} as t where {match})"
        )
        # DuckDB rewrites a row whose foreign-key column an update sets, even to the same value, which a
        # referenced row refuses: those columns only when one changed (then the release is written whole).
        referencing = {c for fk in self.keys[table].foreign_keys for c in fk.columns}
        columns = [name for name, _ in self.described[table] if name not in key]
        fixed = [c for c in columns if c in referencing]
        plain = [c for c in columns if c not in referencing]

        def differs(names: list[str]) -> str:
            return " or ".join(f"t.{ident(c)} is distinct from s.{ident(c)}" for c in names)

        if fixed:
            (changed,) = self.con.execute(
                f"select count(*) from {target} as t join {source} as s on {match} where {differs(fixed)}"
            ).fetchone()
            if changed:
                raise duckdb.ConstraintException(f"{changed} rows of {target} change a foreign key")
        if plain:
            assignments = ", ".join(f"{ident(c)} = s.{ident(c)}" for c in plain)
            self.con.execute(
                f"update {target} as t set {assignments} from {source} as s where {match} and ({differs(plain)})"
            )

    def _create(self, table: str) -> None:
        con = self.con
        if not self.keys:
            con.execute(f"create or replace table marts.{ident(table)} as select * from {self.source[table]}")
        else:
            con.execute(_table_ddl(table, self.described[table], self.keys[table]))
            try:
                con.execute(f"insert into marts.{ident(table)} select * from {self.source[table]}")
            except duckdb.ConstraintException as error:
                raise PublicationKeyError(
                    f"marts.{table} breaks its keys ({_key_text(self.keys[table])}); nothing was published: "
                    f"{error}"
                ) from error
        found = table_checksum(con, f"marts.{ident(table)}")
        if found != self.wanted[table]:
            raise ValueError(
                f"marts.{table} was written with {found}, the warehouse has {self.wanted[table]}"
            )


def _describe(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    """A relation's columns and their DuckDB types, in order."""
    return [(name, kind) for name, kind, *_ in con.execute(f"describe select * from {relation}").fetchall()]


def _table_ddl(table: str, columns: list[tuple[str, str]], keys: TableKeys) -> str:
    parts = [f"{ident(name)} {kind}" for name, kind in columns]
    parts.append(f"primary key ({', '.join(ident(c) for c in keys.primary_key)})")
    for fk in keys.foreign_keys:
        parts.append(
            f"foreign key ({', '.join(ident(c) for c in fk.columns)}) "
            f"references marts.{ident(fk.table)} ({', '.join(ident(c) for c in fk.to_columns)})"
        )
    return f"create table marts.{ident(table)} (\n    " + ",\n    ".join(parts) + "\n)"


def _with_primary_key(ddl: str, key: tuple[str, ...]) -> str:
    head, _, _ = ddl.rstrip().rpartition(")")
    return f"{head.rstrip()},\n    primary key ({', '.join(ident(c) for c in key)})\n)"


def _key_text(keys: TableKeys) -> str:
    text = f"primary key ({', '.join(keys.primary_key)})"
    for fk in keys.foreign_keys:
        text += f", {', '.join(fk.columns)} in {fk.table}"
    return text


def _expected_keys(keys: Mapping[str, TableKeys]) -> dict[str, tuple]:
    """The constraints :func:`_declared_keys` reads back from a release written with ``keys``."""
    expected = {
        table: (table_key.primary_key, frozenset((fk.columns, fk.table) for fk in table_key.foreign_keys))
        for table, table_key in keys.items()
    }
    if keys:
        expected["publish_log"] = (PUBLISH_LOG_KEY, frozenset())
    return expected


def _declared_keys(database: Path) -> dict[str, tuple]:
    """The primary and foreign keys of the tables in schema marts of a published file (tables without any
    are left out), as :func:`_expected_keys` gives them."""
    with duckdb.connect(str(database), read_only=True) as con:
        rows = con.execute(
            "select table_name, constraint_type, constraint_column_names, referenced_table "
            "from duckdb_constraints() where schema_name = 'marts' "
            "and constraint_type in ('PRIMARY KEY', 'FOREIGN KEY')"
        ).fetchall()
    primary: dict[str, tuple[str, ...]] = {}
    foreign: dict[str, set] = {}
    for table, kind, columns, referenced in rows:
        if kind == "PRIMARY KEY":
            primary[table] = tuple(columns)
        else:
            foreign.setdefault(table, set()).add((tuple(columns), referenced))
    return {
        table: (primary.get(table, ()), frozenset(foreign.get(table, ()))) for table in {*primary, *foreign}
    }


def _comment(con: duckdb.DuckDBPyConnection, docs: Mapping[str, TableDoc]) -> None:
    """Table and column comments from ``docs``; a table or column without a description gets none (NULL)."""
    for table in _tables(con, "marts"):
        doc = docs.get(table)
        text = literal(doc.description) if doc else "null"
        con.execute(f"comment on table {qualified('marts', table)} is {text}")
        for column in _columns(con, table):
            described = doc.columns.get(column) if doc else None
            text = literal(described) if described else "null"
            con.execute(f"comment on column {qualified('marts', table, column)} is {text}")


def _kv_metadata(doc: TableDoc | None, currency: str | None = None) -> str:
    """The ``KV_METADATA`` option of a Parquet ``COPY``: the table's description and its columns', and the
    currency of its amounts."""
    pairs = {"currency": currency} if currency else {}
    if doc is not None:
        pairs.update({"description": doc.description, "column_descriptions": json.dumps(dict(doc.columns))})
    if not pairs:
        return ""
    return ", kv_metadata {" + ", ".join(f"{k}: {literal(v)}" for k, v in pairs.items()) + "}"


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [
        name
        for (name,) in con.execute(
            "select column_name from information_schema.columns where table_catalog = current_database() "
            "and table_schema = 'marts' and table_name = ? order by ordinal_position",
            [table],
        ).fetchall()
    ]


def _tables(con: duckdb.DuckDBPyConnection, schema: str) -> set[str]:
    return {
        name
        for (name,) in con.execute(
            "select table_name from information_schema.tables where table_catalog = current_database() "
            "and table_schema = ?",
            [schema],
        ).fetchall()
    }


def _patch(
    con: duckdb.DuckDBPyConnection, table: str, source: str, changed_from: date, wanted: tuple[int, str]
) -> bool:
    """Replace the periods from ``changed_from`` on of the copied ``marts.<table>`` with the warehouse's; True
    when the table then equals the warehouse's (same rows and checksum). Tables without periods are not
    patched."""
    if "period" not in _columns(con, table):
        return False
    try:
        replace_rows(
            con,
            f"marts.{table}",
            None,  # the table copied from the previous release
            "period >= ?",
            [changed_from],
            f"select * from {source} where period >= ?",
            [changed_from],
        )
    except duckdb.Error:
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
